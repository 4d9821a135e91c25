"""The transport interface: how bytes described by a verified manifest are obtained.

A transport is untrusted by design. It only moves bytes; :func:`owmanifest.transport.fetch`
verifies every piece against the signed manifest before anything is written where a user could
see it. There are two kinds, each with exactly one abstract method:

* :class:`RangeTransport` (HTTP mirrors, a local directory): :meth:`RangeTransport.open_range`
  yields the bytes of one byte range of one file. The base class wraps it in
  :meth:`RangeTransport.read_range`, which cannot be overridden and enforces the length (never
  more bytes than asked for, never fewer without an error) and turns any foreign exception into
  a :class:`~owmanifest.errors.FetchError`, so no plugin can forget to.
* :class:`DirectoryTransport` (BitTorrent): :meth:`DirectoryTransport.fetch_into` downloads
  whole files into the partial area at paths chosen by the fetcher; the fetcher hashes every
  file afterwards.

See ``docs/adr/0004-transport-interface.md``.
"""

from __future__ import annotations

import contextlib
import types
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Protocol, TypeVar, final, runtime_checkable

from ..errors import Error, FetchError, SizeExceededError, TransportError, UsageError
from ..manifest.model import FileEntry, Manifest

__all__ = [
    "DirectoryTransport",
    "FetchPlan",
    "NullProgress",
    "PlannedFile",
    "Progress",
    "RangeTransport",
    "SourceUnavailableError",
    "Transport",
]


class SourceUnavailableError(FetchError):
    """The whole source is unusable (connection refused, unknown host, TLS failure, gone).

    The fetcher stops asking this source for any further file; a plain
    :class:`~owmanifest.errors.FetchError` (say, HTTP 404) only drops the source for one file.
    """


@runtime_checkable
class Progress(Protocol):
    """Receives progress events from :func:`~owmanifest.transport.fetch`.

    Every method is called from the thread that called ``fetch``. Exceptions raised here abort
    the fetch (the partial area is saved first, so a later run resumes).
    """

    def start(self, total_bytes: int) -> None:
        """The fetch begins; ``total_bytes`` still have to be obtained."""

    def advance(self, nbytes: int, source: str) -> None:
        """``nbytes`` more bytes were obtained from ``source`` and verified."""

    def file_done(self, path: str) -> None:
        """``path`` was verified whole and is now at its final place."""

    def close(self) -> None:
        """The fetch is over (successfully or not)."""


class NullProgress:
    """A :class:`Progress` that ignores everything (the default)."""

    def start(self, total_bytes: int) -> None:
        pass

    def advance(self, nbytes: int, source: str) -> None:
        pass

    def file_done(self, path: str) -> None:
        pass

    def close(self) -> None:
        pass


_T = TypeVar("_T", bound="Transport")


class Transport(ABC):  # noqa: B024 - abstract through its two kinds
    """Base class of every transport.

    Subclass :class:`RangeTransport` or :class:`DirectoryTransport`, not this class. A transport
    is only ever driven by one thread at a time, except for :meth:`abort`.

    Attributes:
        name: how the source is named in reports, progress and errors (a URL, a path).
    """

    name: str = "transport"

    #: Methods of the base classes that subclasses must not override.
    _final_methods: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        for base in cls.__mro__[1:]:
            for method in vars(base).get("_final_methods", ()):
                if method in vars(cls):
                    raise TypeError(
                        f"{cls.__qualname__} must not override {base.__qualname__}.{method}; "
                        "implement the abstract method instead"
                    )

    #: Set by the fetcher while it reads from this transport (see :meth:`alive`).
    _on_alive: Callable[[], None] | None = None

    def alive(self) -> None:
        """Say that the transport is making progress it cannot show as bytes yet.

        For example an HTTP mirror without range support, whose whole answer must be read up
        to the requested range: the fetcher's stall timeout (which otherwise counts only
        verified bytes) starts again. Call it once per piece's worth of work or so, not per
        byte. Outside a fetch it does nothing.
        """
        callback = self._on_alive
        if callback is not None:
            callback()

    def abort(self) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Interrupt a read in progress in another thread (for example by closing sockets).

        Called by the fetcher when a source stalls or sent bad data. The transport must stay
        usable afterwards. The default does nothing; the fetcher then waits for the read to
        end by itself, and stops using this source if it does not end soon.
        """

    def close(self) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Release connections and other resources. The default does nothing."""

    def __enter__(self: _T) -> _T:  # ``with LocalTransport(...) as t``: t is a LocalTransport
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


