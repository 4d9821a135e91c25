"""The partial area: where bytes wait until their whole file verified.

Layout, under the destination directory::

    .owmanifest/lock                 held (flock) while a fetch runs
    .owmanifest/partial/<key>.part   the file's bytes so far (sparse; verified pieces only,
                                     except in whole-file mode, see fetch.py)
    .owmanifest/partial/<key>.json   which pieces of <key>.part verified, and for which
                                     path/size/root/piece length

``<key>`` is derived from the manifest path, so paths need no directories here and two files
never share a partial file. The state is written atomically (temporary file, then
``os.replace``). It is only a hint: on resume every piece it lists is read back and verified
again, so a crash between writing data and writing state can never let a bad piece through,
and whole files are hashed again before they are moved to their final path.

Not public API.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import stat
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Protocol

from .._atomic import write_atomic
from ..errors import FileVerificationError, PathError, UsageError
from ..manifest.model import FileEntry

__all__ = [
    "PARTIAL_DIR",
    "STATE_DIR",
    "PartialArea",
    "PartialFile",
    "PieceChecker",
    "runs",
]

STATE_DIR = ".owmanifest"
PARTIAL_DIR = "partial"
_FORMAT = "owmanifest-partial/1"
_SAVE_INTERVAL = 0.5  # seconds between state writes while pieces keep arriving
_READ_CHUNK = 1 << 20


class PieceChecker(Protocol):
    """What the partial area needs from :class:`owmanifest.verify.blocks.PieceVerifier`."""

    num_pieces: int

    def piece_span(self, index: int) -> tuple[int, int]: ...

    def verify_piece(self, index: int, data: bytes | memoryview) -> None: ...


def runs(indices: Iterable[int]) -> list[list[int]]:
    """Sorted, merged ``[start, end)`` runs of integer indices."""
    out: list[list[int]] = []
    for i in sorted(set(indices)):
        if out and out[-1][1] == i:
            out[-1][1] = i + 1
        else:
            out.append([i, i + 1])
    return out


def _unruns(value: Any, limit: int) -> set[int]:
    """Inverse of :func:`runs`, ignoring anything malformed or out of ``range(limit)``."""
    out: set[int] = set()
    if not isinstance(value, list):
        return out
    for item in value:
        if (
            isinstance(item, list)
            and len(item) == 2
            and all(isinstance(x, int) and not isinstance(x, bool) for x in item)
        ):
            start, end = max(0, item[0]), min(limit, item[1])
            out.update(range(start, end))
    return out


def _ensure_dir(path: Path) -> None:
    """Create ``path`` (one level) unless it exists as a real directory.

    Raises:
        PathError: ``path`` is a symbolic link or not a directory.
    """
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        with contextlib.suppress(FileExistsError):
            os.mkdir(path)
        st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise PathError(
            "refusing to use a symbolic link or non-directory as working directory",
            path=str(path),
            expected="directory",
            observed="symbolic link" if stat.S_ISLNK(st.st_mode) else "not a directory",
        )


def _remove(path: Path) -> None:
    """Remove whatever is at ``path`` (a file, a symbolic link, a directory tree), if anything."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(path)
    else:
        os.unlink(path)


def _fsync_dir(path: Path) -> None:
    if os.name != "posix":  # pragma: no cover - Windows cannot open directories
        return
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def atomic_write_json(path: Path, value: Any) -> None:
    """Write JSON to ``path`` atomically (temporary file in the same directory, then replace).

    Not ``fsync``ed: what is written here is a hint, verified again when it is read.
    """
    data = json.dumps(value, separators=(",", ":"), sort_keys=True).encode("utf-8")
    write_atomic(path, data, fsync=False)


