"""The one hashing engine: BEP 52 roots and piece layers, v1 piece hashes, optional SHA-256.

Every byte is read once and fed from the same buffer to every hash that was asked for. Create,
verify and the transports all go through this module.

* :class:`FileHasher` is the streaming core: feed it bytes in chunks of any size.
* :func:`hash_file` reads one file with a reused, large buffer.
* :func:`hash_files` is the fast path for many files. It splits large files into piece-aligned
  regions and batches small files, and runs the work on every core.

:func:`hash_files` runs each batch through the compiled core (``_hashcore.c``) when it is
built: the same reads and hashes in C, with OpenSSL's SHA-1 and SHA-256 (hashlib's own library;
on x86-64 with the SHA extensions, leaves and whole v1 pieces two at a time in the core's own
code, ADR 0009) and the GIL released for the whole batch, so threads use every core with no
per-file Python work. Without it (no C compiler at install time, or
``OWMANIFEST_PURE_PYTHON=1``) the same engine runs in Python: hashlib releases the GIL while it
hashes a 16 KiB leaf, so threads do well on large files; on many small files the per-file
Python work holds the GIL, and worker processes are about twice as fast. So: threads, or
processes (forked) for many files when forking is safe, that is on Linux when the calling
process has no other thread. Both give the same results and errors
(``tests/unit/test_hashcore.py``). See ``bench/hashing.py``,
``docs/adr/0001-bep52-merkle-roots.md``, ``docs/adr/0007-compiled-hashing-core.md`` and
``docs/adr/0009-two-leaves-at-once.md``.

A file that vanishes, is not a regular file, cannot be read or changes while it is read raises an
:class:`~owmanifest.errors.FileVerificationError` (or its subclass
:class:`~owmanifest.errors.MissingFileError`) naming the path, never a bare ``OSError``.
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
import stat
import struct
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from .._gc import paused_gc
from ..errors import FileVerificationError, MissingFileError
from ._compiled import pure_python_requested
from .merkle import (
    BLOCK_SIZE,
    HASH_SIZE,
    leaf_hashes,
    merkle_root,
    padded_root,
    piece_height,
    root_from_piece_layer,
)

__all__ = [
    "FileHasher",
    "FileHashes",
    "FileStats",
    "engine",
    "hash_file",
    "hash_files",
    "stat_files",
    "stat_files_and_keys",
    "stat_key_of",
    "stat_keys",
]

READ_SIZE = 4 * 1024 * 1024
"""Bytes per read (a whole number of 16 KiB blocks, so leaves are hashed in place)."""

_REGION_SIZE = 64 * 1024 * 1024
"""Files larger than this are hashed as several piece-aligned regions in parallel."""

_BATCH_FILES = 500
_BATCH_BYTES = 64 * 1024 * 1024
_PROCESS_MIN_FILES = 200
"""Use worker processes (when safe) from this many files on: per-file Python work holds the GIL,
so threads scale poorly on many small files; on a few large files they do as well as processes
without the cost of forking."""

_INLINE_BYTES = 16 * 1024 * 1024
_INLINE_FILES = 500
"""Less work than this (both bytes and files) is hashed in the calling thread: starting a pool
would cost more than it saves."""

_sha1 = hashlib.sha1
_sha256 = hashlib.sha256


@functools.cache
def _core() -> Any:
    """The compiled core with OpenSSL's digests loaded, or ``None`` (hash in pure Python).

    The core calls the OpenSSL that hashlib itself runs, found through the ``_hashlib``
    extension; before it is used, its SHA-1 and SHA-256 must give hashlib's digests.
    """
    if pure_python_requested():
        return None
    try:
        from . import _hashcore
    except ImportError:
        return None
    try:
        import _hashlib

        candidates = [getattr(_hashlib, "__file__", None)]
    except ImportError:
        candidates = []
    candidates += ["libcrypto.so.3", "libcrypto.so.1.1", "libcrypto.dylib"]
    if not any(name and _hashcore.load(name) for name in candidates):
        return None
    sample = bytes(range(256)) * 129  # more than two 16 KiB blocks, not a whole number
    if (
        _hashcore.sha256(sample) != _sha256(sample).digest()
        or _hashcore.sha1(sample) != _sha1(sample).digest()
    ):
        return None
    # Leaves and whole v1 pieces two at a time with the processor's SHA extensions (ADR 0009),
    # where it has them: on any difference from hashlib, OpenSSL hashes them instead.
    if _hashcore.sha_extensions():
        pairs = [(sample, sample[:55]), (sample[:64], sample[:BLOCK_SIZE]), (b"", sample[:119])]
        if any(
            _hashcore.sha256_two(a, b) != (_sha256(a).digest(), _sha256(b).digest())
            or _hashcore.sha1_two(a, b) != (_sha1(a).digest(), _sha1(b).digest())
            for a, b in pairs
        ):
            _hashcore.sha_extensions(False)
    return _hashcore


def engine() -> str:
    """Which engine :func:`hash_files` runs: ``"compiled"`` or ``"python"``."""
    return "python" if _core() is None else "compiled"


def sha_extensions() -> bool:
    """Whether the compiled core hashes leaves two at a time with the CPU's SHA extensions."""
    core = _core()
    return core is not None and bool(core.sha_extensions())


