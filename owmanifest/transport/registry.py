"""Transports by URI scheme: built-ins, ``register()`` calls and entry-point plugins.

A plugin is a distribution that declares, in its ``pyproject.toml``::

    [project.entry-points."owmanifest.transports"]
    gopher = "my_package.module:GopherTransport"

The name is the URI scheme; the object is a factory (usually the class) called as
``factory(uri, **options)`` that returns a :class:`~owmanifest.transport.base.Transport`.
Entry points are read on first use and loaded only when their scheme is asked for, so a broken
plugin only breaks URIs of its own scheme.

Precedence: :func:`register` calls, then the built-ins (``http``, ``https``, ``file``), then
entry points. An entry point cannot replace a built-in; call ``register(..., replace=True)``
from code to do that on purpose.
"""

from __future__ import annotations

import importlib
import logging
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from importlib import metadata
from typing import Any, TypeAlias

from ..errors import DependencyError, Error, UsageError
from .base import Transport

__all__ = [
    "ENTRY_POINT_GROUP",
    "TransportFactory",
    "known_schemes",
    "local_first",
    "open_sources",
    "open_transport",
    "refresh",
    "register",
    "scheme_of",
    "transport_factory",
    "unregister",
]

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "owmanifest.transports"

TransportFactory: TypeAlias = Callable[..., Transport]
"""Called as ``factory(uri, **options)``; returns a transport for that URI."""

#: Built-in transports, imported only when used. ``module:attribute``. (BitTorrent adds
#: ``"magnet"`` and ``"bittorrent"`` here when its transport exists.)
_BUILTINS: dict[str, str] = {
    "http": "owmanifest.transport.http:HttpTransport",
    "https": "owmanifest.transport.http:HttpTransport",
    "file": "owmanifest.transport.local:LocalTransport",
    "magnet": "owmanifest.transport.bittorrent:BitTorrentTransport",
    "bittorrent": "owmanifest.transport.bittorrent:BitTorrentTransport",
}

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")

_lock = threading.RLock()
_registered: dict[str, TransportFactory] = {}
_loaded: dict[str, TransportFactory] = {}
_entry_points: dict[str, metadata.EntryPoint] | None = None


def _import_object(spec: str) -> Any:
    module, _, attr = spec.partition(":")
    obj: Any = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def _discover() -> dict[str, metadata.EntryPoint]:
    global _entry_points
    with _lock:
        if _entry_points is None:
            found: dict[str, metadata.EntryPoint] = {}
            for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
                scheme = ep.name.lower()
                other = found.get(scheme)
                if other is not None and other.value != ep.value:
                    log.warning(
                        "two transport plugins claim the %r scheme: %s and %s; using the first",
                        scheme,
                        other.value,
                        ep.value,
                    )
                    continue
                found[scheme] = ep
            _entry_points = found
        return _entry_points


def refresh() -> None:
    """Forget discovered entry points (for example after installing a plugin at run time)."""
    global _entry_points
    with _lock:
        _entry_points = None
        for scheme in [s for s in _loaded if s not in _BUILTINS]:
            del _loaded[scheme]


def register(scheme: str, factory: TransportFactory, *, replace: bool = False) -> None:
    """Make ``factory`` the transport for URIs of ``scheme``.

    Raises:
        UsageError: ``scheme`` is not a valid URI scheme, or it is already registered from
            code and ``replace`` is false.
    """
    key = scheme.lower()
    if not _SCHEME.match(key + ":"):
        raise UsageError(f"not a URI scheme: {scheme!r}")
    with _lock:
        if key in _registered and not replace:
            raise UsageError(f"a transport is already registered for {key!r}")
        _registered[key] = factory


def unregister(scheme: str) -> None:
    """Undo :func:`register` for ``scheme`` (built-ins and entry points stay)."""
    with _lock:
        _registered.pop(scheme.lower(), None)


def known_schemes() -> tuple[str, ...]:
    """Every scheme a transport is available for (without loading any plugin), sorted."""
    return tuple(sorted(set(_registered) | set(_BUILTINS) | set(_discover())))


def scheme_of(uri: str) -> str:
    """The scheme of ``uri``, lower-cased; ``"file"`` for a plain path (including ``C:\\x``)."""
    m = _SCHEME.match(uri)
    if m is None or len(m.group(1)) == 1:  # no scheme, or a Windows drive letter
        return "file"
    return m.group(1).lower()


