"""A local directory as a source: sneaker-net (a USB disk, a network share) and tests.

The directory is laid out like the dataset. Its files are read by range and verified like any
other source's bytes; with ``link=True`` a file that verifies whole is hard-linked instead of
copied (same file system only).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

from ..errors import FetchError, UsageError
from ..manifest.model import FileEntry
from .base import RangeTransport, SourceUnavailableError

__all__ = ["LocalTransport"]


def _to_path(location: str | os.PathLike[str]) -> Path:
    """A path from a plain path or a ``file:`` URI (``file:///x``, ``file://localhost/x``).

    Raises:
        UsageError: a ``file:`` URI naming another host.
    """
    if isinstance(location, str) and location[:5].lower() == "file:":
        parts = urlsplit(location)
        if parts.netloc not in ("", "localhost"):
            raise UsageError(
                "file: URIs must name a local path",
                uri=location,
                expected="file:///path or file://localhost/path",
                observed=parts.netloc,
            )
        return Path(url2pathname(unquote(parts.path)) if os.name == "nt" else unquote(parts.path))
    return Path(location)


class LocalTransport(RangeTransport):
    """Byte ranges from a directory laid out like the dataset.

    Args:
        directory: a path or ``file:`` URI.
        link: hard-link files that verify whole instead of copying them. The destination then
            shares the file with the source: changing one changes the other.
        chunk_size: bytes per read.

    Raises:
        UsageError: a ``file:`` URI naming a remote host.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        link: bool = False,
        chunk_size: int = 1 << 20,
    ) -> None:
        self.directory = _to_path(directory)
        self.link = link
        self.chunk_size = chunk_size
        self.name = str(self.directory)

    def path_for(self, entry: FileEntry) -> Path:
        """Where ``entry`` is in the source directory."""
        return self.directory.joinpath(*entry.path.split("/"))

    def _check_directory(self) -> None:
        if not self.directory.is_dir():
            raise SourceUnavailableError(
                f"{self.name}: not a directory (not mounted?)", uri=self.name
            )

    def open_range(self, entry: FileEntry, offset: int, length: int) -> Iterator[bytes]:
        """Yield ``length`` bytes of the file from ``offset``.

        Raises:
            SourceUnavailableError: the directory does not exist.
            OSError: the file is missing or unreadable (reported as ``FetchError``).
        """
        self._check_directory()
        path = self.path_for(entry)
        # O_NONBLOCK: opening a FIFO (or a device) put in a mirror must not wait for a writer;
        # it is refused for this file alone (found by a review: one FIFO blocked the thread,
        # and the whole mirror was given up).
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        try:
            mode = os.fstat(fd).st_mode
        except BaseException:
            os.close(fd)
            raise
        if not stat.S_ISREG(mode):
            os.close(fd)
            raise FetchError(
                f"{self.name}: {entry.path} is not a regular file",
                uri=self.name,
                path=str(path),
                expected="a regular file",
                observed=_kind(mode),
            )
        with os.fdopen(fd, "rb") as f:
            f.seek(offset)
            remaining = length
            while remaining:
                data = f.read(min(self.chunk_size, remaining))
                if not data:
                    return
                remaining -= len(data)
                yield data

    def link_file(self, entry: FileEntry, target: Path) -> bool:
        """Hard-link the source file at ``target`` when ``link`` is on and sizes agree."""
        if not self.link:
            return False
        source = self.path_for(entry)
        try:
            st = os.stat(source)
            if not stat.S_ISREG(st.st_mode) or st.st_size != entry.size:
                return False
            os.link(source, target, follow_symlinks=True)
        except (OSError, NotImplementedError):
            return False
        return True


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISDIR, "a directory")):  # fmt: skip
        if test(mode):
            return name
    return "not a regular file"
