"""Transports: obtaining the bytes of a verified manifest from sources that are not trusted.

:func:`fetch` drives one or more transports (HTTP mirrors, a local directory, BitTorrent, or a
plugin registered in the ``owmanifest.transports`` entry-point group) and verifies every piece
against the signed manifest before it is written; files appear at their final path only once
they verified whole. See ``docs/adr/0004-transport-interface.md``.

``fetch`` is both a submodule and the function it defines; the function is bound here on import,
so ``from owmanifest.transport import fetch`` always gives the function. The HTTP and local
transports are imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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
from .fetch import FetchReport, IncompleteFetchError, SourceProblem, fetch
from .registry import (
    ENTRY_POINT_GROUP,
    TransportFactory,
    known_schemes,
    local_first,
    open_sources,
    open_transport,
    register,
    scheme_of,
    transport_factory,
)

if TYPE_CHECKING:
    from .http import HttpTransport
    from .local import LocalTransport

__all__ = [
    "ENTRY_POINT_GROUP",
    "DirectoryTransport",
    "FetchPlan",
    "FetchReport",
    "HttpTransport",
    "IncompleteFetchError",
    "LocalTransport",
    "NullProgress",
    "PlannedFile",
    "Progress",
    "RangeTransport",
    "SourceProblem",
    "SourceUnavailableError",
    "Transport",
    "TransportFactory",
    "fetch",
    "known_schemes",
    "local_first",
    "open_sources",
    "open_transport",
    "register",
    "scheme_of",
    "transport_factory",
]

_LAZY = {
    "HttpTransport": "http",
    "LocalTransport": "local",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