class RangeTransport(Transport):
    """A source that can read any byte range of any file (HTTP mirror, local directory).

    Implement :meth:`open_range`; callers use :meth:`read_range`.
    """

    _final_methods = ("read_range",)

    @abstractmethod
    def open_range(self, entry: FileEntry, offset: int, length: int) -> Iterator[bytes]:
        """Yield the bytes ``[offset, offset + length)`` of ``entry``, in chunks of any size.

        Implementations should not read more than ``length`` bytes from their source. They may
        raise anything; :meth:`read_range` turns it into a
        :class:`~owmanifest.errors.FetchError`. Raise
        :class:`SourceUnavailableError` when the whole source is unusable.
        """

    @final
    def read_range(self, entry: FileEntry, offset: int, length: int) -> Iterator[bytes]:
        """Yield exactly ``length`` bytes of ``entry`` from ``offset``, as non-empty chunks.

        Not verified: the caller checks the bytes against the manifest.

        Raises:
            UsageError: the range is not inside the file as the manifest declares it.
            SizeExceededError: the transport produced more than ``length`` bytes (reading
                stops at once; nothing beyond ``length`` is passed on).
            FetchError: the transport failed or produced fewer than ``length`` bytes.
        """
        if offset < 0 or length < 0 or offset + length > entry.size:
            raise UsageError(
                f"byte range {offset}+{length} is outside {entry.path!r}",
                path=entry.path,
                expected=f"within 0..{entry.size}",
                observed=f"{offset}..{offset + length}",
            )
        if length == 0:
            return
        received = 0
        chunks: Iterator[bytes] | None = None
        try:
            chunks = self.open_range(entry, offset, length)
            for chunk in chunks:
                if not isinstance(chunk, (bytes, bytearray, memoryview)):
                    raise FetchError(
                        f"{self.name}: transport yielded {type(chunk).__name__}, not bytes",
                        uri=self.name,
                        path=entry.path,
                    )
                data = chunk if isinstance(chunk, bytes) else bytes(chunk)
                if received + len(data) > length:
                    raise SizeExceededError(
                        f"{self.name} sent more bytes than requested for {entry.path!r}",
                        uri=self.name,
                        path=entry.path,
                        expected=f"{length} bytes from offset {offset}",
                        observed=f"more than {length}",
                    )
                received += len(data)
                if data:
                    yield data
        except TransportError as exc:
            if exc.uri is None:
                exc.uri = self.name
            raise
        except Error as exc:
            raise FetchError(f"{self.name}: {exc}", uri=self.name, path=entry.path) from exc
        except Exception as exc:
            raise FetchError(
                f"{self.name}: {type(exc).__name__}: {exc}".rstrip(": "),
                uri=self.name,
                path=entry.path,
            ) from exc
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                with contextlib.suppress(Exception):  # a broken plugin's cleanup
                    close()
        if received < length:
            raise FetchError(
                f"{self.name} sent fewer bytes than requested for {entry.path!r}",
                uri=self.name,
                path=entry.path,
                expected=f"{length} bytes from offset {offset}",
                observed=f"{received} bytes",
            )

    def link_file(self, entry: FileEntry, target: Path) -> bool:
        """Optionally make ``target`` (a new path in the partial area) a hard link to the file.

        The fetcher calls this before reading any range of a file; if it returns ``True`` the
        fetcher hashes ``target`` whole and keeps it only if it matches the manifest. The
        default returns ``False`` (the file is copied by ranges instead).
        """
        return False


@dataclass(frozen=True)
class PlannedFile:
    """One file a :class:`DirectoryTransport` is asked to obtain.

    Attributes:
        entry: the manifest entry (path, size, root).
        partial_path: where the transport must put the file's bytes. The file may already
            exist with some correct pieces (from an earlier run or another source).
        piece_layer: the BEP 52 piece layer, if known (already checked against the root).
    """

    entry: FileEntry
    partial_path: Path
    piece_layer: bytes | None = None


@dataclass(frozen=True)
class FetchPlan:
    """What a :class:`DirectoryTransport` is asked to obtain.

    Attributes:
        manifest: the verified manifest (id, piece length, info-hashes, trackers, ...).
        files: the files still missing, each with its path in the partial area.
        stall_timeout: give up (raise :class:`~owmanifest.errors.StallError`) after this many
            seconds without progress.
        piece_layers: piece layers by root, for every file that has one.
    """

    manifest: Manifest
    files: tuple[PlannedFile, ...]
    stall_timeout: float
    piece_layers: Mapping[bytes, bytes] = field(default_factory=dict)

    @property
    def total_size(self) -> int:
        return sum(f.entry.size for f in self.files)


class DirectoryTransport(Transport):
    """A source that obtains whole files into a directory by itself (BitTorrent).

    Implement :meth:`fetch_into`; the fetcher calls :meth:`run`.
    """

    _final_methods = ("run",)

    @abstractmethod
    def fetch_into(self, plan: FetchPlan, partial_dir: Path, progress: Progress) -> None:
        """Write the bytes of every file of ``plan`` to its ``partial_path``.

        ``partial_dir`` is the partial area; the transport may keep its own state under
        ``partial_dir / <scheme>``. Report verified bytes with ``progress.advance``, from the
        calling thread. Raise :class:`~owmanifest.errors.StallError` after
        ``plan.stall_timeout`` seconds without progress. Return when done or when no more
        progress can be made; files that are incomplete or wrong are detected by the fetcher,
        which hashes every file afterwards (and keeps the pieces that verify).
        """

    @final
    def run(self, plan: FetchPlan, partial_dir: Path, progress: Progress) -> None:
        """Call :meth:`fetch_into`, turning foreign exceptions into ``FetchError``.

        Raises:
            TransportError: the transport failed (a foreign exception becomes ``FetchError``).
        """
        try:
            self.fetch_into(plan, partial_dir, progress)
        except TransportError as exc:
            if exc.uri is None:
                exc.uri = self.name
            raise
        except Error as exc:
            raise FetchError(f"{self.name}: {exc}", uri=self.name) from exc
        except Exception as exc:
            raise FetchError(
                f"{self.name}: {type(exc).__name__}: {exc}".rstrip(": "), uri=self.name
            ) from exc
