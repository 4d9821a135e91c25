"""libtorrent plumbing shared by the BitTorrent transport and the seeder.

* :func:`import_libtorrent`: the lazy import, with a clear :class:`DependencyError` when the
  bindings are missing (so ``owmanifest.transport.bittorrent`` imports without libtorrent);
* :func:`new_session`: a session with owmanifest's settings (DHT, LSD, UPnP and NAT-PMP all
  follow one switch; several connections per IP allowed, which loopback swarms need);
* :func:`parse_endpoint`, :func:`magnet_uri`: ``host:port`` and magnet link text;
* :func:`torrent_files`: the files of a libtorrent ``file_storage``, pad files left out;
* :class:`AlertPump`: pops alerts, hands each to a callback, and waits for a given kind.

libtorrent has no type information: every libtorrent object here is ``Any``.

Not public API.
"""

from __future__ import annotations

import ipaddress
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from ..errors import DependencyError, UsageError

__all__ = [
    "AlertPump",
    "TorrentFileInfo",
    "format_endpoint",
    "import_libtorrent",
    "magnet_uri",
    "new_session",
    "parse_endpoint",
    "session_settings",
    "torrent_files",
]

_lt: Any = None


def import_libtorrent() -> Any:
    """The ``libtorrent`` module, imported on first use.

    Raises:
        DependencyError: the libtorrent Python bindings (2.0.9 or later) are not installed.
    """
    global _lt
    if _lt is None:
        try:
            import libtorrent
        except ImportError as exc:
            raise DependencyError(
                "BitTorrent needs the libtorrent Python bindings: install libtorrent "
                "(pip install 'libtorrent>=2.0.9', or Debian's python3-libtorrent)",
                expected="libtorrent >= 2.0.9",
                observed=f"not importable ({exc})",
            ) from exc
        version = tuple(int(p) for p in libtorrent.__version__.split(".")[:2])
        if version < (2, 0):
            raise DependencyError(
                "BitTorrent v2 needs libtorrent 2.0.9 or later",
                expected="libtorrent >= 2.0.9",
                observed=libtorrent.__version__,
            )
        _lt = libtorrent
    return _lt


def parse_endpoint(text: str, *, what: str = "peer") -> tuple[str, int]:
    """``host:port`` (``[v6]:port`` for IPv6) as ``(host, port)``.

    Raises:
        UsageError: not of that form, or the port is not in 0..65535.
    """
    host, sep, port_text = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            host = ""
    elif ":" in host:
        host = ""  # an IPv6 address must be bracketed
    if not sep or not host or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise UsageError(
            f"not a {what} address: {text!r}",
            expected="HOST:PORT (IPv6: [ADDRESS]:PORT)",
            observed=text,
        )
    return host, int(port_text)


