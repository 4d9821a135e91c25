"""Fetching the files of a verified manifest from untrusted sources.

This is the one place where transports and verification meet. The rules:

* Only a :class:`~owmanifest.verify.result.VerifiedManifest` is accepted: the signatures were
  checked before any byte moves.
* Nothing unverified is ever at a final path. Bytes wait in the partial area
  (``dest/.owmanifest/partial``, see :mod:`._partial`); a file is moved into place with
  ``os.replace`` only after the whole file, read back from disk, has the manifest's BEP 52 root.
* With a piece layer (or for files of at most one piece) every piece is verified **before** it
  is written. Without one (a file larger than a piece whose layer is unknown) the file is
  fetched whole and verified at the end; that mode cannot resume.
* Sources are tried in order. A source that sends a bad piece, too many or too few bytes, or an
  error, is dropped for that file; one that stalls or is unreachable is dropped for the rest of
  the fetch. No source is ever asked for a piece that already verified, so a re-run resumes.
* Sizes come from the manifest: no source can make us accept more bytes than declared.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import stat
import struct
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import (
    Error,
    FetchError,
    FileVerificationError,
    PathError,
    SizeExceededError,
    StallError,
    TransportError,
    UsageError,
)
from ..manifest.hashing import STAT_KEY_FORMAT, hash_files, stat_key_of
from ..manifest.model import FileEntry, Manifest
from ..manifest.paths import case_key, check_path
from ..verify.blocks import PieceVerifier
from ..verify.result import VerifiedManifest
from ._partial import STATE_DIR, PartialArea, PartialFile, _ensure_dir, _remove
from .base import (
    DirectoryTransport,
    FetchPlan,
    NullProgress,
    PlannedFile,
    Progress,
    RangeTransport,
    SourceUnavailableError,
    Transport,
)

__all__ = ["FetchReport", "IncompleteFetchError", "SourceProblem", "fetch"]

_STAT_KEY = struct.Struct(STAT_KEY_FORMAT)
#: Contiguous missing pieces are asked for in one request of at most this many bytes.
MAX_REQUEST = 64 * 1024 * 1024
#: How long a reader thread may take to stop after it was told to (and after ``abort()``).
_STOP_GRACE = 0.1
_ABORT_GRACE = 10.0
#: Threads that verify pieces while the next ones arrive (1: inline, no threads). One more
#: than the cores: the fetching and reading threads mostly wait on the kernel, and on two cores
#: three hashing threads beat two in four of four paired benchmark runs.
_CPUS = os.cpu_count() or 1
_WORKERS = 1 if _CPUS == 1 else min(4, _CPUS + 1)
#: Bytes of pieces that may be in the workers at once (bounds the memory held).
_WINDOW_BYTES = 2 * 1024 * 1024
#: While the fetcher is busy, received chunks are joined up to this size before hand-over.
_BATCH_BYTES = 1024 * 1024


@dataclass
class _Piece:
    """A piece handed to a worker: verified once ``future`` is done (its error otherwise)."""

    index: int
    offset: int
    data: memoryview
    future: Future[None]


@dataclass(frozen=True)
class SourceProblem:
    """Something that went wrong with one source (for one file, or for all of them).

    Attributes:
        source: the source's name (URL, path).
        path: the manifest path concerned, or ``None`` when the whole source failed.
        kind: ``"digest"`` (bad bytes), ``"size"`` (too many or too few), ``"stall"``,
            ``"unavailable"``, ``"fetch"`` (any other transport error), ``"local"`` (a problem
            in the destination), ``"layer"`` (a piece layer that does not match its root).
        message: the error, for people.
    """

    source: str
    path: str | None
    kind: str
    message: str

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path is not None else ""
        return f"{where}{self.source}: {self.message}"


@dataclass(frozen=True)
class FetchReport:
    """What :func:`fetch` did.

    Attributes:
        destination: the destination directory.
        fetched: paths obtained from a source (or created empty) and moved into place.
        present: paths that were already at their final place with the right content.
        replaced: paths where a different file (or a symbolic link) was replaced.
        failed: paths that no source could provide.
        bytes_by_source: verified bytes obtained from each source, by source name.
        problems: everything that went wrong along the way, in order.
    """

    destination: str
    fetched: tuple[str, ...] = ()
    present: tuple[str, ...] = ()
    replaced: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()
    bytes_by_source: Mapping[str, int] = field(default_factory=dict)
    problems: tuple[SourceProblem, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.failed

    def to_json(self) -> dict[str, Any]:
        """A JSON-serializable form, for ``--json`` output."""
        return {
            "destination": self.destination,
            "fetched": list(self.fetched),
            "present": list(self.present),
            "replaced": list(self.replaced),
            "failed": list(self.failed),
            "bytes_by_source": dict(self.bytes_by_source),
            "problems": [
                {"source": p.source, "path": p.path, "kind": p.kind, "message": p.message}
                for p in self.problems
            ],
        }


class IncompleteFetchError(FetchError):
    """Some files could not be fetched from any source.

    The message lists, for each such file, every source tried and why it failed.

    Attributes:
        report: the :class:`FetchReport` (what did succeed is in place and verified).
    """

    report: FetchReport


# --- helpers -------------------------------------------------------------------------------------


def _kind(exc: BaseException) -> str:
    if isinstance(exc, StallError):
        return "stall"
    if isinstance(exc, SourceUnavailableError):
        return "unavailable"
    if isinstance(exc, SizeExceededError):
        return "size"
    if isinstance(exc, FileVerificationError):
        return "digest"
    return "fetch"


def _message(exc: BaseException, source: str | None = None) -> str:
    """The error for a listing under its source and path: without either as a prefix."""
    if not isinstance(exc, Error):
        return str(exc) or type(exc).__name__
    text = exc.message
    for prefix in (source, exc.uri, exc.path):
        for sep in (": ", " "):  # "MIRROR: ..." and "MIRROR does not have ..."
            if prefix and text.startswith(prefix + sep):
                text = text[len(prefix) + len(sep) :]
                break
    return text + exc.contrast()


def _root_ok(path: Path, entry: FileEntry, piece_length: int, key: bytes | None = None) -> bool:
    """Whether the regular file at ``path`` has ``entry``'s size and BEP 52 root.

    Anything else at ``path`` (a symbolic link, even to the right bytes) is not: what is moved
    into place must be the very file that was hashed.

    Raises:
        FileVerificationError: ``path`` cannot be read, changed while it was read, or (with
            ``key``, its :func:`~owmanifest.manifest.hashing.stat_key_of`) is not that file.
    """
    if not _is_regular(path):
        return False
    # A large file is hashed in piece-aligned regions on every core (the same result).
    h = hash_files([path], piece_length, v1=False, keys=key)[0]
    expected = None if entry.root is None else entry.root.value
    return h.size == entry.size and h.root == expected


def _select(manifest: Manifest, files: Sequence[FileEntry] | None) -> list[FileEntry]:
    if files is None:
        return list(manifest.files)
    out: list[FileEntry] = []
    seen: set[str] = set()
    for entry in files:
        try:
            mine = manifest.file(entry.path)
        except KeyError:
            raise UsageError(
                f"{entry.path!r} is not a file of the manifest", path=entry.path
            ) from None
        if mine != entry:
            raise UsageError(
                f"{entry.path!r} differs from the entry in the verified manifest",
                path=entry.path,
                expected=f"{mine.size} bytes, {mine.root}",
                observed=f"{entry.size} bytes, {entry.root}",
            )
        if entry.path not in seen:
            seen.add(entry.path)
            out.append(mine)
    return out


class _InTheWay(PathError):
    """Something that is not a directory where a file's path needs one: that file fails."""


