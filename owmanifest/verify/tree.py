"""Checking a directory against a verified manifest (sizes and BEP 52 roots)."""

from __future__ import annotations

import contextlib
import os
import stat
import time
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


def _extra_files(directory: Path, expected: set[str]) -> tuple[list[str], list[str]]:
    """The entries below ``directory`` that are not files of the manifest (directories
    descended, not listed), sorted, and the symbolic links among them."""
    extra: list[str] = []
    links: list[str] = []
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
                if entry.is_symlink():
                    links.append(rel)
    return sorted(extra), links


def _through_links(
    root: Path, entries: Sequence[FileEntry], links: Sequence[str] | None
) -> dict[str, str]:
    """The entries reached through a symbolic link to a directory (which ``create`` does not
    follow either), each with the link: from ``links`` (the links the walk of the whole tree
    found), else by examining each entry's directories."""
    through: dict[str, str] = {}
    if links is not None:
        for link in links:
            inside = link + "/"
            through.update((e.path, link) for e in entries if e.path.startswith(inside))
        return through
    kinds: dict[str, bool] = {}  # directory -> is a symbolic link
    for entry in entries:
        parts = entry.path.split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            directory = "/".join(parts[:depth])
            if directory not in kinds:
                try:
                    kinds[directory] = stat.S_ISLNK(os.lstat(root / directory).st_mode)
                except OSError:
                    kinds[directory] = False  # missing: the file is reported as such
            if kinds[directory]:
                through[entry.path] = directory
                break
    return through


def _update_cache(
    cache: HashCache,
    prefix: str,
    hashed: Sequence[FileEntry],
    before: dict[str, bytes],
    started_ns: int,
    problems: Sequence[FileProblem],
    whole: tuple[Sequence[FileEntry], bytes] | None,
) -> None:
    """Record the files that were hashed and verified, if their stat keys are still those of
    ``before`` (taken before they were hashed) and they had not changed just before
    ``started_ns`` (:func:`~owmanifest.verify.hashcache.settled`). With ``whole`` (every file of
    the manifest and the stat keys they all had before anything was hashed), the tree's
    fingerprint too, when every file verified, from the cache or hashed and recorded."""
    from ..manifest.hashing import STAT_KEY_SIZE as SIZE
    from ..manifest.hashing import stat_key_of, stat_keys
    from .hashcache import settled, tree_fingerprint

    paths = [prefix + entry.path for entry in hashed]
    after: list[bytes | None]
    try:
        keys = stat_keys(paths, follow_symlinks=False)
        after = [keys[i : i + SIZE] for i in range(0, len(keys), SIZE)]
    except FileVerificationError:  # one of them is gone or no longer a file: one at a time
        after = []
        for path in paths:
            try:
                after.append(stat_key_of(os.lstat(path)))
            except OSError:
                after.append(None)
    unchanged = [
        (e, k)
        for e, k in zip(hashed, after, strict=True)
        if k == before[e.path] and settled(k, started_ns)
    ]
    cache.forget(p.path for p in problems)
    cache.record([e for e, _ in unchanged], b"".join([k for _, k in unchanged if k]))
    fingerprint = None
    if whole is not None and not problems and len(unchanged) == len(hashed):
        # each file had these stat keys when it verified, here or when the cache recorded it
        entries, keys = whole
        fingerprint = tree_fingerprint(cache.dataset_id, cache.directory, entries, keys)
    with contextlib.suppress(OSError):  # an unwritable cache only means hashing next time
        cache.save()
        cache.save_tree(fingerprint)


def _tree_unchanged(manifest: Manifest, root: Path, keys: bytes) -> bool:
    """Whether the whole tree, its files' stat keys ``keys``, has the fingerprint recorded when
    all of it last verified here (``verify --fast``; :mod:`owmanifest.verify.hashcache`)."""
    from .hashcache import HashCache, tree_fingerprint

    recorded = HashCache.load_tree(manifest.id, root)
    if recorded is None:
        return False
    fingerprint, directory = recorded
    return tree_fingerprint(manifest.id, directory, manifest.files, keys) == fingerprint


