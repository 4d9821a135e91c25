"""Checking a directory against a verified manifest (sizes and BEP 52 roots)."""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .._gc import paused_gc
from ..errors import FileVerificationError, UsageError
from ..manifest.model import FileEntry, Manifest
from ..manifest.paths import STATE_DIR_NAME
from .result import FileProblem, TreeReport, VerifiedManifest

if TYPE_CHECKING:
    from ..manifest.hashing import FileStats
    from .hashcache import HashCache

__all__ = ["check_tree", "verify_tree"]


def _extra_files(directory: Path, expected: set[str]) -> list[str]:
    extra: list[str] = []
    stack: list[tuple[Path, str]] = [(directory, "")]
    while stack:
        current, prefix = stack.pop()
        try:
            entries = list(os.scandir(current))
        except OSError:
            continue
        for entry in entries:
            rel = prefix + entry.name
            if not prefix and entry.name == STATE_DIR_NAME:
                continue
            if entry.is_dir(follow_symlinks=False):
                stack.append((Path(entry.path), rel + "/"))
            elif rel not in expected:
                extra.append(rel)
    return sorted(extra)


def _update_cache(
    cache: HashCache,
    root: Path,
    hashed: Sequence[FileEntry],
    before: dict[str, os.stat_result],
    problems: Sequence[FileProblem],
    whole: Sequence[FileEntry] | None,
) -> None:
    """Record the files that were hashed and verified, if unchanged since they were listed;
    with ``whole`` (every file of the manifest, all verified), the tree's fingerprint too."""
    import struct

    from ..manifest.hashing import STAT_KEY_FORMAT
    from .hashcache import stat_key, tree_fingerprint

    unchanged = []
    for entry in hashed:
        try:
            after = os.lstat(root / entry.path)
        except OSError:
            continue
        if stat_key(after) == stat_key(before[entry.path]):
            unchanged.append((entry, after))
    cache.forget(p.path for p in problems)
    cache.record(unchanged)
    fingerprint = None
    if whole is not None and not problems:
        # the stat fields each file verified with, as the per-file cache now holds them: a
        # file that changed while it was hashed was not recorded, and unless an earlier run
        # recorded it with the root expected now, there is no fingerprint
        known = [cache.files.get(entry.path) for entry in whole]
        if all(
            k is not None and k[1] == (None if e.root is None else e.root.value)
            for k, e in zip(known, whole, strict=True)
        ):
            pack = struct.Struct(STAT_KEY_FORMAT).pack
            keys = b"".join([pack(*k[0]) for k in known if k is not None])
            fingerprint = tree_fingerprint(cache.dataset_id, cache.directory, whole, keys)
    with contextlib.suppress(OSError):  # an unwritable cache only means hashing next time
        cache.save()
        cache.save_tree(fingerprint)


def _tree_unchanged(manifest: Manifest, root: Path, prefix: str) -> bool:
    """Whether the whole tree has the fingerprint recorded when all of it last verified here
    (``verify --fast``; :mod:`owmanifest.verify.hashcache`)."""
    from ..manifest.hashing import stat_keys
    from .hashcache import HashCache, tree_fingerprint

    recorded = HashCache.load_tree(manifest.id, root)
    if recorded is None:
        return False
    fingerprint, directory = recorded
    try:
        keys = stat_keys([prefix + e.path for e in manifest.files], follow_symlinks=False)
    except FileVerificationError:
        return False
    return tree_fingerprint(manifest.id, directory, manifest.files, keys) == fingerprint


def verify_tree(
    verified: VerifiedManifest,
    directory: str | os.PathLike[str],
    *,
    files: Sequence[FileEntry] | None = None,
    strict: bool = False,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
    fast: bool = False,
) -> TreeReport:
    """Check that ``directory`` holds the files of a verified manifest, byte for byte.

    Every listed file must be a regular file (symbolic links are not followed) of the declared
    size whose BEP 52 root matches. Files not in the manifest are reported as ``extra``; with
    ``strict`` they are failures.

    Args:
        files: check only these entries (default: all).
        fast: trust the hash cache (:mod:`owmanifest.verify.hashcache`) for files whose size,
            mtime, ctime, inode and device are those they had when they last verified here;
            hash the others. Without it every byte is hashed (the cache is not even read).

    Returns:
        The report, when everything verified.

    Raises:
        UsageError: ``directory`` is not a directory.
        FileVerificationError: one or more files failed; ``error.report`` lists every problem.
    """
    if not isinstance(verified, VerifiedManifest):
        raise TypeError("verify_tree needs a VerifiedManifest (see verify_manifest)")
    return check_tree(
        verified.manifest,
        directory,
        files=files,
        strict=strict,
        workers=workers,
        progress=progress,
        fast=fast,
    )


def _stat_at_once(entries: Sequence[FileEntry], prefix: str) -> tuple[list[str], FileStats] | None:
    """The paths and stats of every entry, taken in one pass (compiled where it is built), when
    each is a regular file (not a symbolic link) of its declared size; else ``None``, and
    :func:`check_tree` examines each to say which is not and why."""
    from ..manifest.hashing import stat_files

    paths = [prefix + entry.path for entry in entries]
    try:
        found = stat_files(paths, follow_symlinks=False)
    except FileVerificationError:
        return None
    if found.sizes != [entry.size for entry in entries]:
        return None
    return paths, found


