"""Scanning a dataset directory and building its manifest and sidecar torrent."""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from .._gc import paused_gc
from ..errors import FileVerificationError, InvalidManifestError, PathError, UsageError
from .digest import BEP52, Digest
from .model import DID_KEY_RE, MAX_VERSION, FileEntry, Manifest, is_xsd_datetime, utc_now
from .paths import STATE_DIR_NAME, case_key, check_path, check_paths

#: The largest piece length ``create`` accepts (the automatic choice stops at 16 MiB; a hybrid
#: torrent pads every file to a whole piece, hashed).
LARGEST_PIECE_LENGTH = 128 * 1024 * 1024

__all__ = [
    "STATE_DIR_NAME",
    "BuildResult",
    "ScannedFile",
    "SkippedEntry",
    "build_manifest",
    "check_build_arguments",
    "default_torrent_name",
    "scan_directory",
    "utc_now",
]


@dataclass(frozen=True)
class ScannedFile:
    path: str  # manifest path
    local: str  # the file on disk (a str: one pathlib.Path per file costs ~2 us)
    size: int
    mtime_ns: int = 0  # when it was scanned; hashing checks the file is still as it was
    key: bytes = b""  # its stat key then (size, times, inode, device: hashing.stat_key_of)


@dataclass(frozen=True)
class SkippedEntry:
    """Something in the directory that is not part of the dataset, and why."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass(frozen=True)
class BuildResult:
    """The manifest (unsigned) and its sidecar torrent (``None`` when the dataset has no bytes)."""

    manifest: Manifest
    torrent: bytes | None
    skipped: tuple[SkippedEntry, ...]


@paused_gc
def scan_directory(
    directory: str | os.PathLike[str],
    *,
    strict: bool = False,
    exclude: Collection[str] = (),
) -> tuple[list[ScannedFile], list[SkippedEntry]]:
    """List the regular files below ``directory`` (sorted by manifest path).

    Symbolic links are never followed; they, and anything that is not a regular file or a
    directory, are skipped and reported (an error with ``strict``). owmanifest's own state
    directory (``.owmanifest``) is ignored, and so are the paths in ``exclude`` (the files the
    caller is about to write there: ``create``'s manifest and torrent), which are reported.

    Raises:
        UsageError: ``directory`` is not a readable directory.
        PathError: a file name is not valid UTF-8/NFC, or names collide by case; with ``strict``,
            a symlink or special file.
    """
    root = Path(directory)
    if not root.is_dir():
        raise UsageError("not a directory", path=str(root))
    skipped: list[SkippedEntry] = []

    def skip(rel: str, reason: str) -> None:
        if strict:
            raise PathError(f"{rel}: {reason} (refused with --strict)", path=str(root / rel))
        skipped.append(SkippedEntry(rel, reason))

    # The kind of each entry comes from the directory listing (no system call on most file
    # systems); the regular files are then examined in one pass (compiled where it is built),
    # whose sizes and times the hashing reuses. Only if that pass fails (a file vanished or
    # was replaced meanwhile) is each candidate examined on its own, to say which and why.
    candidates: list[tuple[str, str]] = []
    stack: list[tuple[Path, str]] = [(root, "")]
    while stack:
        current, prefix = stack.pop()
        try:
            entries = list(os.scandir(current))
        except OSError as exc:
            raise UsageError(f"cannot list directory: {exc.strerror}", path=str(current)) from exc
        for entry in entries:
            name = entry.name
            rel = prefix + name
            if not prefix and case_key(name) == case_key(STATE_DIR_NAME):
                if name == STATE_DIR_NAME and entry.is_dir(follow_symlinks=False):
                    continue  # owmanifest's own working area
                # any other spelling would be refused by fetch, which keeps its working area
                # there on a case-insensitive file system (found by a review)
                skip(rel, f"reserved name: owmanifest's working area ({STATE_DIR_NAME})")
                continue
            if rel in exclude:
                skipped.append(SkippedEntry(rel, "this command's output, not part of the dataset"))
                continue
            try:
                name.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise PathError(
                    "file name is not valid UTF-8; rename it", path=os.fsdecode(entry.path)
                ) from exc
            try:
                if entry.is_symlink():
                    skip(rel, "symbolic link (not followed)")
                elif entry.is_dir(follow_symlinks=False):
                    stack.append((Path(entry.path), rel + "/"))
                elif entry.is_file(follow_symlinks=False):
                    candidates.append((rel, entry.path))  # its path is checked below
                else:
                    skip(rel, "not a regular file")
            except OSError as exc:
                skip(rel, f"cannot stat: {exc.strerror}")
    from .hashing import STAT_KEY_SIZE as KEY_SIZE
    from .hashing import stat_files_and_keys, stat_key_of

    # With each file's stat key (ctime, inode, device too), hashing reads the very file scanned:
    # a change made while it is read and its mtime then set back is seen (found by a review).
    try:
        (sizes, mtimes), packed = stat_files_and_keys([local for _, local in candidates])
        keys = [packed[i : i + KEY_SIZE] for i in range(0, len(packed), KEY_SIZE)]
    except FileVerificationError:
        sizes, mtimes, keys = [], [], []
        kept = []
        for rel, local in candidates:
            try:
                st = os.lstat(local)
            except OSError as exc:
                skip(rel, f"cannot stat: {exc.strerror}")
                continue
            if stat.S_ISREG(st.st_mode):
                kept.append((rel, local))
                sizes.append(st.st_size)
                mtimes.append(st.st_mtime_ns)
                keys.append(stat_key_of(st))
            else:
                skip(rel, "not a regular file")
        candidates = kept
    files = [
        ScannedFile(rel, local, size, mtime, key)
        for (rel, local), size, mtime, key in zip(candidates, sizes, mtimes, keys, strict=True)
    ]
    files.sort(key=lambda f: f.path)
    try:
        check_paths([f.path for f in files], source=str(root))
    except PathError:
        for f in files:  # a bad path is reported as the file it names
            check_path(f.path, source=f.local)
        raise
    skipped.sort(key=lambda s: s.path)
    return files, skipped


def default_torrent_name(dataset_id: str) -> str:
    """A file-system-safe top directory name for the torrent, from the dataset id's last segment."""
    parts = urlsplit(dataset_id)
    segments = [s for s in unquote(parts.path or parts.netloc).split("/") if s]
    candidate = segments[-1] if segments else (parts.netloc or "dataset")
    candidate = re.sub(r"[^A-Za-z0-9._-]+", "-", candidate).strip(".-") or "dataset"
    return candidate[:100]


def _check_dataset_id(dataset_id: str) -> None:
    parts = urlsplit(dataset_id)
    if not parts.scheme or not (parts.netloc or parts.path) or "#" in dataset_id:
        raise UsageError(
            "the dataset id must be an absolute IRI without a fragment",
            expected="e.g. https://openworm.org/data/connectome",
            observed=dataset_id,
        )
    if any(c.isspace() for c in dataset_id) or any(c in dataset_id for c in '<>"{}|\\^`'):
        raise UsageError(
            "the dataset id contains characters not allowed in an IRI", observed=dataset_id
        )


def check_build_arguments(
    *,
    dataset_id: str,
    version: int,
    signers: Sequence[str],
    threshold: int,
    created: str | None = None,
    expires: str | None = None,
    piece_length: int | None = None,
    license: str | None = None,
    mirrors: Sequence[str] = (),
    trackers: Sequence[str] = (),
) -> list[str]:
    """Check the arguments of :func:`build_manifest` that do not need the directory, so that
    a caller can refuse bad ones before any long or lasting work; returns the signers, sorted
    and without repeats.

    Raises:
        UsageError: naming the argument, what it must be and what it is.
    """
    from ..schemas import is_absolute_iri

    _check_dataset_id(dataset_id)
    # What the manifest schema requires of them, which every reader checks: a manifest written
    # without these checks could never be shown, signed or verified (found by a review).
    named = [("mirror", m) for m in mirrors] + [("tracker", t) for t in trackers]
    if license is not None:
        named.append(("license", license))
    for what, text in named:
        if not is_absolute_iri(text):
            raise UsageError(
                f"the {what} must be an absolute IRI (a URL)",
                expected="e.g. https://... (no spaces)",
                observed=text,
            )
    if not 1 <= version <= MAX_VERSION:
        raise UsageError(
            "version must be a positive integer of at most 20 digits",
            expected=f"1..{MAX_VERSION}",
            observed=version,
        )
    for name, value in (("created", created), ("expires", expires)):
        if value is not None and not is_xsd_datetime(value, require_timezone=True):
            raise UsageError(
                f"{name} must be an xsd:dateTime with a time zone (a real date and time)",
                expected="e.g. 2026-01-31T12:00:00Z",
                observed=value,
            )
    unique_signers = sorted(set(signers))
    if not unique_signers:
        raise UsageError("at least one authorized signer (--signer did:key:...) is required")
    for did in unique_signers:
        if not DID_KEY_RE.match(did):
            raise UsageError(
                "a signer must be an Ed25519 did:key without fragment",
                expected="did:key:z6Mk...",
                observed=did,
            )
    if not 1 <= threshold <= len(unique_signers):
        raise UsageError(
            "threshold must be between 1 and the number of signers",
            expected=f"1..{len(unique_signers)}",
            observed=threshold,
        )
    if piece_length is not None and (
        not 16384 <= piece_length <= LARGEST_PIECE_LENGTH or piece_length & (piece_length - 1)
    ):
        raise UsageError(
            "piece length must be a power of two from 16 KiB to 128 MiB",
            expected="16384, 32768, ..., 134217728",
            observed=piece_length,
        )
    return unique_signers


@paused_gc
def build_manifest(
    directory: str | os.PathLike[str],
    *,
    dataset_id: str,
    version: int,
    signers: Sequence[str],
    threshold: int,
    title: str | None = None,
    description: str | None = None,
    license: str | None = None,
    created: str | None = None,
    expires: str | None = None,
    previous_version: Digest | None = None,
    piece_length: int | None = None,
    hybrid: bool = True,
    private: bool = False,
    mirrors: Sequence[str] = (),
    trackers: Sequence[str] = (),
    strict: bool = False,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
    on_scanned: Callable[[int, int], None] | None = None,
    exclude: Collection[str] = (),
) -> BuildResult:
    """Scan ``directory``, hash every file once and build the manifest and its sidecar torrent.

    The torrent is a hybrid v1+v2 torrent (v2 only with ``hybrid=False``) built deterministically
    from the scan; its info-hashes are recorded in the manifest so the signed manifest
    authenticates it.

    Args:
        on_scanned: called with (number of files, total bytes) once the scan is done, before
            hashing (for progress bars).
        exclude: paths below ``directory`` (manifest paths) that are not part of the dataset:
            where the caller writes the manifest and its torrent (:func:`scan_directory`).

    Raises:
        UsageError: bad arguments (id, version, dates, threshold, signers, piece length).
        PathError: see :func:`scan_directory`.
        FileVerificationError: a file changed or vanished while it was hashed.
    """
    from .hashing import _hash_stated, worker_count
    from .torrent import TorrentFile, build_torrent_with_hashes, choose_piece_length

    unique_signers = check_build_arguments(
        dataset_id=dataset_id,
        version=version,
        signers=signers,
        threshold=threshold,
        created=created,
        expires=expires,
        piece_length=piece_length,
        license=license,
        mirrors=mirrors,
        trackers=trackers,
    )
    files, skipped = scan_directory(directory, strict=strict, exclude=exclude)
    total = sum(f.size for f in files)
    if piece_length is None:
        piece_length = choose_piece_length(total, sum(1 for f in files if f.size))
    if on_scanned is not None:
        on_scanned(len(files), total)
    hashes = _hash_stated(
        [f.local for f in files],
        [f.size for f in files],
        [f.mtime_ns for f in files],
        piece_length,
        hybrid,
        False,
        worker_count(workers),
        progress,
        keys=b"".join(f.key for f in files),
    )
    entries = []
    for f, h in zip(files, hashes, strict=True):
        if h.size != f.size:
            raise InvalidManifestError(
                "file changed size while it was hashed",
                path=f.local,
                expected=f.size,
                observed=h.size,
            )
        root = None if h.root is None else Digest(BEP52, h.root)
        entries.append(FileEntry(path=f.path, size=h.size, root=root))
    name = default_torrent_name(dataset_id)
    torrent: bytes | None = None
    v1: str | None = None
    v2: str | None = None
    if total > 0:  # BitTorrent cannot describe a dataset without a single byte
        torrent, ih = build_torrent_with_hashes(
            name,
            [TorrentFile(f.path, h.size, h) for f, h in zip(files, hashes, strict=True)],
            piece_length,
            hybrid=hybrid,
            private=private,
            trackers=sorted(set(trackers)),  # as the manifest records them: the same torrent
        )
        v1, v2 = ih.v1, ih.v2
    manifest = Manifest(
        id=dataset_id,
        version=version,
        files=tuple(entries),
        signers=tuple(unique_signers),
        threshold=threshold,
        piece_length=piece_length,
        info_hash_v1=v1,
        info_hash_v2=v2,
        torrent_name=name if torrent is not None else None,
        title=title,
        description=description,
        license=license,
        created=created or utc_now(),
        previous_version=previous_version,
        expires=expires,
        private=private,
        mirrors=tuple(sorted(set(mirrors))),
        trackers=tuple(sorted(set(trackers))),
    )
    return BuildResult(manifest=manifest, torrent=torrent, skipped=tuple(skipped))
