"""owmeta bundle archives in an owmanifest manifest: the naming rule, and importing an index.

**The naming rule.** A manifest describes owmeta bundle archives (``.tar.xz`` files, as made by
``owm bundle save``) by where they are in the dataset::

    bundles/<bundle id, percent-encoded as one path segment>/<version>.tar.xz

so ``openworm/owmeta-data`` version 6 is ``bundles/openworm%2Fowmeta-data/6.tar.xz``. The
segment is ``urllib.parse.quote(bundle_id, safe="")``, exactly how owmeta-core names a bundle's
directory in its bundle cache (``<bundles>/openworm%2Fowmeta-data/6/``). Every bundle id has
exactly one path and every path at most one (id, version): a path is read as a bundle only if
re-encoding the decoded id gives the same segment and the version is a positive integer
without leading zeros. Other files of the manifest are allowed and ignored by the loaders.

Because the rule uses the signed path, the signed manifest binds each archive's bytes to its
bundle id and version; the loaders also check the archive's own ``manifest`` member.

**Importing an index.** :func:`import_index` turns owmeta's HTTP bundle index (``index.json``:
``{id: {version: {"url": ..., "hashes": {"sha256": ...}}}}``) into that layout and a manifest:
it finds every archive locally, checks it against every hash the index gives (and its own
``manifest`` member against the index's id and version) **before** writing anything, places
the archives (hard links when possible) under a layout directory, and builds the (unsigned)
manifest and its sidecar torrent from that directory.

This module does not need owmeta-core.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import lzma
import os
import re
import shutil
import tarfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from ..errors import (
    DigestMismatchError,
    Error,
    FileVerificationError,
    MissingFileError,
    UsageError,
)
from ..manifest.builder import BuildResult, build_manifest, check_build_arguments
from ..manifest.digest import Digest
from ..manifest.model import FileEntry, Manifest

__all__ = [
    "ARCHIVE_SUFFIX",
    "BUNDLES_DIR",
    "BundleArchive",
    "ImportResult",
    "IndexEntry",
    "archive_identity",
    "bundle_path",
    "bundles_in_manifest",
    "check_archive",
    "find_bundle",
    "import_index",
    "locate_archive",
    "parse_bundle_path",
    "read_index",
]

#: The directory of the dataset that holds bundle archives.
BUNDLES_DIR = "bundles"
#: owmeta-core's bundle archive format (``owm bundle save``): an xz-compressed tar file.
ARCHIVE_SUFFIX = ".tar.xz"

_VERSION = re.compile(r"^[1-9][0-9]{0,17}$")
_CHUNK = 1 << 20


# --- the naming rule ------------------------------------------------------------------------------


def bundle_path(bundle_id: str, version: int) -> str:
    """The manifest path of bundle ``bundle_id`` at ``version``.

    Raises:
        UsageError: an empty bundle id or a version that is not a positive integer.
    """
    if not isinstance(bundle_id, str) or bundle_id in ("", ".", ".."):
        raise UsageError(
            "a bundle id must be a non-empty string other than '.' and '..'",
            observed=repr(bundle_id),
        )
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise UsageError(
            "a bundle version must be a positive integer", expected=">= 1", observed=version
        )
    return f"{BUNDLES_DIR}/{quote(bundle_id, safe='')}/{version}{ARCHIVE_SUFFIX}"


def parse_bundle_path(path: str) -> tuple[str, int] | None:
    """``(bundle id, version)`` if ``path`` follows the naming rule, else ``None``."""
    parts = path.split("/")
    if len(parts) != 3 or parts[0] != BUNDLES_DIR or not parts[2].endswith(ARCHIVE_SUFFIX):
        return None
    segment, number = parts[1], parts[2][: -len(ARCHIVE_SUFFIX)]
    if not _VERSION.match(number):
        return None
    try:
        bundle_id = unquote(segment, errors="strict")
    except UnicodeDecodeError:
        return None
    if bundle_id in ("", ".", "..") or quote(bundle_id, safe="") != segment:
        return None
    return bundle_id, int(number)


@dataclass(frozen=True)
class BundleArchive:
    """One bundle archive listed in a manifest."""

    bundle_id: str
    version: int
    entry: FileEntry


def bundles_in_manifest(manifest: Manifest) -> list[BundleArchive]:
    """Every bundle archive the manifest lists, by bundle id then version."""
    out = []
    for entry in manifest.files:
        parsed = parse_bundle_path(entry.path)
        if parsed is not None:
            out.append(BundleArchive(parsed[0], parsed[1], entry))
    out.sort(key=lambda b: (b.bundle_id, b.version))
    return out


def find_bundle(manifest: Manifest, bundle_id: str, version: int | None = None) -> BundleArchive:
    """The archive of ``bundle_id`` at ``version`` (default: the highest version listed).

    Raises:
        MissingFileError: the manifest does not list that bundle (version); the message names
            the versions it does list.
    """
    found = [b for b in bundles_in_manifest(manifest) if b.bundle_id == bundle_id]
    if version is not None:
        for b in found:
            if b.version == version:
                return b
    elif found:
        return found[-1]
    listed = ", ".join(str(b.version) for b in found) or "none"
    wanted = bundle_id if version is None else f"{bundle_id} version {version}"
    raise MissingFileError(
        f"the manifest lists no bundle {wanted} (versions listed: {listed})",
        uri=manifest.id,
        expected=bundle_path(bundle_id, version) if version else f"{BUNDLES_DIR}/<id>/<n>.tar.xz",
        observed="not listed",
    )


def _read_member_manifest(tar: tarfile.TarFile, source: str) -> Mapping[str, Any]:
    for name in ("./manifest", "manifest"):
        try:
            member = tar.getmember(name)
        except KeyError:
            continue
        if not member.isfile():
            break
        fh = tar.extractfile(member)
        if fh is None:  # pragma: no cover - isfile() above
            break
        with fh:
            data = fh.read(1 << 20)
        try:
            doc = json.loads(data)
        except ValueError as exc:
            raise FileVerificationError(
                f"the bundle archive's manifest is not JSON: {exc}", path=source
            ) from exc
        if not isinstance(doc, dict):
            raise FileVerificationError(
                "the bundle archive's manifest is not a JSON object", path=source
            )
        return doc
    raise FileVerificationError(
        "not an owmeta bundle archive: no regular 'manifest' member",
        path=source,
        expected="a tar.xz archive with a 'manifest' file",
    )


def archive_identity(path: str | os.PathLike[str]) -> tuple[str, int]:
    """``(id, version)`` from the ``manifest`` member of the bundle archive at ``path``.

    Raises:
        MissingFileError: ``path`` does not exist.
        FileVerificationError: not an xz tar archive, no ``manifest`` member, or one without a
            string ``id`` and a positive integer ``version``.
    """
    source = str(path)
    if not os.path.isfile(source):
        raise MissingFileError("bundle archive not found", path=source)
    try:
        with tarfile.open(source, mode="r:xz") as tar:
            doc = _read_member_manifest(tar, source)
    except (tarfile.TarError, lzma.LZMAError, OSError, EOFError) as exc:
        raise FileVerificationError(
            f"not a readable owmeta bundle archive (xz-compressed tar): {exc}", path=source
        ) from exc
    bundle_id, version = doc.get("id"), doc.get("version")
    if not isinstance(bundle_id, str) or not bundle_id:
        raise FileVerificationError(
            "the bundle archive's manifest has no id", path=source, observed=repr(bundle_id)
        )
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise FileVerificationError(
            "the bundle archive's manifest has no positive integer version",
            path=source,
            observed=repr(version),
        )
    return bundle_id, version


# --- owmeta's bundle index ------------------------------------------------------------------------


@dataclass(frozen=True)
class IndexEntry:
    """One (bundle id, version) of an owmeta bundle index."""

    bundle_id: str
    version: int
    url: str
    hashes: Mapping[str, str] = field(default_factory=dict)

    @property
    def path(self) -> str:
        """Its path in the manifest (see :func:`bundle_path`)."""
        return bundle_path(self.bundle_id, self.version)


def read_index(path: str | os.PathLike[str]) -> list[IndexEntry]:
    """Read owmeta's bundle index (``index.json``), sorted by id and version.

    Raises:
        UsageError: unreadable, not JSON, or not of the index's shape; the message names the
            offending entry.
    """
    source = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise UsageError(
            f"cannot read the bundle index: {exc.strerror or exc}", path=source
        ) from exc
    try:
        doc = json.loads(data)
    except ValueError as exc:
        raise UsageError(f"the bundle index is not JSON: {exc}", path=source) from exc
    shape = '{"<bundle id>": {"<version>": {"url": "...", "hashes": {"sha256": "<hex>"}}}}'
    if not isinstance(doc, dict) or not doc:
        raise UsageError("not an owmeta bundle index", path=source, expected=shape)
    out: list[IndexEntry] = []
    for bundle_id, versions in doc.items():
        if not bundle_id or not isinstance(versions, dict):
            raise UsageError(
                f"bundle {bundle_id!r}: not a mapping of versions", path=source, expected=shape
            )
        for number, info in versions.items():
            where = f"bundle {bundle_id!r} version {number!r}"
            if not isinstance(number, str) or not _VERSION.match(number):
                raise UsageError(
                    f"{where}: not a positive integer version", path=source, observed=number
                )
            if not isinstance(info, dict) or not isinstance(info.get("url"), str):
                raise UsageError(f"{where}: no url", path=source, expected=shape)
            hashes = info.get("hashes")
            if (
                not isinstance(hashes, dict)
                or not hashes
                or not all(
                    isinstance(k, str) and isinstance(v, str) and re.fullmatch(r"[0-9a-fA-F]+", v)
                    for k, v in hashes.items()
                )
            ):
                raise UsageError(
                    f"{where}: no hashes", path=source, expected='"hashes": {"sha256": "<hex>"}'
                )
            out.append(
                IndexEntry(
                    bundle_id,
                    int(number),
                    info["url"],
                    {k.lower(): v.lower() for k, v in hashes.items()},
                )
            )
    out.sort(key=lambda e: (e.bundle_id, e.version))
    return out


def locate_archive(
    entry: IndexEntry, index_dir: str | os.PathLike[str], files_dir: str | os.PathLike[str] | None
) -> Path:
    """The local copy of ``entry``'s archive.

    With ``files_dir``: ``files_dir/<last segment of the URL>``. Otherwise the longest tail of
    the URL's path that exists relative to the index's directory (so a checkout of a bundle
    repository, with ``index.json`` next to ``files/``, works as is).

    Raises:
        UsageError: no such file; the message lists where it was looked for.
    """
    segments = [unquote(s) for s in urlsplit(entry.url).path.split("/") if s]
    if not segments or any(s in (".", "..") or "/" in s for s in segments):
        raise UsageError(
            f"bundle {entry.bundle_id} version {entry.version}: unusable url in the index",
            uri=entry.url,
        )
    if files_dir is not None:
        candidates = [Path(files_dir) / segments[-1]]
    else:
        base = Path(index_dir)
        candidates = [base.joinpath(*segments[i:]) for i in range(len(segments))]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise UsageError(
        f"bundle {entry.bundle_id} version {entry.version}: archive not found "
        "(use --files DIR for a directory holding the archives)",
        uri=entry.url,
        expected=" or ".join(str(c) for c in candidates[-2:]),
        observed="no such file",
    )


def _digests(path: Path, algorithms: Sequence[str]) -> dict[str, str]:
    hashers = {a: hashlib.new(a) for a in algorithms}
    try:
        with path.open("rb") as fh:
            while chunk := fh.read(_CHUNK):
                for h in hashers.values():
                    h.update(chunk)
    except OSError as exc:
        raise FileVerificationError(f"cannot read: {exc.strerror or exc}", path=str(path)) from exc
    return {a: h.hexdigest() for a, h in hashers.items()}


#: Hashes an index may vouch for an archive with (collision-resistant, fixed length).
STRONG_HASHES = frozenset(
    {"sha224", "sha256", "sha384", "sha512", "sha3_224", "sha3_256", "sha3_384", "sha3_512",
     "blake2b", "blake2s"}
)  # fmt: skip


def check_archive(entry: IndexEntry, path: str | os.PathLike[str]) -> None:
    """Check the archive at ``path`` against the index: every fixed-length hash it gives that
    hashlib knows, at least one of them strong (:data:`STRONG_HASHES`), and the archive's own
    id and version.

    Raises:
        UsageError: the index gives no strong hash that hashlib knows.
        DigestMismatchError: a hash differs; the message names the path and both digests.
        FileVerificationError: not a bundle archive, or it names another id or version.
    """
    p = Path(path)
    known = sorted(
        a for a in entry.hashes if a in hashlib.algorithms_available and not a.startswith("shake_")
    )
    if not STRONG_HASHES.intersection(known):
        raise UsageError(
            f"bundle {entry.bundle_id} version {entry.version}: the index gives no strong hash "
            "this Python knows",
            expected="one of " + ", ".join(sorted(STRONG_HASHES)),
            observed=", ".join(sorted(entry.hashes)),
        )
    observed = _digests(p, known)
    for algorithm in known:
        if observed[algorithm] != entry.hashes[algorithm]:
            raise DigestMismatchError(
                f"{p}: archive of {entry.bundle_id} version {entry.version} does not match "
                f"the index's {algorithm}",
                path=str(p),
                expected=f"{algorithm}:{entry.hashes[algorithm]}",
                observed=f"{algorithm}:{observed[algorithm]}",
            )
    bundle_id, version = archive_identity(p)
    if (bundle_id, version) != (entry.bundle_id, entry.version):
        raise FileVerificationError(
            f"{p}: the archive is another bundle than the index says",
            path=str(p),
            expected=f"{entry.bundle_id} version {entry.version}",
            observed=f"{bundle_id} version {version}",
        )


# --- the import -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportResult:
    """What :func:`import_index` made.

    Attributes:
        build: the manifest (unsigned) and its sidecar torrent.
        layout: the directory laid out like the dataset (seed it; copy it to the mirror).
        entries: the index entries, with the local archive each was checked from.
        linked: how many archives were hard-linked (the rest were copied or already there).
    """

    build: BuildResult
    layout: Path
    entries: tuple[tuple[IndexEntry, Path], ...]
    linked: int


def _same_file(a: Path, b: Path) -> bool:
    with contextlib.suppress(OSError):
        if os.path.samefile(a, b):
            return True
    return False


@contextlib.contextmanager
def _tmp_sibling(target: Path) -> Iterator[Path]:
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    try:
        yield tmp
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _place(source: Path, target: Path, entry: IndexEntry, *, force: bool) -> bool:
    """Put ``source`` at ``target`` (hard link, else copy); returns whether it was linked.

    Raises:
        UsageError: ``target`` exists with other content and not ``force``.
        DigestMismatchError: the copy does not match the index (the disk changed it).
    """
    if target.is_symlink() or (target.exists() and not target.is_file()):
        raise UsageError("not a regular file", path=str(target))
    if target.exists():
        if _same_file(source, target):
            return False
        if not force:
            try:
                check_archive(entry, target)
            except Error:
                raise UsageError(
                    "the layout already has a different file here (use --force to replace it)",
                    path=str(target),
                ) from None
            return False
    target.parent.mkdir(parents=True, exist_ok=True)
    with _tmp_sibling(target) as tmp:
        try:
            os.link(source, tmp)
            linked = True
        except OSError:
            shutil.copyfile(source, tmp)
            linked = False
            check_archive(entry, tmp)
        os.replace(tmp, target)
    return linked


def _files_under(root: Path) -> list[str]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel = Path(dirpath).relative_to(root)
        if rel == Path("."):
            dirnames[:] = [d for d in dirnames if d != ".owmanifest"]
        for name in filenames:
            out.append((rel / name).as_posix())
    return sorted(out)


def _mirror_url(url: str) -> str:
    """``url`` with a trailing slash.

    Raises:
        UsageError: not an absolute http(s) URL, or with a query or fragment.
    """
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise UsageError(
            "the base URL and mirrors must be absolute http:// or https:// URLs",
            expected="https://host/path/",
            observed=url,
        )
    if parts.query or parts.fragment:
        raise UsageError("a base URL or mirror may not have a query or fragment", observed=url)
    return url if url.endswith("/") else url + "/"


def import_index(
    index: str | os.PathLike[str],
    *,
    base_url: str,
    layout: str | os.PathLike[str],
    signers: Sequence[str],
    threshold: int | None = None,
    dataset_id: str | None = None,
    version: int = 1,
    files_dir: str | os.PathLike[str] | None = None,
    title: str | None = None,
    description: str | None = None,
    created: str | None = None,
    previous_version: Digest | None = None,
    mirrors: Sequence[str] = (),
    trackers: Sequence[str] = (),
    hybrid: bool = True,
    force: bool = False,
) -> ImportResult:
    """Turn owmeta's bundle index into a layout directory and an unsigned manifest.

    Args:
        index: the ``index.json`` file.
        base_url: the HTTP(S) URL where ``layout`` will be served (recorded as a mirror).
        layout: the directory to lay the archives out in (created; hard links when possible).
        signers: the authorized signers (``did:key``).
        threshold: signatures needed (default: all signers).
        dataset_id: the dataset IRI (default: ``base_url`` without its trailing slash).
        version: the manifest's version (increase it each time the index changes).
        files_dir: where the archives are (default: found relative to ``index``).
        created: the manifest's ``created`` time (default: now).
        previous_version: canonical hash of the previous version of this manifest.
        mirrors: more HTTP(S) URLs serving the same layout (recorded after ``base_url``).

    Returns:
        The manifest and torrent (not yet written anywhere), the layout and what was checked.

    Raises:
        UsageError: a malformed index, an archive that cannot be found, a bad base URL, a
            layout directory with files that are not in the index (or different ones, unless
            ``force``), or bad manifest arguments.
        DigestMismatchError: an archive does not match the index's hash (nothing is written).
        FileVerificationError: an archive is not the bundle the index says.
    """
    all_mirrors = [_mirror_url(u) for u in (base_url, *mirrors)]
    mirror = all_mirrors[0]
    signer_list = list(signers)
    dataset = dataset_id or mirror.rstrip("/")
    check_build_arguments(  # before anything is laid out
        dataset_id=dataset,
        version=version,
        signers=signer_list,
        threshold=threshold if threshold is not None else len(set(signer_list)),
        created=created,
        mirrors=all_mirrors,
        trackers=trackers,
    )
    index_path = Path(index)
    entries = read_index(index_path)
    located = [(e, locate_archive(e, index_path.parent, files_dir)) for e in entries]
    for entry, path in located:  # everything is checked before anything is written
        check_archive(entry, path)
    root = Path(layout)
    if root.exists() and not root.is_dir():
        raise UsageError("the layout is not a directory", path=str(root))
    if index_path.resolve().is_relative_to(root.resolve()):
        raise UsageError(
            "the layout directory holds the index itself (is it the checkout of the bundle "
            "repository?); lay the bundles out elsewhere: --layout DIR, or another output name",
            path=str(root),
            observed=str(index_path),
        )
    root.mkdir(parents=True, exist_ok=True)
    expected = {e.path for e in entries}
    stray = [p for p in _files_under(root) if p not in expected]
    if stray:
        raise UsageError(
            "the layout directory holds files that are not in the index; use an empty "
            "directory (or remove them)",
            path=str(root),
            observed=", ".join(stray[:5]) + (" ..." if len(stray) > 5 else ""),
        )
    linked = 0
    for entry, path in located:
        linked += _place(path, root.joinpath(*entry.path.split("/")), entry, force=force)
    build = build_manifest(
        root,
        dataset_id=dataset,
        version=version,
        signers=signer_list,
        threshold=threshold if threshold is not None else len(set(signer_list)),
        title=title,
        description=description,
        created=created,
        previous_version=previous_version,
        mirrors=list(dict.fromkeys(all_mirrors)),
        trackers=trackers,
        hybrid=hybrid,
        strict=True,
    )
    return ImportResult(build=build, layout=root, entries=tuple(located), linked=linked)