ProgressCallback = Callable[[int], None]


@dataclass(frozen=True, slots=True)
class FileHashes:
    """Everything the engine computes for one file.

    Attributes:
        size: size in bytes.
        root: BEP 52 Merkle root; ``None`` exactly when ``size == 0``.
        piece_layer: the concatenated 32-byte piece hashes; ``b""`` when
            ``size <= piece_length`` (BEP 52 stores no layer then).
        v1_pieces: concatenated SHA-1 of each piece of this file, the last piece zero-padded to
            the piece length (in a hybrid torrent every file starts on a piece boundary);
            ``b""`` for an empty file; ``None`` when v1 hashes were not requested.
        v1_last_unpadded: SHA-1 of the last piece without padding (needed when the file ends
            the torrent with no pad file after it); ``None`` when not requested or empty.
        sha256: whole-file SHA-256, only when requested.
    """

    size: int
    root: bytes | None
    piece_layer: bytes
    v1_pieces: bytes | None
    v1_last_unpadded: bytes | None
    sha256: bytes | None = None


@dataclass(frozen=True, slots=True)
class _RegionHashes:
    """What a piece-aligned region of a large file contributes (merged in order)."""

    offset: int
    piece_layer: bytes
    v1_pieces: bytes | None
    v1_last_unpadded: bytes | None


@functools.lru_cache(maxsize=4)
def _zeros(piece_length: int) -> memoryview:
    return memoryview(bytes(piece_length))