@paused_gc
def check_tree(
    manifest: Manifest,
    directory: str | os.PathLike[str],
    *,
    files: Sequence[FileEntry] | None = None,
    strict: bool = False,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
    fast: bool = False,
) -> TreeReport:
    """Check ``directory`` against a manifest whose signatures may not be checked yet.

    Used by :func:`verify_tree` and by ``sign --check`` (a signer attests to bytes it has seen).
    Same contract as :func:`verify_tree`.
    """
    from ..manifest.hashing import FileHashes, FileStats, hash_files

    root = Path(directory)
    if not root.is_dir():
        raise UsageError("not a directory", path=str(root))
    entries = tuple(manifest.files if files is None else files)
    problems: list[FileProblem] = []
    cache = None
    base = os.fspath(root)
    prefix = base if base.endswith(os.sep) else base + os.sep  # os.path.join, once
    if fast and files is None and _tree_unchanged(manifest, root, prefix):
        if progress is not None:
            progress(sum(entry.size for entry in entries))
        return _report(root, manifest, entries, [], strict, files)
    if fast:  # the cache's module only then (start-up time of every other verify)
        from .hashcache import HashCache

        cache = HashCache.load(manifest.id, root)
    cached: list[FileEntry] = []
    stats: dict[str, os.stat_result] = {}
    at_once = _stat_at_once(entries, prefix) if cache is None else None
    if at_once is not None:
        to_hash, (hash_paths, hash_stats) = list(entries), at_once
    else:
        to_hash, hash_paths, hash_stats = [], [], FileStats([], [])
    for entry in entries if at_once is None else ():
        path = prefix + entry.path
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            problems.append(FileProblem(entry.path, "missing"))
            continue
        except OSError as exc:
            problems.append(FileProblem(entry.path, "unreadable", observed=exc.strerror))
            continue
        if stat.S_ISLNK(st.st_mode):
            problems.append(FileProblem(entry.path, "symlink", "regular file", "symbolic link"))
        elif not stat.S_ISREG(st.st_mode):
            problems.append(FileProblem(entry.path, "not-a-file", "regular file", "other"))
        elif st.st_size != entry.size:
            problems.append(FileProblem(entry.path, "size", str(entry.size), str(st.st_size)))
        elif cache is not None and cache.is_fresh(entry, st):
            cached.append(entry)  # verified before, and not touched since: not read again
            if progress is not None:
                progress(entry.size)
        else:
            to_hash.append(entry)
            hash_paths.append(path)
            hash_stats.sizes.append(st.st_size)
            hash_stats.mtimes_ns.append(st.st_mtime_ns)
            if cache is not None:
                stats[entry.path] = st
    if to_hash:
        results: list[FileHashes] | None
        try:
            results = hash_files(
                hash_paths,
                manifest.piece_length,
                v1=False,
                workers=workers,
                progress=progress,
                stats=hash_stats,
            )
        except FileVerificationError:
            results = None
        if results is None:  # a file changed under us: fall back to one at a time
            from ..manifest.hashing import hash_file

            results_or_none: list[FileHashes | None] = []
            for e in to_hash:
                try:
                    results_or_none.append(
                        hash_file(root / e.path, manifest.piece_length, v1=False)
                    )
                except FileVerificationError as exc:
                    problems.append(FileProblem(e.path, "unreadable", observed=str(exc)))
                    results_or_none.append(None)
        else:
            results_or_none = list(results)
        good: list[FileEntry] = []
        for entry, h in zip(to_hash, results_or_none, strict=True):
            if h is None:
                continue
            observed = None if h.root is None else h.root
            expected = None if entry.root is None else entry.root.value
            if h.size != entry.size:
                problems.append(FileProblem(entry.path, "size", str(entry.size), str(h.size)))
            elif observed != expected:
                problems.append(
                    FileProblem(
                        entry.path,
                        "digest",
                        str(entry.root),
                        "bep52:" + (observed.hex() if observed else "(none)"),
                    )
                )
            else:
                good.append(entry)
    else:
        good = []
    if cache is not None:
        _update_cache(cache, root, good, stats, problems, entries if files is None else None)
        passed = {e.path for e in (*good, *cached)}
        good = [e for e in entries if e.path in passed]
    return _report(root, manifest, good, problems, strict, files)


def _report(
    root: Path,
    manifest: Manifest,
    good: Sequence[FileEntry],
    problems: list[FileProblem],
    strict: bool,
    files: Sequence[FileEntry] | None,
) -> TreeReport:
    """The report of :func:`check_tree`, with the extra files when the whole tree was checked;
    raises if anything failed."""
    entries = manifest.files if files is None else files
    extra = tuple(_extra_files(root, {e.path for e in manifest.files})) if files is None else ()
    if strict:
        problems.extend(FileProblem(p, "extra", "not present", "present") for p in extra)
    problems.sort(key=lambda p: p.path)
    report = TreeReport(
        directory=str(root), verified=tuple(good), problems=tuple(problems), extra=extra
    )
    if problems:
        first = problems[0]
        err = FileVerificationError(
            f"{len(problems)} of {len(entries)} file(s) failed verification, first: {first}",
            path=str(root / first.path),
            expected=first.expected,
            observed=first.observed,
        )
        err.report = report
        raise err
    return report