def verify_tree(
    verified: VerifiedManifest,
    directory: str | os.PathLike[str],
    *,
    files: Sequence[FileEntry | str] | None = None,
    strict: bool = False,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
    fast: bool = False,
) -> TreeReport:
    """Check that ``directory`` holds the files of a verified manifest, byte for byte.

    Every listed file must be a regular file of the declared size whose BEP 52 root matches.
    Symbolic links are not followed, neither as the file nor on the way to it (a file below a
    symbolic link to a directory fails, as ``create`` would not have listed it). Files not in
    the manifest are reported as ``extra``; with ``strict`` they are failures.

    Args:
        files: check only these entries, or the files at these manifest paths (default: all).
        fast: trust the hash cache (:mod:`owmanifest.verify.hashcache`) for files whose size,
            mtime, ctime, inode and device are those they had when they last verified here;
            hash the others. Without it every byte is hashed (the cache is not even read).

    Returns:
        The report, when everything verified.

    Raises:
        UsageError: ``directory`` is not a directory; a file the manifest does not list;
            fewer than one worker.
        FileVerificationError: one or more files failed; ``error.report`` lists every problem.
    """
    if not isinstance(verified, VerifiedManifest):
        raise TypeError("verify_tree needs a VerifiedManifest (see verify_manifest)")
    if workers is not None and workers < 1:
        raise UsageError("workers must be at least 1", expected=">= 1", observed=workers)
    if files is not None:
        files = _entries(verified.manifest, files)
    return check_tree(
        verified.manifest,
        directory,
        files=files,
        strict=strict,
        workers=workers,
        progress=progress,
        fast=fast,
    )


def _entries(manifest: Manifest, files: Sequence[FileEntry | str]) -> list[FileEntry]:
    """``files`` as the manifest's entries: a path (``str``) names its entry.

    Raises:
        UsageError: a path the manifest does not list, or an entry it does not hold.
    """
    by_path = {e.path: e for e in manifest.files}
    out: list[FileEntry] = []
    for f in files:
        entry = by_path.get(f if isinstance(f, str) else getattr(f, "path", ""))
        if entry is None or (not isinstance(f, str) and f != entry):
            raise UsageError(
                "not a file of this manifest", expected="one of its paths or entries", observed=f
            )
        out.append(entry)
    return out