class FileHasher:
    """Streaming hasher for one file (or for one piece-aligned region of a file).

    Each chunk given to :meth:`update` is hashed from the same buffer by every hash requested:
    the BEP 52 leaves (reduced to piece hashes as soon as a piece is complete, so memory stays
    proportional to the number of pieces), the v1 SHA-1 pieces and the whole-file SHA-256.

    Args:
        piece_length: power of two, at least 16 KiB.
        v1: also compute v1 (SHA-1) piece hashes.
        sha256: also compute the SHA-256 of the whole file.

    Raises:
        ValueError: ``piece_length`` is not a power of two of at least 16 KiB.
    """

    __slots__ = (
        "_height",
        "_leaves",
        "_partial",
        "_per_piece",
        "_piece_length",
        "_pieces",
        "_sha256",
        "_size",
        "_v1",
        "_v1_fill",
        "_v1_pieces",
    )

    def __init__(self, piece_length: int, *, v1: bool = True, sha256: bool = False) -> None:
        self._height = piece_height(piece_length)
        self._piece_length = piece_length
        self._per_piece = 1 << self._height
        self._size = 0
        self._leaves: list[bytes] = []  # leaves of the current, incomplete piece
        self._pieces: list[bytes] = []  # roots of the complete pieces
        self._partial = bytearray()  # the start of an incomplete 16 KiB block
        self._v1: Any = _sha1() if v1 else None
        self._v1_fill = 0
        self._v1_pieces: list[bytes] = []
        self._sha256: Any = _sha256() if sha256 else None

    @property
    def size(self) -> int:
        """Bytes fed so far."""
        return self._size

    def update(self, data: bytes | bytearray | memoryview) -> None:
        """Feed the next bytes of the file."""
        view = memoryview(data).cast("B")
        n = len(view)
        if not n:
            return
        self._size += n
        if self._sha256 is not None:
            self._sha256.update(view)
        if self._v1 is not None:
            self._update_v1(view)

        sha = _sha256
        start = 0
        partial = self._partial
        if partial:
            start = min(BLOCK_SIZE - len(partial), n)
            partial += view[:start]
            if len(partial) < BLOCK_SIZE:
                return
            self._leaves.append(sha(partial).digest())
            partial.clear()
        end = start + (n - start) // BLOCK_SIZE * BLOCK_SIZE
        if end > start:
            self._leaves += leaf_hashes(view[start:end])
        if end < n:
            partial += view[end:]
        if len(self._leaves) >= self._per_piece:
            self._collapse()

    def _collapse(self) -> None:
        """Reduce every complete piece's leaves to the piece's subtree root."""
        leaves, per = self._leaves, self._per_piece
        full = len(leaves) // per * per
        if per == 1:
            self._pieces += leaves
        else:
            self._pieces += [merkle_root(leaves[i : i + per]) for i in range(0, full, per)]
        del leaves[:full]

    def _update_v1(self, view: memoryview) -> None:
        pl = self._piece_length
        pos, n = 0, len(view)
        while pos < n:
            if self._v1_fill == 0 and n - pos >= pl:
                self._v1_pieces.append(_sha1(view[pos : pos + pl]).digest())
                pos += pl
                continue
            take = min(n - pos, pl - self._v1_fill)
            self._v1.update(view[pos : pos + take])
            self._v1_fill += take
            pos += take
            if self._v1_fill == pl:
                self._v1_pieces.append(self._v1.digest())
                self._v1 = _sha1()
                self._v1_fill = 0

    def _flush(self) -> tuple[bytes | None, bytes | None]:
        """Close the last (partial) block and piece; return the v1 pieces and last unpadded."""
        if self._partial:
            self._leaves.append(_sha256(self._partial).digest())
            self._partial.clear()
        if self._v1 is None:
            return None, None
        last: bytes | None = None
        if self._v1_fill:
            last = self._v1.copy().digest()
            self._v1.update(_zeros(self._piece_length)[: self._piece_length - self._v1_fill])
            self._v1_pieces.append(self._v1.digest())
            self._v1 = _sha1()
            self._v1_fill = 0
        elif self._v1_pieces:
            last = self._v1_pieces[-1]
        return b"".join(self._v1_pieces), last

    def finish(self) -> FileHashes:
        """The hashes of everything fed so far, as a whole file. Call once."""
        v1_pieces, v1_last = self._flush()
        size = self._size
        layer = b""
        if size == 0:
            root = None
        elif size <= self._piece_length:
            # one piece: the root is over the actual leaves, not padded to the piece's count
            root = self._pieces[0] if self._pieces else merkle_root(self._leaves)
        else:
            if self._leaves:
                self._pieces.append(padded_root(self._leaves, self._height))
                self._leaves = []
            layer = b"".join(self._pieces)
            root = root_from_piece_layer(self._pieces, self._piece_length)
        digest = self._sha256.digest() if self._sha256 is not None else None
        return FileHashes(size, root, layer, v1_pieces, v1_last, digest)

    def _finish_region(self, offset: int) -> _RegionHashes:
        """The piece hashes of a piece-aligned region of a file larger than one piece."""
        v1_pieces, v1_last = self._flush()
        if self._leaves:
            self._pieces.append(padded_root(self._leaves, self._height))
            self._leaves = []
        return _RegionHashes(offset, b"".join(self._pieces), v1_pieces, v1_last)


# --- reading files ------------------------------------------------------------------------------


class _Job(NamedTuple):
    """Hash ``length`` bytes at ``offset`` of file ``number`` (size/mtime as planned; with a
    ``key``, :func:`stat_key_of` the file read must have, so that it is the very file planned).

    A tuple, so that the compiled core reads it as it is.
    """

    number: int  # the file's place in the list given to hash_files
    path: str
    size: int
    mtime_ns: int
    offset: int = 0
    length: int = -1  # -1: the whole file
    key: bytes | None = None

    @property
    def whole(self) -> bool:
        return self.length < 0


_Result = FileHashes | _RegionHashes

_OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_BINARY", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_NONBLOCK", 0)  # do not hang on a FIFO; no effect on regular files
)


def _stat(path: str, follow_symlinks: bool = True) -> os.stat_result:
    """``os.stat`` of a file to hash, with owmanifest errors."""
    try:
        st = os.stat(path, follow_symlinks=follow_symlinks)
    except (FileNotFoundError, NotADirectoryError) as exc:
        raise MissingFileError("file not found", path=path) from exc
    except OSError as exc:
        raise FileVerificationError(f"cannot stat file: {exc.strerror or exc}", path=path) from exc
    if not stat.S_ISREG(st.st_mode):
        raise MissingFileError("not a regular file", path=path)
    return st


def _open_fd(path: str) -> tuple[int, os.stat_result]:
    """Open a regular file for reading; return the descriptor and its ``fstat``."""
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except (FileNotFoundError, NotADirectoryError) as exc:
        raise MissingFileError("file not found", path=path) from exc
    except OSError as exc:
        raise FileVerificationError(f"cannot open file: {exc.strerror or exc}", path=path) from exc
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise MissingFileError("not a regular file", path=path)
        return fd, st
    except BaseException:
        os.close(fd)
        raise