class PartialFile:
    """The partial data and piece state of one manifest file."""

    def __init__(self, area: PartialArea, entry: FileEntry, piece_length: int) -> None:
        self.area = area
        self.entry = entry
        self.piece_length = piece_length
        key = hashlib.sha256(entry.path.encode("utf-8")).hexdigest()[:40]
        self.data_path = area.directory / f"{key}.part"
        self.state_path = area.directory / f"{key}.json"
        self.verified: set[int] = set()
        self._file: IO[bytes] | None = None
        self._dirty = False
        self._saved_at = 0.0

    # --- state ---------------------------------------------------------------------------------

    def _state(self) -> dict[str, Any]:
        root = self.entry.root
        return {
            "format": _FORMAT,
            "path": self.entry.path,
            "size": self.entry.size,
            "root": None if root is None else str(root),
            "piece_length": self.piece_length,
            "verified": runs(self.verified),
        }

    def load(self, checker: PieceChecker | None, seed: Path | None = None) -> int:
        """Find the pieces of this file that are already here, verifying each one.

        * The pieces listed in the state of an earlier run are read back and verified again
          (the state is a hint, never trusted), and so is every other piece that holds data
          (written after the state was last saved, before a crash).
        * Without a state that describes this exact file (another version, a crash, a
          :class:`~owmanifest.transport.DirectoryTransport` that wrote the data), every piece
          of the data file is checked.
        * With ``seed`` (an older regular file at the final path), missing pieces are looked for
          at the same offsets there, so a new version of a file costs only its changed pieces.

        With no ``checker`` (no piece layer) nothing can be verified and nothing is kept.
        Returns the number of verified bytes.
        """
        self.verified = set()
        if checker is None:
            return 0
        try:
            with open(self.state_path, encoding="utf-8") as f:
                state = json.load(f)
        except (OSError, ValueError):
            state = None
        mine = self._state()
        if isinstance(state, dict) and all(
            state.get(k) == mine[k] for k in ("format", "path", "size", "root", "piece_length")
        ):
            claimed = _unruns(state.get("verified"), checker.num_pieces)
            self._check(checker, sorted(claimed))
            if self.verified != claimed:
                self._dirty = True
            # The state is saved at most every half second, and a crash can come at any time:
            # pieces written since are verified too (holes, all zeros, are skipped cheaply).
            rest = (i for i in range(checker.num_pieces) if i not in claimed)
            if self._check(checker, rest, skip_zeros=True):
                self._dirty = True
        elif self._data_is_regular():
            self._check(checker, range(checker.num_pieces))
            self._dirty = True
        if seed is not None:
            self._seed(checker, seed)
        self._fit()
        self.save(force=True)
        return self.verified_bytes(checker)

    def _seed(self, checker: PieceChecker, seed: Path) -> None:
        flags = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NOFOLLOW", 0)
        try:
            fd = os.open(seed, flags)
        except OSError:
            return
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                return
            for index in range(checker.num_pieces):
                if index in self.verified:
                    continue
                offset, length = checker.piece_span(index)
                f.seek(offset)
                data = f.read(length)
                if len(data) != length:
                    break
                try:
                    checker.verify_piece(index, data)
                except FileVerificationError:
                    continue
                self.write_piece(index, offset, data)

    def save(self, *, force: bool = False) -> None:
        """Write the piece state if it changed (at most every half second unless ``force``)."""
        if not self._dirty:
            return
        now = time.monotonic()
        if not force and now - self._saved_at < _SAVE_INTERVAL:
            return
        if self._file is not None:
            self._file.flush()
        atomic_write_json(self.state_path, self._state())
        self._dirty = False
        self._saved_at = now

    def rescan(self, checker: PieceChecker) -> int:
        """Verify every piece present in the data file (after another program wrote it).

        Returns the number of verified bytes.
        """
        self.close()
        self.verified = set()
        good = self._check(checker, range(checker.num_pieces))
        self._fit()
        self._dirty = True
        self.save(force=True)
        return good

    def _fit(self) -> None:
        """Make the data file exactly the entry's size. Bytes past it are no part of the file
        (an earlier, longer version's; a directory transport's extra bytes): left there, the
        whole file never matched its root, while every piece did, so no source was asked for
        anything and the file could not be fetched at all (found by a review)."""
        flags = os.O_WRONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NOFOLLOW", 0)
        try:
            fd = os.open(self.data_path, flags)
        except OSError:
            return  # none yet, or not a regular file (_open replaces it)
        try:
            st = os.fstat(fd)
            if stat.S_ISREG(st.st_mode) and st.st_size != self.entry.size:
                os.ftruncate(fd, self.entry.size)
        finally:
            os.close(fd)

    def _check(
        self, checker: PieceChecker, indices: Iterable[int], *, skip_zeros: bool = False
    ) -> int:
        """Add the pieces among ``indices`` that verify in the data file; return their bytes.

        With ``skip_zeros``, pieces that read as all zeros (never written) are not hashed.
        """
        good = 0
        try:
            if not self._data_is_regular():
                return 0
            with open(self.data_path, "rb") as f:
                for index in indices:
                    offset, length = checker.piece_span(index)
                    f.seek(offset)
                    data = f.read(length)
                    if len(data) != length or (skip_zeros and data.count(0) == length):
                        continue
                    try:
                        checker.verify_piece(index, data)
                    except FileVerificationError:
                        continue
                    self.verified.add(index)
                    good += length
        except OSError:
            pass
        return good

    def verified_bytes(self, checker: PieceChecker | None) -> int:
        """The number of bytes in verified pieces."""
        if checker is None:
            return 0
        return sum(checker.piece_span(i)[1] for i in self.verified)

    # --- data ----------------------------------------------------------------------------------

    def _data_is_regular(self) -> bool:
        try:
            st = os.lstat(self.data_path)
        except OSError:
            return False
        return stat.S_ISREG(st.st_mode)

    def _open(self) -> IO[bytes]:
        if self._file is None:
            if not self._data_is_regular():
                _remove(self.data_path)  # whatever a directory transport left there
            flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_BINARY", 0)
            flags |= getattr(os, "O_NOFOLLOW", 0)
            fd = os.open(self.data_path, flags, 0o644)
            self._file = os.fdopen(fd, "r+b")
            if os.fstat(fd).st_size != self.entry.size:
                self._file.truncate(self.entry.size)
        return self._file

    def write_piece(self, index: int, offset: int, data: bytes | memoryview) -> None:
        """Write a verified piece at its offset and record it (state saved lazily)."""
        f = self._open()
        f.seek(offset)
        f.write(data)
        self.verified.add(index)
        self._dirty = True
        self.save()

    def write_stream(self, chunks: Iterator[bytes]) -> None:
        """Replace the data with ``chunks`` written from offset 0 (whole-file mode).

        The bytes are not verified yet; no piece is recorded as verified.
        """
        self.reset()
        f = self._open()
        f.seek(0)
        for chunk in chunks:
            f.write(chunk)

    def reset(self) -> None:
        """Forget every piece and empty the data file."""
        self.verified = set()
        self._dirty = True
        self.save(force=True)
        f = self._open()
        f.truncate(0)
        f.truncate(self.entry.size)

    def close(self) -> None:
        """Flush, save the state, close the data file."""
        try:
            self.save(force=True)
        finally:
            if self._file is not None:
                self._file.close()
                self._file = None

    def prepare(self) -> Path:
        """Make sure the data file exists (sized) and is closed; returns its path."""
        self._open()
        self.close()
        return self.data_path

    def finalize(
        self,
        final: Path,
        source: Path | None = None,
        *,
        check: Callable[[], None] | None = None,
    ) -> os.stat_result | None:
        """Move the verified data file (or ``source``, another file in the partial area) to
        ``final``, durably, then forget this partial file.

        The caller has verified the bytes and checked ``final``'s parent directories. A symbolic
        link at ``final`` is replaced, never followed. ``check`` is called right before the
        move: whatever it raises leaves ``final`` as it is and the verified bytes here.

        Returns:
            ``final``'s ``lstat`` right after the move, or ``None`` when what is there already
            is not the file moved (something replaced it at once).
        """
        self.close()
        src = self.data_path if source is None else source
        fd = os.open(src, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        try:
            os.fsync(fd)
            inode = os.fstat(fd).st_ino
        finally:
            os.close(fd)
        try:
            if check is not None:
                check()
            os.replace(src, final)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            inode = self._copy_into_place(src, final, check)
        _fsync_dir(final.parent)
        try:
            st: os.stat_result | None = os.lstat(final)
        except OSError:
            st = None
        self.discard()
        return st if st is not None and st.st_ino == inode else None

    @staticmethod
    def _copy_into_place(src: Path, final: Path, check: Callable[[], None] | None) -> int:
        """A mount point inside the destination: copy next to ``final``, then replace it;
        returns the copy's inode."""
        tmp = final.with_name(f".{final.name}.owmanifest-tmp")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)  # a leftover, or a link put there: never written through
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        flags |= getattr(os, "O_BINARY", 0)
        try:
            with open(src, "rb") as f, os.fdopen(os.open(tmp, flags, 0o644), "wb") as g:
                shutil.copyfileobj(f, g, 1 << 20)
                g.flush()
                os.fsync(g.fileno())
                inode = os.fstat(g.fileno()).st_ino
            if check is not None:
                check()  # again: the copy took a while
            os.replace(tmp, final)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        os.unlink(src)
        return inode

    def discard(self) -> None:
        """Remove the data and state files."""
        if self._file is not None:
            self._file.close()
            self._file = None
        for path in (self.data_path, self.state_path):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        self.verified = set()
        self._dirty = False