def format_endpoint(host: str, port: int) -> str:
    """The inverse of :func:`parse_endpoint`."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def session_settings(
    listen: str, *, dht: bool, extra: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """owmanifest's libtorrent settings.

    Args:
        listen: ``host:port`` to listen on (port 0: any free port).
        dht: use the DHT, local service discovery, UPnP and NAT-PMP (all or nothing).
        extra: further libtorrent settings, applied last (tests use rate limits).

    Raises:
        UsageError: ``listen`` is not ``host:port``.
    """
    lt = import_libtorrent()
    parse_endpoint(listen, what="listen")
    from .. import __version__

    cat = lt.alert_category
    settings: dict[str, Any] = {
        "listen_interfaces": listen,
        "enable_dht": dht,
        "enable_lsd": dht,
        "enable_upnp": dht,
        "enable_natpmp": dht,
        # several peers on one host (loopback swarms, peers behind one NAT)
        "allow_multiple_connections_per_ip": True,
        "alert_mask": cat.status | cat.error | cat.peer | cat.storage | cat.tracker,
        "alert_queue_size": 10_000,
        "user_agent": f"owmanifest/{__version__} libtorrent/{lt.__version__}",
        "hashing_threads": max(1, os.cpu_count() or 1),
        "aio_threads": max(4, 2 * (os.cpu_count() or 1)),
        "stop_tracker_timeout": 2,
        # peers are dialled (and bandwidth handed out) on libtorrent's tick: every 500 ms by
        # default, which alone costs half a second before the first byte
        "tick_interval": 100,
        # a peer that went away (a seeder restarted) may be dialled again after 2 s; the
        # default, 60 s times its failure count, outlasts any stall timeout, so an explicit
        # peer of a closed network that restarts was never contacted again
        "min_reconnect_time": 2,
        # TCP first: it is what loopback and data-centre links handle best; incoming uTP
        # stays allowed for peers that only speak it
        "enable_outgoing_utp": False,
        # larger send buffers: the default (500 kB) caps one connection well below what
        # a fast link (or loopback) can carry
        "send_buffer_watermark": 8 * 1024 * 1024,
        "send_buffer_low_watermark": 1024 * 1024,
        "send_buffer_watermark_factor": 150,
        "max_queued_disk_bytes": 64 * 1024 * 1024,
        "max_out_request_queue": 1500,
        "max_allowed_in_request_queue": 2000,
    }
    if extra:
        settings.update(extra)
    return settings


def new_session(listen: str, *, dht: bool, extra: Mapping[str, Any] | None = None) -> Any:
    """A libtorrent session with :func:`session_settings`.

    Raises:
        UsageError: bad ``listen`` or an unknown setting in ``extra``.
        DependencyError: libtorrent is not installed.
    """
    lt = import_libtorrent()
    settings = session_settings(listen, dht=dht, extra=extra)
    known = lt.default_settings()
    unknown = sorted(k for k in settings if k not in known)
    if unknown:
        raise UsageError(
            "unknown libtorrent setting(s): " + ", ".join(unknown),
            expected="names from libtorrent.default_settings()",
            observed=unknown,
        )
    return lt.session(settings)


def magnet_uri(
    *,
    info_hash_v1: str | None,
    info_hash_v2: str | None,
    name: str | None = None,
    trackers: Iterable[str] = (),
    peers: Iterable[str] = (),
    web_seeds: Iterable[str] = (),
) -> str:
    """A magnet link: ``xt=urn:btih:<v1>``, ``xt=urn:btmh:1220<v2>``, ``dn``, ``tr``, ``x.pe``,
    ``ws``.

    Raises:
        UsageError: neither info-hash is given.
    """
    params: list[str] = []
    if info_hash_v1:
        params.append(f"xt=urn:btih:{info_hash_v1}")
    if info_hash_v2:
        params.append(f"xt=urn:btmh:1220{info_hash_v2}")
    if not params:
        raise UsageError("a magnet link needs an info-hash")
    if name:
        params.append("dn=" + quote(name, safe=""))
    params.extend("tr=" + quote(t, safe="") for t in dict.fromkeys(trackers))
    params.extend("x.pe=" + quote(p, safe=":[]") for p in dict.fromkeys(peers))
    params.extend("ws=" + quote(w, safe="") for w in dict.fromkeys(web_seeds))
    return "magnet:?" + "&".join(params)


@dataclass(frozen=True)
class TorrentFileInfo:
    """One file of a libtorrent ``file_storage`` (pad files are left out).

    Attributes:
        index: libtorrent's file index (pad files count).
        path: the path below the torrent's top directory, ``/``-separated.
        size: size in bytes.
        root: BEP 52 pieces root; ``None`` for an empty file (or a v1-only torrent).
        first_piece, end_piece: the pieces ``[first_piece, end_piece)`` holding its bytes.
    """

    index: int
    path: str
    size: int
    root: bytes | None
    first_piece: int
    end_piece: int


def torrent_files(ti: Any) -> list[TorrentFileInfo]:
    """The files of a libtorrent ``torrent_info``, in torrent order, without pad files.

    Paths are relative to the torrent's top directory (the torrent name), as in a manifest.
    """
    lt = import_libtorrent()
    fs = ti.layout()
    name = fs.name()
    piece_length = fs.piece_length()
    out: list[TorrentFileInfo] = []
    for i in range(fs.num_files()):
        if fs.file_flags(i) & lt.file_flags_t.flag_pad_file:
            continue
        path = fs.file_path(i)
        if os.sep != "/":  # pragma: no cover - Windows
            path = path.replace(os.sep, "/")
        if path.startswith(name + "/"):
            path = path[len(name) + 1 :]
        size = fs.file_size(i)
        root = fs.root(i).to_bytes() if fs.v2() else None
        if root is not None and (size == 0 or root == bytes(32)):
            root = None
        offset = fs.file_offset(i)
        first = offset // piece_length
        end = first if size == 0 else (offset + size - 1) // piece_length + 1
        out.append(TorrentFileInfo(i, path, size, root, first, end))
    return out


class AlertPump:
    """Pops a session's alerts and passes every one to ``handler``.

    Args:
        session: a libtorrent session.
        handler: called with each alert, in order; may raise to stop the caller.
    """

    def __init__(self, session: Any, handler: Callable[[Any], None] | None = None) -> None:
        self.session = session
        self.handler = handler

    def pump(self, wait: float = 0.0) -> list[Any]:
        """Wait up to ``wait`` seconds for an alert, then handle and return all pending ones."""
        if wait > 0:
            self.session.wait_for_alert(max(1, int(wait * 1000)))
        alerts: list[Any] = self.session.pop_alerts()
        if self.handler is not None:
            for alert in alerts:
                self.handler(alert)
        return alerts

    def wait_for(
        self,
        kinds: type | Sequence[type],
        timeout: float,
        *,
        handle: Any = None,
        tick: float = 0.25,
        on_tick: Callable[[], None] | None = None,
    ) -> Any:
        """Pump until an alert of one of ``kinds`` (for ``handle``, if given) arrives.

        Returns the alert, or ``None`` after ``timeout`` seconds. ``on_tick`` is called between
        waits (it may raise to stop waiting).
        """
        wanted = tuple(kinds) if isinstance(kinds, Sequence) else (kinds,)
        deadline = time.monotonic() + timeout
        while True:
            for alert in self.pump(min(tick, max(0.0, deadline - time.monotonic()))):
                if isinstance(alert, wanted) and (
                    handle is None or getattr(alert, "handle", None) == handle
                ):
                    return alert
            if on_tick is not None:
                on_tick()
            if time.monotonic() >= deadline:
                return None