def _open(path: str) -> tuple[io.FileIO, os.stat_result]:
    """Open a regular file for reading; return the raw file and its ``fstat``."""
    fd, st = _open_fd(path)
    try:
        return io.FileIO(fd, "r"), st
    except BaseException:
        os.close(fd)
        raise


def _planned(job: _Job, st: os.stat_result) -> bool:
    """Whether an open file is still the one ``job`` was planned for: its size and modification
    time and, with a key, its change time, inode and device too."""
    if st.st_size != job.size or st.st_mtime_ns != job.mtime_ns:
        return False
    return job.key is None or stat_key_of(st) == job.key


def _hash_in_buffer(
    job: _Job,
    piece_length: int,
    v1: bool,
    sha256: bool,
    buf: memoryview,
    progress: ProgressCallback | None,
) -> FileHashes:
    """Hash a whole file that fits in ``buf``: one read, then every hash from the buffer.

    The same result as :class:`FileHasher` fed the same bytes (a test compares them), with
    less Python work per file: on a tree of small files, per-file overhead is what limits the
    throughput, not hashing. The file is checked for changes as in :func:`_read`.
    """
    path, size = job.path, job.size
    fd, st = _open_fd(path)
    try:
        if not _planned(job, st):
            raise _changed(path, size, st.st_size)
        got = 0
        while got < size:
            n = os.readv(fd, [buf[got:size]])
            if not n:
                break
            got += n
        after = os.fstat(fd)
    except OSError as exc:
        raise FileVerificationError(f"cannot read file: {exc.strerror or exc}", path=path) from exc
    finally:
        os.close(fd)
    if got != size or not _planned(job, after):
        raise _changed(path, size, after.st_size)
    if progress is not None and size:
        progress(size)
    view = buf[:size]
    digest = _sha256(view).digest() if sha256 else None
    if not size:
        return FileHashes(0, None, b"", b"" if v1 else None, None, digest)
    sha = _sha256
    leaves = [sha(view[i : i + BLOCK_SIZE]).digest() for i in range(0, size, BLOCK_SIZE)]
    layer = b""
    if size <= piece_length:
        root = merkle_root(leaves)
    else:
        height = piece_height(piece_length)
        per = 1 << height
        pieces = [padded_root(leaves[i : i + per], height) for i in range(0, len(leaves), per)]
        layer = b"".join(pieces)
        root = root_from_piece_layer(pieces, piece_length)
    if not v1:
        return FileHashes(size, root, layer, None, None, digest)
    sha1 = _sha1
    full = size - size % piece_length
    v1_pieces = [sha1(view[i : i + piece_length]).digest() for i in range(0, full, piece_length)]
    if full < size:
        last_piece = sha1(view[full:size])
        last = last_piece.digest()
        last_piece.update(_zeros(piece_length)[: piece_length - (size - full)])
        v1_pieces.append(last_piece.digest())
    else:
        last = v1_pieces[-1]
    return FileHashes(size, root, layer, b"".join(v1_pieces), last, digest)


def _changed(path: str, expected: int, observed: int) -> FileVerificationError:
    return FileVerificationError(
        "file changed while it was being read"
        + (" (or another file was found at its path)" if expected == observed else ""),
        path=path,
        expected=f"{expected} bytes",
        observed=f"{observed} bytes",
    )


def _read(
    job: _Job,
    hasher: FileHasher,
    buf: memoryview,
    progress: ProgressCallback | None,
) -> None:
    """Feed ``job``'s bytes to ``hasher``; check that the file did not change meanwhile.

    The file must keep the size and modification time it had when the work was planned (with
    ``job.key``, its whole stat key), before and after the read; a file that grows or shrinks
    while it is read is caught either way.
    """
    path = job.path
    f, st = _open(path)
    with f:
        if not _planned(job, st):
            raise _changed(path, job.size, st.st_size)
        remaining = job.size if job.whole else job.length
        try:
            if job.offset:
                f.seek(job.offset)
            while remaining > 0:
                n = f.readinto(buf[: min(len(buf), remaining)])
                if not n:
                    break
                hasher.update(buf[:n])
                remaining -= n
                if progress is not None:
                    progress(n)
            after = os.fstat(f.fileno())
        except OSError as exc:
            raise FileVerificationError(
                f"cannot read file: {exc.strerror or exc}", path=path
            ) from exc
    if remaining or not _planned(job, after):
        raise _changed(path, job.size, after.st_size)


