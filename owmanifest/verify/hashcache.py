"""The hash cache behind ``verify --fast``: files that verified, and their stat when they did.

``verify`` hashes every byte by default. With ``--fast`` it trusts a file without reading it
when all of these are what they were when the file last verified against the same dataset in
the same directory: size, modification time, status-change time (``ctime``, which no user call
can set back), inode and device; and the manifest still expects the root the file had then.
Anything else (a touched, rewritten, replaced or moved file, another dataset, a cache that is
missing, corrupt or of another shape) means the file is hashed in full. A file that changed in
the seconds before the run is hashed and not recorded (:data:`SETTLE_NS`). ADR 0011.

The cache is one JSON file per (dataset id, directory) in the state directory
(``owmanifest._dirs.state_dir()/hashcache``): the sorted paths, and one string of fixed-size
records in their order (each file's five stat fields packed as
:func:`owmanifest.manifest.hashing.stat_keys` packs them, then its root), so that it reads and
writes in bulk and is compared with the one compiled stat pass of the tree (version 1 held a
list of numbers per file: read and checked in Python, it took longer than hashing 100,000 small
files). It is checked against ``hashcache.schema.json`` when it is read and replaced atomically
when it is written, without a flush to disk: a hint checked against each file's ctime, which
after a crash can only be older, empty or unusable (and the files are then hashed). It holds no
secret, but whoever can write it can make ``--fast`` skip files: it lives in the per-user state
directory (mode 0700), and ``--fast`` is an explicit choice to trust the local file system's
metadata.

When every file of the dataset verified (by hashing or from the cache), a second, small file
records a fingerprint of the whole tree (``hashcache-tree.schema.json``): the SHA-256 of the
dataset id, the directory, every manifest path and expected root, and every file's stat fields
as above. When the same fingerprint comes out again, the tree is trusted as a whole: one
compiled stat pass and one hash, without reading the per-file cache or comparing file by file.
It trusts exactly what the per-file cache would (every file's five fields and root unchanged);
any difference falls back to the per-file cache.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._atomic import write_atomic
from .._dirs import state_dir
from ..errors import Error, UsageError
from ..manifest.hashing import STAT_KEY_SIZE
from ..manifest.model import FileEntry

__all__ = ["SETTLE_NS", "HashCache", "StatKey", "settled", "stat_key", "tree_fingerprint"]

_TYPE = "owmanifest-hashcache"
_VERSION = 2  # 1: a list of five numbers and a root per file

StatKey = tuple[int, int, int, int, int]
"""``(size, mtime_ns, ctime_ns, inode, device)`` of a file."""

_KEY_SIZE = STAT_KEY_SIZE
_ROOT_SIZE = 32
_RECORD_SIZE = _KEY_SIZE + _ROOT_SIZE
_EMPTY_ROOT = bytes(_ROOT_SIZE)
_HEX_DIGITS = b"0123456789abcdef"


SETTLE_NS = 3_000_000_000
"""How long before a verification began a file's ctime must be for the file to be recorded.

