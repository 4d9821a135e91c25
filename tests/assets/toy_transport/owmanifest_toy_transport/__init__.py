"""A toy transport: ``toy:///some/dir`` serves the files of a directory, stored reversed.

It exists to show (and test) that a third-party distribution can add a URI scheme to owmanifest
with one entry point and one method.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlsplit

from owmanifest.manifest.model import FileEntry
from owmanifest.transport import RangeTransport

__all__ = ["ToyTransport"]


class ToyTransport(RangeTransport):
    """Reads ``<dir>/<path>.reversed``: each file stored back to front."""

    requests = 0

    def __init__(self, uri: str) -> None:
        self.directory = Path(unquote(urlsplit(uri).path))
        self.name = uri

    def open_range(self, entry: FileEntry, offset: int, length: int) -> Iterator[bytes]:
        ToyTransport.requests += 1
        stored = (self.directory / (entry.path + ".reversed")).read_bytes()
        data = stored[::-1]
        yield data[offset : offset + length]