class PartialArea:
    """The ``.owmanifest/partial`` directory of a destination, locked while in use.

    Raises:
        PathError: the working directories are symbolic links or not directories.
        UsageError: another fetch holds the lock.
    """

    def __init__(self, dest: Path) -> None:
        self.dest = dest
        self.state_dir = dest / STATE_DIR
        self.directory = self.state_dir / PARTIAL_DIR
        self._lock_fd: int | None = None

    def __enter__(self) -> PartialArea:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def open(self) -> None:
        _ensure_dir(self.state_dir)
        _ensure_dir(self.directory)
        lock = self.state_dir / "lock"
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
        fd = os.open(lock, flags, 0o644)
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: no advisory locks, run unlocked
            self._lock_fd = fd
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            raise UsageError(
                "another owmanifest fetch is using this destination", path=str(self.dest)
            ) from exc
        self._lock_fd = fd
        self._remove_temporaries()

    def _remove_temporaries(self) -> None:
        """Remove the temporary files of atomic writes that a crash left behind.

        Only with the lock held: no other fetch is writing here. Atomic writes happen in this
        directory (piece state) and in a transport's work directory one level down per
        dataset (``bittorrent/<info-hash>/``: resume data); the data trees a transport keeps
        there are not walked.
        """
        candidates = [*self.directory.glob("*.tmp"), *self.directory.glob("*/*/*.tmp")]
        for path in candidates:
            with contextlib.suppress(OSError):
                mode = os.lstat(path).st_mode
                if stat.S_ISREG(mode) or stat.S_ISLNK(mode):  # a link is removed, not followed
                    os.unlink(path)

    def file(self, entry: FileEntry, piece_length: int) -> PartialFile:
        return PartialFile(self, entry, piece_length)

    def close(self) -> None:
        """Release the lock; remove the working directories if nothing is left in them."""
        if self._lock_fd is None:
            return
        try:
            if not any(self.directory.iterdir()):
                self.directory.rmdir()
                os.unlink(self.state_dir / "lock")
                with contextlib.suppress(OSError):
                    self.state_dir.rmdir()
        except OSError:
            pass
        finally:
            os.close(self._lock_fd)
            self._lock_fd = None