File systems keep times to a clock tick (a jiffy on Linux, a second on some, two seconds for
FAT's modification times), so a change made in the same tick as the one before it leaves ctime
as it was: the record could not tell it. A file changed that recently is hashed but not recorded
(git calls such entries "racy"); the next ``--fast`` hashes it again, and records it then."""


def settled(key: bytes, started_ns: int) -> bool:
    """Whether the file of ``key`` (packed) last changed :data:`SETTLE_NS` before
    ``started_ns`` (``time.time_ns()`` when verification began), so that a later change moves
    its ctime."""
    return int.from_bytes(key[16:24], "little", signed=True) < started_ns - SETTLE_NS


def stat_key(st: os.stat_result) -> StatKey:
    """The fields of ``st`` that the cache compares."""
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)


def _roots(entries: Sequence[FileEntry]) -> list[bytes]:
    """The root each of ``entries`` expects, as the cache and the fingerprint hold them (zeros:
    none, for an empty file)."""
    return [_EMPTY_ROOT if e.root is None else e.root.value for e in entries]


_TREE_TYPE = "owmanifest-hashcache-tree"
_TREE_VERSION = 1


def tree_fingerprint(
    dataset_id: str, directory: str, entries: Sequence[FileEntry], keys: bytes
) -> str:
    """The fingerprint of a tree: ``entries`` (every file of the manifest, in its order) and
    ``keys``, their stat fields packed as :func:`owmanifest.manifest.hashing.stat_keys` packs
    them. Paths hold no NUL; roots and keys have fixed sizes."""
    head = f"{_TREE_TYPE}\0{dataset_id}\0{directory}\0{len(entries)}\0"
    digest = hashlib.sha256(head.encode("utf-8", "surrogatepass"))
    digest.update("\0".join([e.path for e in entries]).encode("utf-8", "surrogatepass"))
    digest.update(b"\0\0")
    digest.update(b"".join(_roots(entries)))
    digest.update(keys)
    return "sha256:" + digest.hexdigest()


def _records(paths: Any, records: Any) -> dict[str, bytes] | None:
    """Each path's record, from the ``paths`` and ``records`` of a cache, or ``None`` where the
    schema would refuse them or there is not one record a path (checked here in bulk:
    jsonschema takes ~40 µs an entry)."""
    if type(paths) is not list or type(records) is not str:
        return None
    if not set(map(type, paths)) <= {str} or len(set(paths)) != len(paths):
        return None
    if len(records) != 2 * _RECORD_SIZE * len(paths):
        return None
    if records.encode("ascii", "replace").translate(None, _HEX_DIGITS):
        return None  # only lowercase hexadecimal digits
    blob = bytes.fromhex(records)
    step = _RECORD_SIZE
    return dict(zip(paths, [blob[i : i + step] for i in range(0, len(blob), step)], strict=True))


@dataclass
class HashCache:
    """The verified stat and root of each file of one dataset in one directory.

    Attributes:
        path: the cache file.
        dataset_id: the dataset's IRI.
        directory: the dataset directory (absolute, symlinks resolved).
        files: manifest path -> record: the file's stat key packed as
            :func:`owmanifest.manifest.hashing.stat_keys` packs it (40 bytes), then the root it
            verified with (32 bytes, zeros for an empty file).
        changed: whether :attr:`files` differs from the file (:meth:`save` writes only then).
    """

    path: Path
    dataset_id: str
    directory: str
    files: dict[str, bytes] = field(default_factory=dict)
    changed: bool = False

    @classmethod
    def location(cls, dataset_id: str, directory: str | os.PathLike[str]) -> tuple[Path, str]:
        """The cache file for ``dataset_id`` in ``directory``, and the directory as recorded."""
        resolved = os.path.realpath(directory)
        # (a directory name that is not UTF-8 is held with surrogate escapes, as os gives it)
        key = f"{dataset_id}\0{resolved}".encode("utf-8", "surrogatepass")
        return state_dir() / "hashcache" / f"{hashlib.sha256(key).hexdigest()}.json", resolved

    @classmethod
    def load(cls, dataset_id: str, directory: str | os.PathLike[str]) -> HashCache:
        """The cache for ``dataset_id`` in ``directory``; empty when missing or unusable.

        Never raises for the cache's content: a cache that cannot be read, is not JSON, does not
        match the schema (another version's too), or is for another dataset or directory is
        ignored (every file is then hashed, and the cache rewritten).
        """
        from ..schemas import validate

        path, resolved = cls.location(dataset_id, directory)
        empty = cls(path, dataset_id, resolved)
        try:
            doc = json.loads(path.read_bytes())
        except (OSError, ValueError, RecursionError):
            return empty
        if type(doc) is not dict:
            return empty
        records = _records(doc.get("paths"), doc.get("records"))
        if records is None:
            return empty
        try:
            empty_lists = {"paths": [], "records": ""}
            validate({**doc, **empty_lists}, "hashcache", source=str(path), error=UsageError)
        except Error:
            return empty
        if doc["dataset"] != dataset_id or doc["directory"] != resolved:
            return empty
        return cls(path, dataset_id, resolved, records)

    def fresh(self, entries: Sequence[FileEntry], keys: bytes) -> list[bool]:
        """For each of ``entries``, whether it verified before with exactly its stat key in
        ``keys`` (packed, in the order of ``entries``) and the root it expects now."""
        get = self.files.get
        starts = range(0, len(keys), _KEY_SIZE)
        return [
            get(entry.path) == keys[i : i + _KEY_SIZE] + root
            for i, entry, root in zip(starts, entries, _roots(entries), strict=True)
        ]

    def record(self, entries: Sequence[FileEntry], keys: bytes) -> None:
        """Remember that each of ``entries`` verified while its file had its stat key in
        ``keys`` (packed, in the order of ``entries``)."""
        starts = range(0, len(keys), _KEY_SIZE)
        for i, entry, root in zip(starts, entries, _roots(entries), strict=True):
            value = keys[i : i + _KEY_SIZE] + root
            if self.files.get(entry.path) != value:
                self.files[entry.path] = value
                self.changed = True

    def forget(self, paths: Iterable[str]) -> None:
        """Drop ``paths`` (files that failed, or vanished)."""
        for path in paths:
            if self.files.pop(path, None) is not None:
                self.changed = True

    @property
    def tree_path(self) -> Path:
        """The file of the whole tree's fingerprint, next to the per-file cache."""
        return self.path.with_name(self.path.stem + ".tree.json")

    @classmethod
    def load_tree(
        cls, dataset_id: str, directory: str | os.PathLike[str]
    ) -> tuple[str, str] | None:
        """The fingerprint recorded for the whole tree and the directory as recorded (see
        :meth:`location`), or ``None`` (missing or unusable: never raises for the file's
        content)."""
        from ..schemas import surely_valid

        path, resolved = cls.location(dataset_id, directory)
        try:
            doc = json.loads(path.with_name(path.stem + ".tree.json").read_bytes())
        except (OSError, ValueError, RecursionError):
            return None
        if not surely_valid(doc, "hashcache-tree"):
            return None  # (the schema's fast path accepts every document save_tree writes)
        if doc["dataset"] != dataset_id or doc["directory"] != resolved:
            return None
        return doc["fingerprint"], resolved

    def save_tree(self, fingerprint: str | None) -> None:
        """Record the whole tree's fingerprint (``None``: remove it), atomically, mode 0600.

        Raises:
            OSError: the state directory cannot be written.
        """
        if fingerprint is None:
            self.tree_path.unlink(missing_ok=True)
            return
        self._write(self.tree_path, _TREE_TYPE, _TREE_VERSION, fingerprint=fingerprint)

    def save(self) -> None:
        """Write the cache atomically (mode 0600, in a 0700 directory), if anything changed.

        Raises:
            OSError: the state directory cannot be written.
        """
        if not self.changed and self.path.exists():
            return
        files = sorted(self.files.items())
        # the records are hexadecimal digits: JSON text as they are, without the encoder's scan
        # (~0.1 s at 100,000 files)
        records = b"".join([record for _, record in files]).hex()
        self._write(self.path, _TYPE, _VERSION, [("records", records)], paths=[p for p, _ in files])
        self.changed = False

    def _write(
        self,
        path: Path,
        kind: str,
        version: int,
        digits: Sequence[tuple[str, str]] = (),
        **content: Any,
    ) -> None:
        """Write one of the cache's files: its type, version, dataset, directory, ``content``
        and ``digits`` (keys with values of hexadecimal digits only), as compact JSON,
        atomically, mode 0600 in a 0700 directory, not flushed to disk: the cache is a hint,
        checked against each file's ctime when it is read, so that after a crash it can only be
        older, empty or unusable, and then the files are hashed."""
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        doc = {
            "type": kind,
            "version": version,
            "dataset": self.dataset_id,
            "directory": self.directory,
            **content,
        }
        text = json.dumps(doc, separators=(",", ":"))  # ASCII: a directory may hold surrogates
        text = text[:-1] + "".join(f',"{key}":"{value}"' for key, value in digits) + "}"
        write_atomic(path, text.encode("ascii") + b"\n", mode=0o600, fsync=False)