def _final_path(dest: Path, rel: str) -> Path:
    """The final path of manifest path ``rel`` under the resolved ``dest``.

    Existing directories on the way must be real directories (not symbolic links).

    Raises:
        PathError: ``rel`` is not an acceptable manifest path, is in the working directory,
            or would be written through a symbolic link or outside ``dest``.
    """
    check_path(rel)
    parts = rel.split("/")
    if case_key(parts[0]) == case_key(STATE_DIR):
        raise PathError(f"refusing to write {rel!r}: {STATE_DIR}/ is owmanifest's working area")
    current = dest
    for part in parts[:-1]:
        current = current / part
        try:
            st = os.lstat(current)
        except FileNotFoundError:
            break
        if stat.S_ISLNK(st.st_mode):
            raise PathError(
                f"refusing to write {rel!r} through {current}",
                path=str(current),
                expected="a directory",
                observed="a symbolic link",
            )
        if not stat.S_ISDIR(st.st_mode):
            raise _InTheWay(
                f"{current} is in the way: the dataset has a directory there",
                path=str(current),
                expected="a directory",
                observed="not a directory",
            )
    final = dest.joinpath(*parts)
    if not final.parent.resolve().is_relative_to(dest):  # pragma: no cover - belt and braces
        raise PathError(f"refusing to write {rel!r} outside {dest}", path=str(final))
    return final


def _key(st: os.stat_result | None) -> bytes | None:
    return None if st is None else stat_key_of(st)


def _identity(st: os.stat_result | None) -> tuple[int, ...] | None:
    """What must not change at a final path between the plan and the move into place: the
    kind of file, size, mtime, inode and device. Not the ctime, which the fetch itself changes
    when it replaces or links one name of a file that has others (``--link``, a mirror that
    keeps identical files as one)."""
    if st is None:
        return None
    return (stat.S_IFMT(st.st_mode), st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev)


def _as_left(st: os.stat_result | None, recorded: bytes | None) -> bool:
    """Whether ``st`` is the regular file a fetch recorded, unchanged (:func:`_identity`).

    The ctime is left out here too: it changes with a file's metadata only (``chmod``, a
    rename) and, for a file hard-linked into place, whenever another name of it comes or goes;
    none of that makes it the user's work. A content change with the mtime put back goes unseen.
    """
    if recorded is None:
        return False
    size, mtime, _, inode, device = _STAT_KEY.unpack(recorded)
    return _identity(st) == (stat.S_IFREG, size, mtime, inode, device)


class _ChangedMeanwhile(PathError):
    """A final path changed between the plan and the move into place."""