def _buffer_size(largest: int) -> int:
    """READ_SIZE, or less for small files (a whole number of 16 KiB blocks)."""
    return min(READ_SIZE, max(1, -(-largest // BLOCK_SIZE)) * BLOCK_SIZE)


def _buffer(largest: int) -> memoryview:
    """A read buffer of :func:`_buffer_size` bytes."""
    return memoryview(bytearray(_buffer_size(largest)))


def _run_task(
    jobs: Sequence[_Job],
    piece_length: int,
    v1: bool,
    sha256: bool,
    progress: ProgressCallback | None = None,
) -> list[_Result]:
    """Hash a batch of jobs with one reused buffer (runs in a worker thread or process)."""
    buffer_size = _buffer_size(max(job.size if job.whole else job.length for job in jobs))
    core = _core()
    if core is not None:
        return _run_core(core, jobs, piece_length, v1, sha256, buffer_size, progress)
    buf = memoryview(bytearray(buffer_size))
    out: list[_Result] = []
    for job in jobs:
        if job.whole and job.size <= len(buf):
            out.append(_hash_in_buffer(job, piece_length, v1, sha256, buf, progress))
            continue
        hasher = FileHasher(piece_length, v1=v1, sha256=sha256)
        _read(job, hasher, buf, progress)
        out.append(hasher.finish() if job.whole else hasher._finish_region(job.offset))
    return out


_CORE_MISSING, _CORE_OPEN, _CORE_NOT_REGULAR, _CORE_CHANGED, _CORE_READ = 1, 2, 3, 4, 5


def _core_error(path: str, kind: int, errno: int, verb: str) -> FileVerificationError:
    """The exception the Python engine raises for what the core reported (``verb``: the
    call that failed before the read, ``"open"`` or ``"stat"``)."""
    reason = os.strerror(errno) if errno else ""
    if kind == _CORE_MISSING:
        return MissingFileError("file not found", path=path)
    if kind == _CORE_NOT_REGULAR:
        return MissingFileError("not a regular file", path=path)
    if kind == _CORE_OPEN:
        return FileVerificationError(f"cannot {verb} file: {reason}", path=path)
    return FileVerificationError(f"cannot read file: {reason}", path=path)


def _run_core(
    core: Any,
    jobs: Sequence[_Job],
    piece_length: int,
    v1: bool,
    sha256: bool,
    buffer_size: int,
    progress: ProgressCallback | None,
) -> list[_Result]:
    """:func:`_run_task` in the compiled core: the same results, the same errors."""
    results, error = core.hash_jobs(jobs, piece_length, v1, sha256, buffer_size)
    if error is not None:
        index, kind, errno, observed = error
        job = jobs[index]
        done = _task_bytes(jobs[:index])
        if progress is not None and done:
            progress(done)
        if kind == _CORE_CHANGED:
            raise _changed(job.path, job.size, observed)
        raise _core_error(job.path, kind, errno, "open")
    done = _task_bytes(jobs)
    if progress is not None and done:
        progress(done)
    out: list[_Result] = []
    for job, (root, layer, v1_pieces, v1_last, digest) in zip(jobs, results, strict=True):
        if job.whole:
            out.append(FileHashes(job.size, root, layer, v1_pieces, v1_last, digest))
        else:
            out.append(_RegionHashes(job.offset, layer, v1_pieces, v1_last))
    return out


def hash_file(
    path: str | os.PathLike[str],
    piece_length: int,
    *,
    v1: bool = True,
    sha256: bool = False,
    progress: ProgressCallback | None = None,
) -> FileHashes:
    """Hash one file in the calling thread.

    Args:
        path: the file.
        piece_length: power of two, at least 16 KiB.
        v1: also compute v1 (SHA-1) piece hashes.
        sha256: also compute the whole-file SHA-256.
        progress: called with the number of bytes hashed after each read.

    Raises:
        MissingFileError: the file does not exist or is not a regular file.
        FileVerificationError: the file cannot be read or changed while it was read.
        ValueError: bad ``piece_length``.
    """
    name = os.fsdecode(path)
    hasher = FileHasher(piece_length, v1=v1, sha256=sha256)
    st = _stat(name)
    buf = _buffer(st.st_size)
    _read(_Job(0, name, st.st_size, st.st_mtime_ns), hasher, buf, progress)
    return hasher.finish()


# --- many files on every core --------------------------------------------------------------------


def _plan(
    paths: Sequence[str],
    sizes: Sequence[int],
    mtimes: Sequence[int],
    piece_length: int,
    split: bool,
    workers: int,
    keys: bytes | None = None,
) -> list[list[_Job]]:
    """Cut the work into tasks: regions of large files, batches of small files (each job with
    its file's stat key from ``keys``, when given).

    Tasks are returned largest first, so that the last tasks to run are short ones.
    """
    region = max(piece_length, _REGION_SIZE // piece_length * piece_length)
    batch_files = max(1, min(_BATCH_FILES, -(-len(paths) // (4 * workers))))
    sized: list[tuple[int, list[_Job]]] = []  # (bytes, task)
    batch: list[_Job] = []
    batch_bytes = 0
    for index, (path, size, mtime) in enumerate(zip(paths, sizes, mtimes, strict=True)):
        key = None if keys is None else keys[STAT_KEY_SIZE * index : STAT_KEY_SIZE * (index + 1)]
        if split and size > region:
            for offset in range(0, size, region):
                length = min(region, size - offset)
                sized.append((length, [_Job(index, path, size, mtime, offset, length, key)]))
            continue
        batch.append(_Job(index, path, size, mtime, 0, -1, key))
        batch_bytes += size
        if len(batch) >= batch_files or batch_bytes >= _BATCH_BYTES:
            sized.append((batch_bytes, batch))
            batch, batch_bytes = [], 0
    if batch:
        sized.append((batch_bytes, batch))
    sized.sort(key=lambda item: item[0], reverse=True)  # stable: equal tasks keep file order
    return [task for _, task in sized]


def _task_bytes(task: Sequence[_Job]) -> int:
    return sum(job.size if job.whole else job.length for job in task)


def _merge(regions: list[_RegionHashes], size: int, piece_length: int) -> FileHashes:
    regions.sort(key=lambda r: r.offset)
    layer = b"".join(r.piece_layer for r in regions)
    nodes = [layer[i : i + HASH_SIZE] for i in range(0, len(layer), HASH_SIZE)]
    v1: bytes | None = None
    if regions[0].v1_pieces is not None:
        v1 = b"".join(r.v1_pieces or b"" for r in regions)
    return FileHashes(
        size=size,
        root=root_from_piece_layer(nodes, piece_length),
        piece_layer=layer,
        v1_pieces=v1,
        v1_last_unpadded=regions[-1].v1_last_unpadded,
    )


def _can_fork() -> bool:
    """True when worker processes can be forked safely: Linux, and no other thread running."""
    import multiprocessing  # only here: ~10 ms of start-up that the compiled core never needs

    if sys.platform != "linux" or "fork" not in multiprocessing.get_all_start_methods():
        return False
    if multiprocessing.current_process().daemon:  # a daemonic process may not have children
        return False
    try:
        return len(os.listdir("/proc/self/task")) == 1  # counts threads Python does not know of
    except OSError:
        return False


class _SerializedProgress:
    """Calls the user's progress callback from one thread at a time."""

    def __init__(self, callback: ProgressCallback) -> None:
        self._callback = callback
        self._lock = threading.Lock()

    def __call__(self, n: int) -> None:
        with self._lock:
            self._callback(n)


@paused_gc
def hash_files(
    paths: Sequence[str | os.PathLike[str]],
    piece_length: int,
    *,
    v1: bool = True,
    sha256: bool = False,
    workers: int | None = None,
    progress: ProgressCallback | None = None,
    stats: Sequence[os.stat_result] | FileStats | None = None,
    keys: bytes | None = None,
) -> list[FileHashes]:
    """Hash many files on every core; the result is in the order of ``paths``.

    Files larger than 64 MiB are cut into piece-aligned regions hashed in parallel (not when
    ``sha256`` is requested: a whole-file SHA-256 is one sequential stream); smaller files are
    batched. The result is the same as :func:`hash_file` on each path.

    Args:
        paths: the files.
        piece_length: power of two, at least 16 KiB.
        v1: also compute v1 (SHA-1) piece hashes.
        sha256: also compute whole-file SHA-256 digests.
        workers: how many threads or processes; default ``os.cpu_count()``.
        progress: called with byte increments, never from two threads at once (once per
            finished task with the compiled core, from its worker threads; with worker
            processes, once per finished task, from the calling thread).
        stats: the files' ``os.stat`` results or :func:`stat_files`, when the caller
            already took them (they must be regular files); each file must still have that
            size and modification time when it is read, or ``FileVerificationError`` is
            raised.
        keys: the files' :func:`stat_keys` (in the order of ``paths``), when each file read
            must be the very file they were taken of: the same size, times, inode and device
            when it is opened and after it is read, or ``FileVerificationError`` is raised.
            ``verify --fast`` records only what it read this way.

    Raises:
        MissingFileError: a file does not exist or is not a regular file.
        FileVerificationError: a file cannot be read or changed while it was read.
        ValueError: bad ``piece_length``, ``workers``, ``stats`` or ``keys``.
    """
    piece_height(piece_length)
    workers = worker_count(workers)
    names = _names(paths)
    if stats is None:
        sizes, mtimes = stat_files(names)
    elif isinstance(stats, FileStats):
        sizes, mtimes = stats
        if len(sizes) != len(names) or len(mtimes) != len(names):
            raise ValueError("stats must have a size and a time per path")
    elif len(stats) != len(names) or not all(stat.S_ISREG(st.st_mode) for st in stats):
        raise ValueError("stats must be one stat result of a regular file per path")
    else:
        sizes = [st.st_size for st in stats]
        mtimes = [st.st_mtime_ns for st in stats]
    if keys is not None and len(keys) != STAT_KEY_SIZE * len(names):
        raise ValueError("keys must be one stat key per path")
    return _hash_stated(
        names, sizes, mtimes, piece_length, v1, sha256, workers, progress, keys=keys
    )


def _names(paths: Sequence[str | os.PathLike[str]]) -> list[str]:
    """The paths as str (most are already: os.fsdecode costs a microsecond each)."""
    return [p if type(p) is str else os.fsdecode(p) for p in paths]


def worker_count(workers: int | None) -> int:
    """``workers``, or every core when it is ``None``.

    Raises:
        ValueError: ``workers`` is below 1.
    """
    if workers is None:
        return os.cpu_count() or 1
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    return workers


def _hash_stated(
    names: list[str],
    sizes: Sequence[int],
    mtimes: Sequence[int],
    piece_length: int,
    v1: bool,
    sha256: bool,
    workers: int,
    progress: ProgressCallback | None,
    *,
    keys: bytes | None = None,
) -> list[FileHashes]:
    """:func:`hash_files` of regular files whose sizes and modification times were taken."""
    total = sum(sizes)
    report = _SerializedProgress(progress) if progress is not None else None

    if workers == 1 or (total < _INLINE_BYTES and len(names) < _INLINE_FILES):
        tasks = _plan(names, sizes, mtimes, piece_length, False, 1, keys)
        results = [_run_task(task, piece_length, v1, sha256, report) for task in tasks]
    else:
        tasks = _plan(names, sizes, mtimes, piece_length, not sha256, workers, keys)
        results = _run_parallel(tasks, piece_length, v1, sha256, workers, report)

    out: list[Any] = [None] * len(names)
    regions: dict[int, list[_RegionHashes]] = {}
    for task, task_results in zip(tasks, results, strict=True):
        for job, result in zip(task, task_results, strict=True):
            if job.whole:
                out[job.number] = result
            else:
                regions.setdefault(job.number, []).append(result)  # type: ignore[arg-type]
    for index, parts in regions.items():
        out[index] = _merge(parts, sizes[index], piece_length)
    return out


class FileStats(NamedTuple):
    """The sizes and modification times of regular files, in the order of their paths."""

    sizes: list[int]
    mtimes_ns: list[int]


def stat_files(
    paths: Sequence[str | os.PathLike[str]], *, follow_symlinks: bool = True
) -> FileStats:
    """The sizes and modification times of files to hash, in one compiled pass where the core
    is built (for :func:`hash_files`' ``stats``). Each must be a regular file; without
    ``follow_symlinks``, a symbolic link is not one.

    Raises:
        MissingFileError: the first file that does not exist or is not a regular file.
        FileVerificationError: the first file that cannot be examined.
    """
    sizes, mtimes, _ = _stat_pass(paths, follow_symlinks, keys=False)
    return FileStats(sizes, mtimes)


def stat_files_and_keys(
    paths: Sequence[str | os.PathLike[str]], *, follow_symlinks: bool = True
) -> tuple[FileStats, bytes]:
    """:func:`stat_files` and :func:`stat_keys` from the same pass (``verify --fast``).

    Raises:
        MissingFileError: the first file that does not exist or is not a regular file.
        FileVerificationError: the first file that cannot be examined.
    """
    sizes, mtimes, keys = _stat_pass(paths, follow_symlinks, keys=True)
    return FileStats(sizes, mtimes), keys


STAT_KEY_FORMAT = "<qqqQQ"
"""The :mod:`struct` format of one file's entry in :func:`stat_keys`: size, mtime_ns, ctime_ns,
inode, device."""

_STAT_KEY = struct.Struct(STAT_KEY_FORMAT)
STAT_KEY_SIZE = _STAT_KEY.size
"""Bytes of one file's entry in :func:`stat_keys` (40)."""


def stat_key_of(st: os.stat_result) -> bytes:
    """One file's entry in :func:`stat_keys`, from its stat result."""
    return _STAT_KEY.pack(st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)


def stat_keys(paths: Sequence[str | os.PathLike[str]], *, follow_symlinks: bool = True) -> bytes:
    """Each file's (size, mtime_ns, ctime_ns, inode, device), packed with
    :data:`STAT_KEY_FORMAT` (40 bytes a file, in the order of ``paths``): what ``verify --fast``
    fingerprints, taken in one compiled pass where the core is built. Each must be a regular
    file; without ``follow_symlinks``, a symbolic link is not one.

    Raises:
        MissingFileError: the first file that does not exist or is not a regular file.
        FileVerificationError: the first file that cannot be examined.
    """
    return _stat_pass(paths, follow_symlinks, keys=True)[2]


def _stat_pass(
    paths: Sequence[str | os.PathLike[str]], follow_symlinks: bool, *, keys: bool
) -> tuple[list[int], list[int], bytes]:
    """:func:`stat_files` and, with ``keys``, :func:`stat_keys` (else ``b""``) in one pass."""
    names = _names(paths)
    core = _core()
    if core is None:
        stats = [_stat(name, follow_symlinks) for name in names]
        packed = b"".join(map(stat_key_of, stats)) if keys else b""
        return [s.st_size for s in stats], [s.st_mtime_ns for s in stats], packed
    sizes, mtimes, error, *packed_keys = core.stat_files(names, follow_symlinks, keys)
    if error is not None:
        index, kind, errno = error
        raise _core_error(names[index], kind, errno, "stat")
    return sizes, mtimes, bytes(packed_keys[0]) if keys else b""


def _run_parallel(
    tasks: list[list[_Job]],
    piece_length: int,
    v1: bool,
    sha256: bool,
    workers: int,
    progress: ProgressCallback | None,
) -> list[list[_Result]]:
    """Run the tasks on every core; return the results of each task, in task order."""
    small_files = sum(len(task) for task in tasks if task[0].whole)
    # The compiled core hashes a whole task with the GIL released: threads use every core.
    if _core() is None and small_files >= _PROCESS_MIN_FILES and _can_fork():
        return _run_in_processes(tasks, piece_length, v1, sha256, workers, progress)
    return _run_in_threads(tasks, piece_length, v1, sha256, workers, progress)


def _run_in_threads(
    tasks: list[list[_Job]],
    piece_length: int,
    v1: bool,
    sha256: bool,
    workers: int,
    progress: ProgressCallback | None,
) -> list[list[_Result]]:
    """The tasks on ``workers`` threads, each taking the next task when it finishes one; the
    first failure stops every thread before its next task and is raised once all have stopped.

    A pool this small rather than ``concurrent.futures``: importing that (and the ``logging``
    it imports) was ~10 ms of CPU on every ``verify`` and ``create``.
    """
    results: list[list[_Result] | None] = [None] * len(tasks)
    pending = iter(range(len(tasks)))
    failures: list[BaseException] = []
    lock = threading.Lock()

    def work() -> None:
        while True:
            with lock:
                index = None if failures else next(pending, None)
            if index is None:
                return
            try:
                results[index] = _run_task(tasks[index], piece_length, v1, sha256, progress)
            except BaseException as exc:  # re-raised in the calling thread
                with lock:
                    failures.append(exc)
                return

    threads = [
        threading.Thread(target=work, name=f"owmanifest-hash-{n}")
        for n in range(min(workers, len(tasks)))
    ]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            thread.join()
    except BaseException as exc:  # Ctrl-C: no new task starts; the running ones end first
        with lock:
            failures.append(exc)
        for thread in threads:
            thread.join()
        raise
    if failures:
        raise failures[0]
    return results  # type: ignore[return-value]  # every task ran, or a failure was raised


def _run_in_processes(
    tasks: list[list[_Job]],
    piece_length: int,
    v1: bool,
    sha256: bool,
    workers: int,
    progress: ProgressCallback | None,
) -> list[list[_Result]]:
    """The tasks on forked worker processes (the pure-Python engine on many small files,
    where the per-file work holds the GIL); progress is reported per finished task."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    executor = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"))
    with executor:
        futures = {
            executor.submit(_run_task, task, piece_length, v1, sha256, None): task for task in tasks
        }
        try:
            for future in as_completed(futures):
                future.result()  # the first failure stops everything
                if progress is not None:
                    progress(_task_bytes(futures[future]))
        except BaseException:
            executor.shutdown(wait=True, cancel_futures=True)
            raise
        return [future.result() for future in futures]