def _stat_at_once(
    entries: Sequence[FileEntry], prefix: str, keys: bool
) -> tuple[list[str], FileStats, bytes] | None:
    """The paths and stats of every entry and, with ``keys``, their stat keys (else ``b""``),
    taken in one pass (compiled where it is built), when each is a regular file (not a symbolic
    link) of its declared size; else ``None``, and :func:`check_tree` examines each to say which
    is not and why."""
    from ..manifest.hashing import stat_files, stat_files_and_keys

    paths = [prefix + entry.path for entry in entries]
    try:
        if keys:
            found, packed = stat_files_and_keys(paths, follow_symlinks=False)
        else:
            found, packed = stat_files(paths, follow_symlinks=False), b""
    except FileVerificationError:
        return None
    if found.sizes != [entry.size for entry in entries]:
        return None
    return paths, found, packed


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
    from ..manifest.hashing import STAT_KEY_SIZE as SIZE
    from ..manifest.hashing import FileHashes, FileStats, hash_files, stat_key_of

    root = Path(directory)
    if not root.is_dir():
        raise UsageError("not a directory", path=str(root))
    entries = tuple(manifest.files if files is None else files)
    problems: list[FileProblem] = []
    cache = None
    base = os.fspath(root)
    prefix = base if base.endswith(os.sep) else base + os.sep  # os.path.join, once
    started_ns = time.time_ns()
    at_once = _stat_at_once(entries, prefix, keys=fast)
    if fast:
        if files is None and at_once is not None and _tree_unchanged(manifest, root, at_once[2]):
            if progress is not None:
                progress(sum(entry.size for entry in entries))
            return _report(root, manifest, entries, [], strict, files, from_cache=len(entries))
        from .hashcache import HashCache  # only now: the start-up time of every other verify

        cache = HashCache.load(manifest.id, root)
    cached: list[FileEntry] = []
    cached_bytes = 0
    before: dict[str, bytes] = {}  # with the cache: the stat key of each file to hash
    if at_once is not None and cache is None:
        to_hash, (hash_paths, hash_stats, _) = list(entries), at_once
    else:
        to_hash, hash_paths, hash_stats = [], [], FileStats([], [])
    if at_once is not None and cache is not None:
        paths, found, keys = at_once
        fresh = cache.fresh(entries, keys)
        for i, entry in enumerate(entries):
            if fresh[i]:
                cached.append(entry)  # verified before, and not touched since: not read again
                cached_bytes += entry.size
            else:
                to_hash.append(entry)
                hash_paths.append(paths[i])
                hash_stats.sizes.append(found.sizes[i])
                hash_stats.mtimes_ns.append(found.mtimes_ns[i])
                before[entry.path] = keys[SIZE * i : SIZE * (i + 1)]
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
        key = b"" if cache is None else stat_key_of(st)
        if stat.S_ISLNK(st.st_mode):
            problems.append(FileProblem(entry.path, "symlink", "regular file", "symbolic link"))
        elif not stat.S_ISREG(st.st_mode):
            problems.append(FileProblem(entry.path, "not-a-file", "regular file", "other"))
        elif st.st_size != entry.size:
            problems.append(FileProblem(entry.path, "size", str(entry.size), str(st.st_size)))
        elif cache is not None and cache.fresh([entry], key)[0]:
            cached.append(entry)
            cached_bytes += entry.size
        else:
            to_hash.append(entry)
            hash_paths.append(path)
            hash_stats.sizes.append(st.st_size)
            hash_stats.mtimes_ns.append(st.st_mtime_ns)
            if cache is not None:
                before[entry.path] = key
    if progress is not None and cached_bytes:
        progress(cached_bytes)
    results: list[FileHashes] | None = []  # None: read one at a time after a change
    if to_hash:
        try:
            results = hash_files(
                hash_paths,
                manifest.piece_length,
                v1=False,
                workers=workers,
                progress=progress,
                stats=hash_stats,
                # with the cache, each file read must be the very file whose stat key is
                # recorded with its root: not another one put at its path (or under a renamed
                # directory) between the stat pass and the read
                keys=None if cache is None else b"".join(before[e.path] for e in to_hash),
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
        if results is None:  # read one at a time, by path: nothing of this run is recorded
            _update_cache(cache, prefix, [], before, started_ns, problems, None)
        else:
            whole = (entries, at_once[2]) if files is None and at_once is not None else None
            _update_cache(cache, prefix, good, before, started_ns, problems, whole)
        passed = {e.path for e in (*good, *cached)}
        good = [e for e in entries if e.path in passed]
    return _report(root, manifest, good, problems, strict, files, from_cache=len(cached))


def _report(
    root: Path,
    manifest: Manifest,
    good: Sequence[FileEntry],
    problems: list[FileProblem],
    strict: bool,
    files: Sequence[FileEntry] | None,
    *,
    from_cache: int,
) -> TreeReport:
    """The report of :func:`check_tree`, with the extra files when the whole tree was checked
    and how many files came from the hash cache; raises if anything failed."""
    entries = manifest.files if files is None else files
    links: list[str] | None = None
    extra: tuple[str, ...] = ()
    if files is None:
        found, links = _extra_files(root, {e.path for e in manifest.files})
        extra = tuple(found)
    through = _through_links(root, good, links) if links or files is not None else {}
    if through:
        good = [e for e in good if e.path not in through]
        problems.extend(
            FileProblem(
                path, "symlink", "a path without symbolic links", f"below the symbolic link {link}"
            )
            for path, link in through.items()
        )
    if strict:
        problems.extend(FileProblem(p, "extra", "not present", "present") for p in extra)
    problems.sort(key=lambda p: p.path)
    report = TreeReport(
        directory=str(root),
        verified=tuple(good),
        problems=tuple(problems),
        extra=extra,
        from_cache=from_cache,
    )
    if problems:
        first = problems[0]
        err = FileVerificationError(
            # the first problem's expected and observed values are the error's own
            f"{len(problems)} of {len(entries)} file(s) failed verification, first: "
            f"{first.path}: {first.kind}",
            path=str(root / first.path),
            expected=first.expected,
            observed=first.observed,
        )
        err.report = report
        raise err
    return report