def transport_factory(scheme: str) -> TransportFactory:
    """The factory for ``scheme``, loading its plugin if needed.

    Raises:
        UsageError: no transport is known for ``scheme``; the message lists the known ones.
        DependencyError: the plugin for ``scheme`` cannot be imported or is not callable; the
            message names the entry point and its distribution.
    """
    key = scheme.lower()
    with _lock:
        if key in _registered:
            return _registered[key]
        if key in _loaded:
            return _loaded[key]
        if key in _BUILTINS:
            try:
                factory: Any = _import_object(_BUILTINS[key])
            except ImportError as exc:  # e.g. an optional dependency of a built-in transport
                raise DependencyError(
                    f"the built-in transport for {key!r} ({_BUILTINS[key]}) cannot be "
                    f"imported: {exc}"
                ) from exc
            _loaded[key] = factory
            return factory  # type: ignore[no-any-return]
        ep = _discover().get(key)
        if ep is None:
            raise UsageError(
                f"no transport for URI scheme {key!r}",
                expected="one of " + ", ".join(known_schemes()),
                observed=key,
            )
        dist = getattr(getattr(ep, "dist", None), "name", None) or "unknown distribution"
        where = f"entry point {ep.name!r} = {ep.value!r} (group {ENTRY_POINT_GROUP!r}, {dist})"
        try:
            loaded = ep.load()
        except Exception as exc:
            raise DependencyError(
                f"the transport plugin for {key!r} failed to load: {where}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        if not callable(loaded):
            raise DependencyError(
                f"the transport plugin for {key!r} is not callable: {where}",
                expected="a Transport class or factory",
                observed=type(loaded).__name__,
            )
        _loaded[key] = loaded
        return loaded  # type: ignore[no-any-return]


def open_transport(uri: str, **options: Any) -> Transport:
    """A transport for ``uri`` (``https://mirror/dataset/``, ``file:///media/usb``, a path).

    Args:
        options: passed to the factory as keyword arguments.

    Raises:
        UsageError: unknown scheme, or the factory rejected the URI or options (any
            exception it raises that is not an owmanifest error becomes a ``UsageError``).
        DependencyError: the plugin for the scheme cannot be loaded.
    """
    factory = transport_factory(scheme_of(uri))
    try:
        transport = factory(uri, **options)
    except Error:
        raise
    except Exception as exc:  # a bad option (TypeError) or a URI the plugin rejects
        raise UsageError(
            f"cannot open a transport for {uri!r}: {type(exc).__name__}: {exc}", uri=uri
        ) from exc
    if not isinstance(transport, Transport):
        raise DependencyError(
            f"the transport factory for {scheme_of(uri)!r} returned a "
            f"{type(transport).__name__}, not a Transport",
            uri=uri,
        )
    if transport.name == Transport.name:  # a plugin that names itself nothing: its URI, so
        transport.name = uri  # that reports and errors say which source (found by a review)
    return transport


def open_sources(
    uris: Iterable[str],
    *,
    schemes: Iterable[str] | None = None,
    link: bool = False,
    token_env: str | None = None,
    timeout: float | None = None,
) -> list[Transport]:
    """Transports for ``uris``, in order, duplicates dropped; what the command line needs.

    Args:
        uris: mirror URLs, ``file:`` URIs or paths, any registered scheme.
        schemes: keep only URIs of these schemes (``http`` also means ``https``); default all.
        link: hard-link verified files from local directories (``file`` sources).
        token_env: environment variable with the bearer token for ``http(s)`` sources.
        timeout: socket timeout for ``http(s)`` sources.

    Raises:
        UsageError: an unknown scheme, or a URI its transport refuses.
        DependencyError: the plugin for a scheme cannot be loaded.
    """
    wanted = None if schemes is None else {s.lower() for s in schemes}
    if wanted is not None and "http" in wanted:
        wanted.add("https")
    out: list[Transport] = []
    seen: set[str] = set()
    for uri in uris:
        scheme = scheme_of(uri)
        if uri in seen or (wanted is not None and scheme not in wanted):
            continue
        seen.add(uri)
        options: dict[str, Any] = {}
        if scheme in ("http", "https"):
            if token_env is not None:
                options["token_env"] = token_env
            if timeout is not None:
                options["timeout"] = timeout
        elif scheme == "file" and link:
            options["link"] = True
        out.append(open_transport(uri, **options))
    return out


def local_first(sources: Sequence[Transport]) -> list[Transport]:
    """``sources`` with the local directories first (a USB disk, a mounted share), in their
    order, then the others in theirs: local ones cost nothing to try, where BitTorrent may
    first wait for peers until its stall timeout."""
    from .local import LocalTransport

    local = [s for s in sources if isinstance(s, LocalTransport)]
    return local + [s for s in sources if not isinstance(s, LocalTransport)]
