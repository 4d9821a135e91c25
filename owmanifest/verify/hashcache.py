"""The hash cache behind ``verify --fast``: files that verified, and their stat when they did.

``verify`` hashes every byte by default. With ``--fast`` it trusts a file without reading it
when all of these are what they were when the file last verified against the same dataset in
the same directory: size, modification time, status-change time (``ctime``, which no user call
can set back), inode and device; and the manifest still expects the root the file had then.
Anything else (a touched, rewritten, replaced or moved file, another dataset, a cache that is
missing, corrupt or of another shape) means the file is hashed in full.

The cache is one JSON file per (dataset id, directory) in the state directory
(``owmanifest._dirs.state_dir()/hashcache``), checked against ``hashcache.schema.json`` when it
is read and replaced atomically when it is written. It holds no secret, but whoever can write
it can make ``--fast`` skip files: it lives in the per-user state directory (mode 0700), and
``--fast`` is an explicit choice to trust the local file system's metadata.

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
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from .._atomic import write_atomic
from .._dirs import state_dir
from ..errors import Error, UsageError
from ..manifest.model import FileEntry

__all__ = ["HashCache", "StatKey", "stat_key", "tree_fingerprint"]

_TYPE = "owmanifest-hashcache"
_VERSION = 1

StatKey = tuple[int, int, int, int, int]
"""``(size, mtime_ns, ctime_ns, inode, device)`` of a file."""


def stat_key(st: os.stat_result) -> StatKey:
    """The fields of ``st`` that the cache compares."""
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)


_TREE_TYPE = "owmanifest-hashcache-tree"
_EMPTY_ROOT = bytes(32)


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
    digest.update(b"".join([_EMPTY_ROOT if e.root is None else e.root.value for e in entries]))
    digest.update(keys)
    return "sha256:" + digest.hexdigest()


@cache
def _root_pattern() -> re.Pattern[str]:
    from ..schemas import load_schema

    items = load_schema("hashcache")["properties"]["files"]["additionalProperties"]
    return re.compile(items["prefixItems"][5]["pattern"])


def _entries_valid(files: Any) -> bool:
    """The ``files`` part of the schema, checked quickly (jsonschema takes ~40 µs an entry).

    Accepts only what the schema's ``files`` accepts (it is stricter in one way: a float like
    ``10.0`` is not taken for an integer); whatever it refuses makes the cache unused.
    """
    if type(files) is not dict:
        return False
    search = _root_pattern().search
    for path, value in files.items():
        if type(path) is not str or type(value) is not list or len(value) != 6:
            return False
        size, mtime, ctime, inode, device, root = value
        if not all(type(n) is int for n in (size, mtime, ctime, inode, device)):
            return False
        if size < 0 or inode < 0 or device < 0:
            return False
        if type(root) is not str or search(root) is None:
            return False
    return True


@dataclass
class HashCache:
    """The verified stat and root of each file of one dataset in one directory.

    Attributes:
        path: the cache file.
        dataset_id: the dataset's IRI.
        directory: the dataset directory (absolute, symlinks resolved).
        files: manifest path -> (stat key, root bytes or ``None`` for an empty file).
        changed: whether :attr:`files` differs from the file (:meth:`save` writes only then).
    """

    path: Path
    dataset_id: str
    directory: str
    files: dict[str, tuple[StatKey, bytes | None]] = field(default_factory=dict)
    changed: bool = False

    @classmethod
    def location(cls, dataset_id: str, directory: str | os.PathLike[str]) -> tuple[Path, str]:
        """The cache file for ``dataset_id`` in ``directory``, and the directory as recorded."""
        resolved = os.path.realpath(directory)
        key = hashlib.sha256(f"{dataset_id}\0{resolved}".encode()).hexdigest()
        return state_dir() / "hashcache" / f"{key}.json", resolved

    @classmethod
    def load(cls, dataset_id: str, directory: str | os.PathLike[str]) -> HashCache:
        """The cache for ``dataset_id`` in ``directory``; empty when missing or unusable.

        Never raises for the cache's content: a cache that cannot be read, is not JSON, does not
        match the schema, or is for another dataset or directory is ignored (every file is then
        hashed, and the cache rewritten).
        """
        path, resolved = cls.location(dataset_id, directory)
        empty = cls(path, dataset_id, resolved)
        try:
            doc = json.loads(path.read_bytes())
        except (OSError, ValueError, RecursionError):
            return empty
        if not cls._valid(doc, path) or doc["dataset"] != dataset_id:
            return empty
        if doc["directory"] != resolved:
            return empty
        files: dict[str, tuple[StatKey, bytes | None]] = {}
        for rel, (size, mtime, ctime, inode, device, root) in doc["files"].items():
            files[rel] = ((size, mtime, ctime, inode, device), bytes.fromhex(root) or None)
        return cls(path, dataset_id, resolved, files)

    @staticmethod
    def _valid(doc: Any, path: Path) -> bool:
        from ..schemas import validate

        if type(doc) is not dict or not _entries_valid(doc.get("files")):
            return False
        try:
            validate({**doc, "files": {}}, "hashcache", source=str(path), error=UsageError)
        except Error:
            return False
        return True

    def is_fresh(self, entry: FileEntry, st: os.stat_result) -> bool:
        """Whether ``entry`` verified before with exactly this stat and the root it expects."""
        known = self.files.get(entry.path)
        if known is None:
            return False
        key, root = known
        expected = None if entry.root is None else entry.root.value
        return key == stat_key(st) and root == expected

    def record(self, entries: Iterable[tuple[FileEntry, os.stat_result]]) -> None:
        """Remember that each ``entry`` verified while its file had stat ``st``."""
        for entry, st in entries:
            root = None if entry.root is None else entry.root.value
            value = (stat_key(st), root)
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
        self._write(self.tree_path, _TREE_TYPE, fingerprint=fingerprint)

    def save(self) -> None:
        """Write the cache atomically (mode 0600, in a 0700 directory), if anything changed.

        Raises:
            OSError: the state directory cannot be written.
        """
        if not self.changed and self.path.exists():
            return
        files = {
            rel: [*key, root.hex() if root is not None else ""]
            for rel, (key, root) in sorted(self.files.items())
        }
        self._write(self.path, _TYPE, files=files)
        self.changed = False

    def _write(self, path: Path, kind: str, **content: Any) -> None:
        """Write one of the cache's files: its type, version, dataset, directory and
        ``content``, compact JSON, atomically, mode 0600 in a 0700 directory."""
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        doc = {
            "type": kind,
            "version": _VERSION,
            "dataset": self.dataset_id,
            "directory": self.directory,
            **content,
        }
        data = json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        write_atomic(path, data + b"\n", mode=0o600)