def _is_regular(path: Path) -> bool:
    """Whether ``path`` itself (not a link's target) is a regular file."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def _make_parents(dest: Path, final: Path) -> None:
    """Create the directories between ``dest`` and ``final``, refusing symbolic links.

    Raises:
        PathError: a component is a symbolic link or not a directory, or escapes ``dest``.
    """
    current = dest
    for part in final.relative_to(dest).parts[:-1]:
        current = current / part
        _ensure_dir(current)
    if not final.parent.resolve().is_relative_to(dest):  # pragma: no cover - belt and braces
        raise PathError(f"refusing to write outside {dest}", path=str(final))


def _coalesce(missing: Sequence[int], checker: PieceVerifier) -> list[tuple[int, int, list[int]]]:
    """Group missing pieces into requests ``(offset, length, pieces)`` of contiguous pieces."""
    out: list[tuple[int, int, list[int]]] = []
    for index in missing:
        offset, length = checker.piece_span(index)
        if out:
            start, total, pieces = out[-1]
            if pieces[-1] == index - 1 and start + total == offset and total < MAX_REQUEST:
                pieces.append(index)
                out[-1] = (start, total + length, pieces)
                continue
        out.append((offset, length, [index]))
    return out


class _Assembler:
    """Cuts the bytes of the pieces in ``order``, arriving in chunks of any size, into pieces.

    A piece that lies whole in one chunk is a view of it (no copy); one that spans chunks is
    copied into a buffer of its own (never reused: the last one may still be being hashed).
    """

    def __init__(self, checker: PieceVerifier, order: deque[int], source: str) -> None:
        self.checker = checker
        self.order = order
        self.source = source
        self.buf = memoryview(bytearray(0))
        self.filled = 0  # bytes of the piece being assembled in ``buf``

    def feed(self, chunk: bytes) -> Iterator[tuple[int, int, memoryview]]:
        """Yield ``(index, offset, data)`` of each piece that ``chunk`` completes.

        Raises:
            SizeExceededError: bytes beyond the last piece in ``order``.
        """
        view = memoryview(chunk)
        pos = 0
        while pos < len(view):
            if not self.order:
                raise SizeExceededError(
                    f"{self.source} sent more bytes than requested",
                    uri=self.source,
                    path=self.checker.path,
                )
            index = self.order[0]
            offset, length = self.checker.piece_span(index)
            take = min(length - self.filled, len(view) - pos)
            if not self.filled and take == length:
                piece = view[pos : pos + take]
            else:
                if not self.filled:
                    self.buf = memoryview(bytearray(length))
                self.buf[self.filled : self.filled + take] = view[pos : pos + take]
                self.filled += take
                if self.filled < length:
                    pos += take
                    continue
                piece = self.buf
            pos += take
            self.filled = 0
            self.order.popleft()
            yield index, offset, piece


class _Pump:
    """Reads ranges from a source in a daemon thread and hands the chunks over a queue.

    The fetcher waits on the queue with a timeout, so a source that hangs (even one whose
    plugin has no timeouts of its own) cannot hang the fetch.
    """

    def __init__(
        self, source: RangeTransport, entry: FileEntry, spans: Sequence[tuple[int, int]]
    ) -> None:
        self.source = source
        self.entry = entry
        self.spans = list(spans)
        self.queue: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=4)
        self.stopping = threading.Event()
        self.thread = threading.Thread(
            target=self._run, name=f"owmanifest-fetch {source.name}", daemon=True
        )
        self.thread.start()

    def _put(self, item: tuple[str, Any]) -> bool:
        while not self.stopping.is_set():
            try:
                self.queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _alive(self) -> None:
        self._put(("alive", None))

    def _run(self) -> None:
        self.source._on_alive = self._alive
        try:
            for offset, length in self.spans:
                chunks = self.source.read_range(self.entry, offset, length)
                # While the fetcher is busy, chunks are handed over in batches of up to 1 MiB
                # (a list, not joined: no copy), so there are fewer hand-overs between threads.
                batch: list[bytes] = []
                size = 0
                try:
                    for chunk in chunks:
                        batch.append(chunk)
                        size += len(chunk)
                        if size >= _BATCH_BYTES or self.queue.empty():
                            if not self._put(("chunks", batch)):
                                return
                            batch, size = [], 0
                except BaseException:
                    if batch:  # what arrived before the failure may still complete pieces
                        self._put(("chunks", batch))
                    raise
                finally:
                    chunks.close()  # type: ignore[attr-defined]
                if batch and not self._put(("chunks", batch)):
                    return
            self._put(("done", None))
        except BaseException as exc:  # handed to the fetcher, which re-raises it
            self._put(("error", exc))
        finally:
            self.source._on_alive = None

    def get(self, timeout: float) -> tuple[str, Any]:
        """The next item; raises ``queue.Empty`` after ``timeout`` seconds."""
        return self.queue.get(timeout=max(timeout, 0.0))

    def stop(self) -> bool:
        """Stop the thread; ``False`` if it would not stop (the source is then unusable)."""
        self.stopping.set()
        self.thread.join(_STOP_GRACE)
        if self.thread.is_alive():
            with contextlib.suppress(Exception):  # a broken plugin's abort
                self.source.abort()
            self.thread.join(_ABORT_GRACE)
        return not self.thread.is_alive()


class _Fetched:
    """The stat key (``hashing.stat_key_of``) of each file that a fetch put in place, or found
    in place verified, in one destination for one dataset: a file that still has it is as
    owmanifest left it, and a later version may replace it without ``replace`` (``--force``).

    Kept in the state directory next to the dataset's hash cache for that directory
    (``hashcache/<sha256>.fetched.json``, ``fetched.schema.json``), not in the destination,
    which a complete fetch leaves with the dataset's files only. A hint: when it is missing or
    unusable, differing files are only treated as the user's own.
    """

    def __init__(self, dataset_id: str, dest: Path) -> None:
        from ..verify.hashcache import HashCache

        cache, self.directory = HashCache.location(dataset_id, dest)
        self.path = cache.with_name(cache.stem + ".fetched.json")
        self.dataset_id = dataset_id

    def load(self) -> dict[str, bytes]:
        from ..schemas import surely_valid, validate

        try:
            doc = json.loads(self.path.read_bytes())
            if not surely_valid(doc, "fetched"):
                validate(doc, "fetched", source=str(self.path))
            if (doc["dataset"], doc["directory"]) != (self.dataset_id, self.directory):
                return {}
            return {path: bytes.fromhex(key) for path, key in doc["files"].items()}
        except (OSError, ValueError, UnicodeDecodeError, RecursionError, Error):
            return {}

    def update(self, keys: Mapping[str, bytes | None]) -> None:
        """Merge ``keys`` in (``None`` forgets a path); written atomically, mode 0600.

        Raises:
            OSError: it cannot be written.
        """
        from .._atomic import write_atomic

        files = {path: key.hex() for path, key in self.load().items()}
        for path, key in keys.items():
            if key is None:
                files.pop(path, None)
            else:
                files[path] = key.hex()
        doc = {
            "type": "owmanifest-fetched",
            "version": 1,
            "dataset": self.dataset_id,
            "directory": self.directory,
            "files": dict(sorted(files.items())),
        }
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        data = json.dumps(doc, indent=1, ensure_ascii=True).encode() + b"\n"
        write_atomic(self.path, data, mode=0o600, fsync=False)


@dataclass
class _Job:
    entry: FileEntry
    final: Path
    partial: PartialFile
    checker: PieceVerifier | None = None
    replacing: bool = False
    #: The final path's ``lstat`` when the fetch was planned (``None``: nothing was there).
    #: The file is moved into place only while it is still so (:func:`_identity`).
    seen: os.stat_result | None = None
    done: bool = False
    #: The final path changed during the fetch: it is left as it is.
    left: bool = False
    problems: list[SourceProblem] = field(default_factory=list)

    @property
    def path(self) -> str:
        return self.entry.path


class _Fetcher:
    def __init__(
        self,
        manifest: Manifest,
        dest: Path,
        entries: Sequence[FileEntry],
        sources: Sequence[Transport],
        piece_layers: Mapping[bytes, bytes],
        stall_timeout: float,
        progress: Progress,
        replace: bool = False,
    ) -> None:
        self.manifest = manifest
        self.replace = replace
        self._fetched = _Fetched(manifest.id, dest)
        self.piece_length = manifest.piece_length
        self.dest = dest
        self.entries = entries
        self.sources = sources
        self.piece_layers = piece_layers
        self.stall_timeout = stall_timeout
        self.progress = progress
        self.fetched: list[str] = []
        self.present: list[str] = []
        #: Each file's stat key as this fetch left it in place or found it verified; ``None``:
        #: it cannot be told (:class:`_Fetched`).
        self.keys: dict[str, bytes | None] = {}
        self.replaced: list[str] = []
        self.bytes_by_source: dict[str, int] = {}
        self.problems: list[SourceProblem] = []
        self.dead: dict[int, str] = {}  # id(source) -> why it is no longer used
        self._pool: ThreadPoolExecutor | None = None

    # --- bookkeeping ---------------------------------------------------------------------------

    def _problem(
        self, job: _Job | None, source: str, exc: BaseException | str, kind: str | None = None
    ) -> SourceProblem:
        path = job.path if job else None
        if isinstance(exc, BaseException):
            p = SourceProblem(source, path, kind or _kind(exc), _message(exc, source))
        else:
            p = SourceProblem(source, path, kind or "local", exc)
        self.problems.append(p)
        if job is not None:
            job.problems.append(p)
        return p

    def _credit(self, source: Transport, nbytes: int) -> None:
        self.bytes_by_source[source.name] = self.bytes_by_source.get(source.name, 0) + nbytes

    def _kill(self, source: Transport, exc: BaseException | str) -> None:
        if id(source) not in self.dead:
            self.dead[id(source)] = (
                _message(exc, source.name) if isinstance(exc, BaseException) else exc
            )

    # --- the run -------------------------------------------------------------------------------

    def run(self) -> FetchReport:
        with PartialArea(self.dest) as area:
            jobs: list[_Job] = []
            failed_early: list[_Job] = []
            for job in self._plan(area):
                (failed_early if job.problems else jobs).append(job)
            try:
                remaining = self._resume(jobs)
                for source in self.sources:
                    remaining = [j for j in remaining if not (j.done or j.left)]
                    if not remaining:
                        break
                    if id(source) in self.dead:
                        continue
                    if isinstance(source, DirectoryTransport):
                        self._run_directory(source, remaining, area)
                    else:
                        assert isinstance(source, RangeTransport)
                        for job in remaining:
                            if id(source) in self.dead:
                                job.problems.append(
                                    SourceProblem(
                                        source.name,
                                        job.path,
                                        "unavailable",
                                        f"not tried: {self.dead[id(source)]}",
                                    )
                                )
                                continue
                            self._run_range(source, job)
            finally:
                if self._pool is not None:
                    self._pool.shutdown(wait=True)
                for job in jobs:
                    job.partial.close()
                self._record_exposed()
            failed = [j for j in failed_early + jobs if not j.done]
        report = FetchReport(
            destination=str(self.dest),
            fetched=tuple(self.fetched),
            present=tuple(self.present),
            replaced=tuple(self.replaced),
            failed=tuple(sorted(j.path for j in failed)),
            bytes_by_source=dict(self.bytes_by_source),
            problems=tuple(self.problems),
        )
        if failed:
            raise self._failure(failed, report)
        return report

    def _failure(self, failed: Sequence[_Job], report: FetchReport) -> IncompleteFetchError:
        total = len(self.entries)
        lines = [f"{len(failed)} of {total} file(s) could not be fetched into {self.dest}:"]
        shown = sorted(failed, key=lambda j: j.path)
        for job in shown[:20]:
            lines.append(f"  {job.path}:")
            if not job.problems:
                lines.append("    no source was tried")
            for p in job.problems:
                lines.append(f"    {p.source}: {p.message}")
        if len(shown) > 20:
            lines.append(f"  ... and {len(shown) - 20} more")
        err = IncompleteFetchError("\n".join(lines), path=str(self.dest))
        err.report = report
        return err

    def _plan(self, area: PartialArea) -> list[_Job]:
        """Check every final path; a job for each file not already in place.

        Regular files of the right size are hashed (on every core) and kept if they match.

        Raises:
            PathError: a path is unacceptable or would be written through a symbolic link.
        """
        jobs: list[_Job] = []
        candidates: list[_Job] = []
        for entry in self.entries:
            try:
                final = _final_path(self.dest, entry.path)
            except _InTheWay as exc:  # the user's file: kept, and only this one fails
                job = _Job(entry, self.dest / entry.path, area.file(entry, self.piece_length))
                self._problem(job, "destination", exc.message)
                jobs.append(job)
                continue
            job = _Job(entry, final, area.file(entry, self.piece_length))
            try:
                st = os.lstat(final)
            except FileNotFoundError:
                jobs.append(job)
                continue
            job.seen = st
            if stat.S_ISREG(st.st_mode) and st.st_size == entry.size:
                candidates.append(job)
                continue
            if stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode):
                job.replacing = True
            else:
                self._problem(job, "destination", f"{final} exists and is not a regular file")
            jobs.append(job)
        for job, ok in zip(candidates, self._hash_present(candidates), strict=True):
            if ok:
                self.present.append(job.path)
                self.keys[job.path] = _key(job.seen)  # the very file read (hash_files' keys)
                job.partial.discard()  # left over by a run that died right after the move
            else:
                job.replacing = True
                jobs.append(job)
        if not self.replace:
            self._refuse_foreign([j for j in jobs if j.replacing], self._fetched.load())
        return sorted(jobs, key=lambda j: j.path)

    def _refuse_foreign(self, replacing: Sequence[_Job], exposed: Mapping[str, bytes]) -> None:
        """Refuse to replace files that differ from the manifest unless a fetch of this dataset
        into this directory left them there (or found them there verified) and they have not
        changed since: anything else may be the user's own work.

        Raises:
            UsageError: such files, before anything is transferred.
        """
        foreign = [j.path for j in replacing if not _as_left(j.seen, exposed.get(j.path))]
        if foreign:
            shown = ", ".join(sorted(foreign)[:5]) + (" ..." if len(foreign) > 5 else "")
            raise UsageError(
                f"{len(foreign)} file(s) in the destination differ from the manifest and are not "
                "as a fetch of this dataset left them: replacing them would lose their content "
                "(move them away, or use --force to replace them)",
                path=str(self.dest),
                expected="each file absent, with the manifest's bytes, or as a fetch left it",
                observed=shown,
            )

    def _record_exposed(self) -> None:
        """Record the stat key of each file this fetch put in place or found verified
        (:class:`_Fetched`), as it was then, so that a later version may replace it while it
        is unchanged; a failure to record only means that a later fetch asks for --force."""
        with contextlib.suppress(OSError):
            self._fetched.update(self.keys)

    def _hash_present(self, jobs: Sequence[_Job]) -> list[bool]:
        """Whether each job's final path already holds the right bytes."""
        if not jobs:
            return []
        expected = [None if j.entry.root is None else j.entry.root.value for j in jobs]
        # The keys make each file read the very one planned (and recorded if it matches).
        keys = [_key(j.seen) or b"" for j in jobs]
        try:
            paths = [j.final for j in jobs]
            hashes = hash_files(paths, self.piece_length, v1=False, keys=b"".join(keys))
            return [h.root == root for h, root in zip(hashes, expected, strict=True)]
        except FileVerificationError:  # one changed since it was planned: one at a time
            out = []
            for job, key in zip(jobs, keys, strict=True):
                try:
                    out.append(_root_ok(job.final, job.entry, self.piece_length, key))
                except FileVerificationError:
                    out.append(False)
            return out

    def _resume(self, jobs: Sequence[_Job]) -> list[_Job]:
        """Set up piece verifiers, reload verified pieces, create empty files; start progress."""
        needed = 0
        remaining: list[_Job] = []
        for job in jobs:
            entry = job.entry
            if entry.size == 0:
                continue
            layer = self.piece_layers.get(entry.root.value) if entry.root is not None else None
            if entry.size > self.piece_length and layer is None:
                job.checker = None  # whole-file mode
            else:
                try:
                    job.checker = PieceVerifier(
                        entry.path,
                        entry.size,
                        None if entry.root is None else entry.root.value,
                        self.piece_length,
                        layer if entry.size > self.piece_length else None,
                    )
                except (FileVerificationError, ValueError) as exc:
                    self._problem(job, "piece layers", exc, "layer")
                    job.checker = None
            seed = job.final if job.replacing else None
            have = job.partial.load(job.checker, seed)
            needed += entry.size - have
        self.progress.start(needed)
        for job in jobs:
            if job.entry.size == 0:
                self._expose(job)
            elif job.checker is not None and len(job.partial.verified) == job.checker.num_pieces:
                self._finish(job)
            if not job.done:
                remaining.append(job)
        return remaining

    # --- exposure ------------------------------------------------------------------------------

    def _expose(self, job: _Job, source_path: Path | None = None) -> None:
        """Move the verified partial file (or ``source_path``) to its final path, unless that
        path changed since the fetch was planned (then it is left as it is)."""

        def check() -> None:
            try:
                now: os.stat_result | None = os.lstat(job.final)
            except FileNotFoundError:
                now = None
            if _identity(now) != _identity(job.seen):
                raise _ChangedMeanwhile(
                    f"{job.final} changed during the fetch: it is left as it is (move it away, "
                    "or run the fetch again with --force to replace it)",
                    path=str(job.final),
                    expected="absent" if job.seen is None else "as it was when the fetch began",
                    observed="absent" if now is None else "another file",
                )

        try:
            _make_parents(self.dest, job.final)
            if source_path is None:
                job.partial.prepare()
            st = job.partial.finalize(job.final, source_path, check=check)
        except _ChangedMeanwhile as exc:
            job.left = True
            self._problem(job, "destination", str(exc))
            return
        except (OSError, PathError) as exc:
            self._problem(job, "destination", f"cannot move into place: {_message(exc)}")
            return
        job.done = True
        self.keys[job.path] = None if st is None else stat_key_of(st)
        self.fetched.append(job.path)
        if job.replacing:
            self.replaced.append(job.path)
        self.progress.file_done(job.path)

    def _finish(self, job: _Job) -> None:
        """Hash the complete partial file and expose it if it matches the manifest."""
        job.partial.close()
        try:
            ok = _root_ok(job.partial.data_path, job.entry, self.piece_length)
        except FileVerificationError as exc:
            ok = False
            self._problem(job, "partial area", exc)
        if ok:
            self._expose(job)
            return
        # Every piece verified but the file as a whole does not: the disk or the partial area
        # changed under us. Start again from what still verifies.
        self._problem(job, "partial area", "the file read back does not match its root")
        if job.checker is not None:
            job.partial.rescan(job.checker)
        else:
            job.partial.reset()

    # --- range transports ----------------------------------------------------------------------

    def _run_range(self, source: RangeTransport, job: _Job) -> None:
        try:
            if not job.partial.verified and self._try_link(source, job):
                return
            if job.checker is None:
                self._whole_file(source, job)
            else:
                self._pieces(source, job, job.checker)
        except (TransportError, FileVerificationError) as exc:
            self._problem(job, source.name, exc)
            if isinstance(exc, (StallError, SourceUnavailableError)):
                self._kill(source, exc)
        finally:
            job.partial.save(force=True)

    def _try_link(self, source: RangeTransport, job: _Job) -> bool:
        target = job.partial.data_path.with_name(job.partial.data_path.stem + ".link")
        _remove(target)
        try:
            linked = source.link_file(job.entry, target)
        except Exception:
            linked = False
        if not linked:
            _remove(target)
            return False
        try:
            # _root_ok takes a regular file only: a plugin's symbolic link would be moved into
            # place as a link, whose target can change after it verified.
            ok = _root_ok(target, job.entry, self.piece_length)
        except FileVerificationError:
            ok = False
        if not ok:
            _remove(target)
            return False
        self._credit(source, job.entry.size)
        self.progress.advance(job.entry.size, source.name)
        self._expose(job, target)
        return job.done or job.left

    def _pieces(self, source: RangeTransport, job: _Job, checker: PieceVerifier) -> None:
        missing = [i for i in range(checker.num_pieces) if i not in job.partial.verified]
        requests = _coalesce(missing, checker)
        order: deque[int] = deque(i for _, _, pieces in requests for i in pieces)
        pump = _Pump(source, job.entry, [(off, n) for off, n, _ in requests])
        pending: deque[_Piece] = deque()
        window = self._window()
        assembler = _Assembler(checker, order, source.name)
        last = time.monotonic()
        try:
            while order:
                kind, value = self._next(pump, source, job, last)
                if kind == "alive":  # working towards the range (Transport.alive)
                    last = time.monotonic()
                    continue
                if kind == "error":
                    raise value
                if kind == "done":
                    raise FetchError(f"{source.name} ended early", uri=source.name)
                for chunk in value:
                    for index, offset, piece in assembler.feed(chunk):
                        pending.append(self._submit(checker, index, offset, piece))
                        if self._settle(pending, source, job, at_most=window - 1):
                            last = time.monotonic()
            if self._settle(pending, source, job, at_most=0):
                last = time.monotonic()
            self._tail(pump, source, job, last)
        finally:
            # Pieces still in the workers when something failed are waited for; those that
            # verified are written and kept (the next source is not asked for them again).
            self._drain(pending, source, job)
            if not pump.stop():
                self._kill(source, "a read did not stop when aborted")
        self._finish(job)

    # --- piece workers -------------------------------------------------------------------------

    def _window(self) -> int:
        """How many pieces may be in the workers at once (bounds the memory held)."""
        return max(2 * _WORKERS, _WINDOW_BYTES // self.piece_length, 1)

    def _submit(self, checker: PieceVerifier, index: int, offset: int, data: memoryview) -> _Piece:
        """Verify piece ``index``: on a worker thread if there are several cores (hashlib
        releases the GIL, so pieces are hashed in parallel while the next ones arrive)."""
        if _WORKERS > 1:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(_WORKERS, thread_name_prefix="owmanifest-verify")
            future = self._pool.submit(checker.verify_piece, index, data)
        else:
            future = Future()
            try:
                checker.verify_piece(index, data)
                future.set_result(None)
            except Exception as exc:
                future.set_exception(exc)
        return _Piece(index, offset, data, future)

    def _settle(
        self, pending: deque[_Piece], source: Transport, job: _Job, *, at_most: int
    ) -> bool:
        """Write and record the verified pieces at the head of ``pending``; ``True`` if any.

        Every piece already verified is taken, in order, and more are waited for until at most
        ``at_most`` remain. Pieces are written here, by one thread (concurrent writers to one
        file only contend for its lock). The first piece that failed to verify raises its
        error (the pieces after it are dealt with by :meth:`_drain`).
        """
        settled = False
        while pending and (pending[0].future.done() or len(pending) > at_most):
            piece = pending.popleft()
            piece.future.result()  # raises the piece's verification error
            self._keep(piece, source, job)
            self.progress.advance(len(piece.data), source.name)
            settled = True
        return settled

    def _keep(self, piece: _Piece, source: Transport, job: _Job) -> None:
        """Write a verified piece and record it."""
        job.partial.write_piece(piece.index, piece.offset, piece.data)
        self._credit(source, len(piece.data))

    def _drain(self, pending: deque[_Piece], source: Transport, job: _Job) -> None:
        """Wait for every piece still in a worker; keep those that verified."""
        good = 0
        while pending:
            piece = pending.popleft()
            try:
                piece.future.result()
            except Exception:  # the first failure is already being raised
                continue
            self._keep(piece, source, job)
            good += len(piece.data)
        if good:
            self.progress.advance(good, source.name)

    def _tail(self, pump: _Pump, source: Transport, job: _Job, since: float) -> None:
        """Wait for the end of the source's answer after every byte arrived.

        A source that misbehaves after the last byte (a body longer than asked for, a stall)
        is reported, but the bytes already received stay: they were verified or will be.
        """
        try:
            kind, value = self._next(pump, source, job, since)
            while kind == "alive":
                kind, value = self._next(pump, source, job, time.monotonic())
            if kind == "error":
                raise value
            if kind == "chunks":  # pragma: no cover - read_range prevents this
                raise SizeExceededError(f"{source.name} sent too many bytes", uri=source.name)
        except TransportError as exc:
            self._problem(job, source.name, exc)
            if isinstance(exc, (StallError, SourceUnavailableError)):
                self._kill(source, exc)

    def _next(self, pump: _Pump, source: Transport, job: _Job, since: float) -> tuple[str, Any]:
        try:
            return pump.get(since + self.stall_timeout - time.monotonic())
        except queue.Empty:
            raise StallError(
                f"{source.name}: no verified progress for {self.stall_timeout:g} s",
                uri=source.name,
                path=job.path,
                expected=f"progress within {self.stall_timeout:g} s",
                observed="none",
            ) from None

    def _whole_file(self, source: RangeTransport, job: _Job) -> None:
        """Fetch a file with no per-piece verification: stream it, then check the root."""
        entry = job.entry
        pump = _Pump(source, entry, [(0, entry.size)])
        received = 0

        def chunks() -> Iterator[bytes]:
            nonlocal received
            last = time.monotonic()
            mark = 0  # bytes received when the stall timer last restarted
            while received < entry.size:
                kind, value = self._next(pump, source, job, last)
                if kind == "alive":
                    last = time.monotonic()
                    continue
                if kind == "error":
                    raise value
                if kind == "done":
                    raise FetchError(f"{source.name} ended early", uri=source.name)
                for chunk in value:
                    received += len(chunk)
                    if received > entry.size:  # pragma: no cover - read_range prevents this
                        raise SizeExceededError(
                            f"{source.name} sent too many bytes", uri=source.name
                        )
                    # Progress is a piece's worth of bytes, as in piece mode: a source that
                    # drips a byte at a time (slow loris) must not hold off the stall timeout.
                    if received - mark >= self.piece_length or received == entry.size:
                        mark = received
                        last = time.monotonic()
                    yield chunk

        try:
            job.partial.write_stream(chunks())
            self._tail(pump, source, job, time.monotonic())
        finally:
            if not pump.stop():
                self._kill(source, "a read did not stop when aborted")
        job.partial.close()
        if not _root_ok(job.partial.data_path, entry, self.piece_length):
            job.partial.reset()
            raise FileVerificationError(
                f"{source.name} sent a file whose BEP 52 root does not match",
                uri=source.name,
                path=entry.path,
                expected=str(entry.root),
                observed="a different root",
            )
        self._credit(source, entry.size)
        self.progress.advance(entry.size, source.name)
        self._expose(job)

    # --- directory transports ------------------------------------------------------------------

    def _run_directory(
        self, source: DirectoryTransport, jobs: Sequence[_Job], area: PartialArea
    ) -> None:
        planned: list[PlannedFile] = []
        before: dict[int, int] = {}
        for job in jobs:
            root = job.entry.root
            layer = None if root is None else self.piece_layers.get(root.value)
            planned.append(PlannedFile(job.entry, job.partial.prepare(), layer))
            before[id(job)] = job.partial.verified_bytes(job.checker)
        plan = FetchPlan(
            manifest=self.manifest,
            files=tuple(planned),
            stall_timeout=self.stall_timeout,
            piece_layers=self.piece_layers,
        )
        failure: TransportError | None = None
        try:
            source.run(plan, area.directory, self.progress)
        except TransportError as exc:
            failure = exc
            self._problem(None, source.name, exc)
            if isinstance(exc, (StallError, SourceUnavailableError)):
                self._kill(source, exc)
        for job in jobs:
            try:
                ok = _root_ok(job.partial.data_path, job.entry, self.piece_length)
            except FileVerificationError:
                ok = False
            if ok:
                self._credit(source, job.entry.size - before[id(job)])
                self._expose(job)
                continue
            if job.checker is not None:
                gained = job.partial.rescan(job.checker) - before[id(job)]
                if gained > 0:
                    self._credit(source, gained)
            # Without a piece layer nothing here can be verified; the bytes stay for the
            # transport's own resume (they are never trusted, and whole-file mode rewrites them).
            if failure is not None:
                job.problems.append(
                    SourceProblem(
                        source.name, job.path, _kind(failure), _message(failure, source.name)
                    )
                )
            else:
                self._problem(job, source.name, "did not deliver a verified file", "fetch")


def fetch(
    verified: VerifiedManifest,
    dest: str | os.PathLike[str],
    sources: Sequence[Transport],
    *,
    files: Sequence[FileEntry] | None = None,
    piece_layers: Mapping[bytes, bytes] | None = None,
    stall_timeout: float = 60.0,
    progress: Progress | None = None,
    replace: bool = False,
) -> FetchReport:
    """Fetch the files of a verified manifest into ``dest``, verifying every byte.

    Files already at their final path with the right size and root are kept (they are hashed
    to be sure). A file there that differs is replaced (its verified pieces reused) when an
    earlier fetch put it there, or found it there verified, and it has not changed since (its
    size, times, inode and device, recorded in the state directory; ADR 0012): that is how
    a new version of a dataset updates an old one. Any other file that differs may be the
    user's own: it is replaced only with ``replace``. Everything else is obtained from
    ``sources``, tried in order, through the partial area ``dest/.owmanifest/partial``; a file
    appears at its final path only once it verified whole. Interrupting and re-running resumes
    without fetching verified pieces again.

    Args:
        verified: the manifest, after :func:`owmanifest.verify.verify_manifest`.
        dest: the destination directory (created if needed).
        sources: transports, in order of preference.
        files: fetch only these entries of the manifest (default: all).
        piece_layers: BEP 52 piece layers by root (``ParsedTorrent.piece_layers``); without
            the layer of a file larger than a piece, that file is fetched whole, verified only
            at the end, and cannot resume.
        stall_timeout: a source with no verified progress for this many seconds is abandoned
            (for files fetched whole: less than a piece's worth of bytes).
        progress: receives progress events (default: none).
        replace: also replace files that differ from the manifest which owmanifest did not
            put there (their content is lost).

    Returns:
        The report, when every file is in place and verified.

    Raises:
        TypeError: ``verified`` is not a :class:`VerifiedManifest`.
        UsageError: bad arguments (a file not in the manifest, no usable source, a bad
            timeout), another fetch is using ``dest``, or (without ``replace``) files in
            ``dest`` differ from the manifest and are not as a fetch of this dataset into
            ``dest`` left them: raised before anything is transferred. A file that changes
            after that is left as it is and reported as not fetched.
        PathError: a file would be written outside ``dest`` or through a symbolic link.
        IncompleteFetchError: some files could not be fetched; the message lists each source
            tried and why, ``error.report`` says what succeeded.
        FetchError: the destination cannot be written (disk full, permissions).
    """
    if not isinstance(verified, VerifiedManifest):
        raise TypeError("fetch needs a VerifiedManifest (see owmanifest.verify.verify_manifest)")
    if not stall_timeout > 0:
        raise UsageError("the stall timeout must be positive", observed=stall_timeout)
    for source in sources:
        if not isinstance(source, (RangeTransport, DirectoryTransport)):
            raise UsageError(
                f"not a transport: {source!r}",
                expected="a RangeTransport or DirectoryTransport",
                observed=type(source).__name__,
            )
    manifest = verified.manifest
    entries = _select(manifest, files)
    target = Path(dest)
    if os.path.lexists(target) and not target.is_dir():
        raise UsageError("the destination exists and is not a directory", path=str(target))
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(
            f"cannot create the destination: {exc.strerror}", path=str(exc.filename or target)
        ) from exc
    if not target.is_dir():
        raise UsageError("the destination is not a directory", path=str(target))
    progress = progress if progress is not None else NullProgress()
    fetcher = _Fetcher(
        manifest,
        target.resolve(strict=True),
        entries,
        tuple(sources),
        piece_layers or {},
        stall_timeout,
        progress,
        replace,
    )
    try:
        return fetcher.run()
    except OSError as exc:  # the destination, not a source: disk full, permissions, ...
        raise FetchError(
            f"cannot write into the destination: {exc}", path=str(exc.filename or target)
        ) from exc
    finally:
        progress.close()
