"""Atomic file writes: a temporary file in the same directory, fsync, then rename."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

__all__ = ["write_atomic"]


def write_atomic(
    path: str | os.PathLike[str],
    data: bytes,
    *,
    mode: int = 0o644,
    overwrite: bool = True,
    fsync: bool = True,
) -> None:
    """Write ``data`` to ``path`` so that readers see either the old or the new file, never half.

    Args:
        mode: permissions of the new file, applied at creation (so secrets are never readable).
        overwrite: if false, raise ``FileExistsError`` when ``path`` exists.
        fsync: flush the data to disk before the rename. Only skip it for files that are
            hints, checked again when read (a fetch's piece state, resume data): after a
            crash they may be empty, never half-written.

    Raises:
        OSError: the write failed (the original file, if any, is untouched); its filename is
            ``path``, not the temporary file's.
    """
    target = Path(path)
    if not overwrite and os.path.lexists(target):
        raise FileExistsError(f"{target} exists")
    # A fresh name, created exclusively: never a file (or a planted link) that already exists.
    tmp = target.with_name(f".{target.name}.{os.urandom(6).hex()}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(tmp, flags, mode)
    except OSError as exc:  # named after the file the caller asked for
        raise type(exc)(exc.errno, exc.strerror, os.fspath(target)) from exc
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        if overwrite:
            os.replace(tmp, target)
        else:
            os.link(tmp, target)  # fails if target appeared meanwhile
            os.unlink(tmp)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
