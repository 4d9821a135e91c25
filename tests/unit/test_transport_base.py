"""The transport base classes enforce lengths and error types for every plugin."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from owmanifest.errors import FetchError, SizeExceededError, TransportError, UsageError
from owmanifest.manifest.digest import BEP52, Digest
from owmanifest.manifest.model import FileEntry
from owmanifest.transport import (
    DirectoryTransport,
    FetchPlan,
    NullProgress,
    Progress,
    RangeTransport,
    SourceUnavailableError,
    Transport,
)

ENTRY = FileEntry("data/file.bin", 1000, Digest(BEP52, bytes(32)))


class Scripted(RangeTransport):
    """Yields the given chunks (or raises), and counts how many were taken."""

    def __init__(self, chunks: list[object], error: BaseException | None = None) -> None:
        self.name = "scripted"
        self.chunks = chunks
        self.error = error
        self.taken = 0
        self.closed = False

    def open_range(self, entry: FileEntry, offset: int, length: int) -> Iterator[bytes]:
        try:
            for chunk in self.chunks:
                self.taken += 1
                yield chunk  # type: ignore[misc]
            if self.error is not None:
                raise self.error
        finally:
            self.closed = True


def read(t: RangeTransport, offset: int = 0, length: int = 10) -> bytes:
    return b"".join(t.read_range(ENTRY, offset, length))


def test_exact_length_passes_through() -> None:
    t = Scripted([b"abc", b"", bytearray(b"defg"), memoryview(b"hij")])
    chunks = list(t.read_range(ENTRY, 0, 10))
    assert b"".join(chunks) == b"abcdefghij"
    assert all(type(c) is bytes and c for c in chunks)
    assert t.closed


def test_too_many_bytes_stops_reading() -> None:
    t = Scripted([b"x" * 6, b"y" * 6, b"z" * 6, b"w" * 6])
    received = []
    with pytest.raises(SizeExceededError) as info:
        for chunk in t.read_range(ENTRY, 0, 10):
            received.append(chunk)
    assert b"".join(received) == b"x" * 6  # nothing beyond the limit is passed on
    assert t.taken == 2  # and reading stopped at once
    assert t.closed
    assert info.value.uri == "scripted"


def test_too_few_bytes_is_a_fetch_error() -> None:
    with pytest.raises(FetchError, match="fewer bytes") as info:
        read(Scripted([b"abc"]))
    assert info.value.expected == "10 bytes from offset 0"
    assert info.value.observed == "3 bytes"


@pytest.mark.parametrize(
    "error",
    [OSError("disk on fire"), ValueError("bad"), KeyError("k"), RuntimeError()],
    ids=lambda e: type(e).__name__,
)
def test_foreign_exceptions_become_fetch_errors(error: Exception) -> None:
    with pytest.raises(FetchError) as info:
        read(Scripted([b"abc"], error))
    assert info.value.__cause__ is error
    assert info.value.uri == "scripted"
    assert info.value.path == ENTRY.path
    assert type(error).__name__ in str(info.value)


def test_transport_errors_pass_through_with_the_uri_filled_in() -> None:
    error = SourceUnavailableError("gone")
    with pytest.raises(SourceUnavailableError) as info:
        read(Scripted([], error))
    assert info.value is error
    assert info.value.uri == "scripted"


def test_non_bytes_chunks_are_refused() -> None:
    with pytest.raises(FetchError, match="not bytes"):
        read(Scripted(["text"]))


def test_keyboard_interrupt_is_not_swallowed() -> None:
    with pytest.raises(KeyboardInterrupt):
        read(Scripted([b"a"], KeyboardInterrupt()))


@pytest.mark.parametrize(("offset", "length"), [(-1, 5), (0, -1), (995, 6), (1001, 0)], ids=str)
def test_ranges_outside_the_declared_file_are_refused(offset: int, length: int) -> None:
    t = Scripted([b"x" * 100])
    with pytest.raises(UsageError):
        list(t.read_range(ENTRY, offset, length))
    assert t.taken == 0


def test_empty_range_asks_nothing() -> None:
    t = Scripted([b"x"])
    assert list(t.read_range(ENTRY, 1000, 0)) == []
    assert t.taken == 0


def test_read_range_cannot_be_overridden() -> None:
    with pytest.raises(TypeError, match="must not override"):

        class Sneaky(RangeTransport):
            def open_range(self, entry: FileEntry, offset: int, length: int) -> Iterator[bytes]:
                yield b""

            def read_range(  # type: ignore[misc]
                self, entry: FileEntry, offset: int, length: int
            ) -> Iterator[bytes]:
                yield b""


def test_run_cannot_be_overridden() -> None:
    with pytest.raises(TypeError, match="must not override"):

        class Sneaky(DirectoryTransport):
            def fetch_into(self, plan: FetchPlan, partial_dir: Path, progress: Progress) -> None:
                pass

            def run(  # type: ignore[misc]
                self, plan: FetchPlan, partial_dir: Path, progress: Progress
            ) -> None:
                pass


def test_abstract_method_is_required() -> None:
    class Incomplete(RangeTransport):
        pass

    with pytest.raises(TypeError):
        Incomplete()  # type: ignore[abstract]


class Failing(DirectoryTransport):
    name = "failing"

    def __init__(self, error: BaseException) -> None:
        self.error = error

    def fetch_into(self, plan: FetchPlan, partial_dir: Path, progress: Progress) -> None:
        raise self.error


def test_directory_transport_errors_are_wrapped(tmp_path: Path) -> None:
    from tests.unit.transport_support import make_dataset

    ds = make_dataset(tmp_path / "src", {"a": 10})
    plan = FetchPlan(ds.manifest, (), 1.0)
    boom = RuntimeError("libtorrent exploded")
    with pytest.raises(FetchError, match="libtorrent exploded") as info:
        Failing(boom).run(plan, tmp_path, NullProgress())
    assert info.value.__cause__ is boom
    assert info.value.uri == "failing"
    stall = SourceUnavailableError("no peers")
    with pytest.raises(TransportError) as info2:
        Failing(stall).run(plan, tmp_path, NullProgress())
    assert info2.value is stall


def test_null_progress_is_a_progress() -> None:
    assert isinstance(NullProgress(), Progress)
    assert issubclass(RangeTransport, Transport)
