"""HTTP(S) mirrors: byte ranges with ``Range`` requests, over ``http.client``.

A mirror is a base URL laid out like the dataset directory, as BEP 19 web seeds are: the file
``a/b c.dat`` is at ``base_url + "a/b%20c.dat"``. Nothing a mirror says is trusted: the fetcher
verifies every piece. This module only makes sure a mirror cannot make us read more bytes than
asked for, cannot send us to another host, and cannot pass off a different byte range (status,
``Content-Range`` and ``Content-Length`` are all checked).
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import ipaddress
import logging
import os
import re
import socket
import ssl
import threading
from collections.abc import Iterator, Mapping
from urllib.parse import quote, urljoin, urlsplit

from .. import __version__
from ..errors import FetchError, SizeExceededError, UsageError
from ..manifest.model import FileEntry
from .base import RangeTransport, SourceUnavailableError

__all__ = ["DEFAULT_TOKEN_ENV", "PASSWORD_ENV", "USER_ENV", "HttpTransport"]

log = logging.getLogger(__name__)

DEFAULT_TOKEN_ENV = "OWMANIFEST_HTTP_TOKEN"
USER_ENV = "OWMANIFEST_HTTP_USER"
PASSWORD_ENV = "OWMANIFEST_HTTP_PASSWORD"

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_CONTENT_RANGE = re.compile(r"^\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$", re.IGNORECASE)
_Key = tuple[str, str, int]


def _is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _split(url: str) -> tuple[_Key, str]:
    """``((scheme, host, port), path_and_query)`` of an absolute http(s) URL."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = parts.hostname or ""
    port = parts.port or (443 if scheme == "https" else 80)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return (scheme, host, port), target


class _Held:
    """The rest of a whole-file answer: ``resp`` on ``conn`` is at byte ``position`` of
    ``path``."""

    __slots__ = ("conn", "path", "position", "resp", "url")

    def __init__(
        self,
        path: str,
        position: int,
        conn: http.client.HTTPConnection,
        resp: http.client.HTTPResponse,
        url: str,
    ) -> None:
        self.path, self.position, self.conn, self.resp, self.url = path, position, conn, resp, url

    def close(self, transport: HttpTransport) -> None:
        self.resp.close()
        transport._release(self.conn, reusable=False)


_DEFAULT_PORTS = {"http": 80, "https": 443}

#: How many skipped bytes of a whole-file answer make one Transport.alive().
_ALIVE_BYTES = 1 << 20


class HttpTransport(RangeTransport):
    """Byte ranges from an HTTP or HTTPS mirror.

    Args:
        base_url: the mirror's URL of the dataset directory (``https://host/datasets/x/``).
        token_env: name of the environment variable holding a bearer token (default
            ``OWMANIFEST_HTTP_TOKEN``). If it is unset, basic auth is used when
            ``OWMANIFEST_HTTP_USER`` and ``OWMANIFEST_HTTP_PASSWORD`` are set. Credentials are
            sent only over HTTPS or to a loopback address, and never to another host.
        auth: set to ``False`` to never send credentials.
        timeout: socket timeout in seconds (connecting, and each read).
        max_redirects: how many same-host redirects to follow.
        ssl_context: TLS settings (default: :func:`ssl.create_default_context`, which verifies
            certificates and host names).
        chunk_size: the largest chunk read from the socket at once.
        headers: extra request headers.

    Raises:
        UsageError: ``base_url`` is not an absolute http(s) URL, or contains credentials, a
            query or a fragment.
    """

    def __init__(
        self,
        base_url: str,
        *,
        token_env: str | None = None,
        auth: bool = True,
        timeout: float = 30.0,
        max_redirects: int = 5,
        ssl_context: ssl.SSLContext | None = None,
        chunk_size: int = 1024 * 1024,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        try:
            parts = urlsplit(base_url)
        except ValueError as exc:  # e.g. an unclosed [ of an IPv6 address
            raise UsageError(f"not a valid URL: {exc}", uri=base_url) from exc
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise UsageError(
                "a mirror must be an absolute http:// or https:// URL",
                uri=base_url,
                expected="http(s)://host/path/",
                observed=base_url,
            )
        if parts.username is not None or parts.password is not None:
            raise UsageError(
                f"do not put credentials in a mirror URL; set {DEFAULT_TOKEN_ENV}, or "
                f"{USER_ENV} and {PASSWORD_ENV}",
                uri=f"{parts.scheme}://{parts.hostname}/...",
            )
        if parts.query or parts.fragment:
            raise UsageError(
                "a mirror URL may not have a query or fragment", uri=base_url, observed=base_url
            )
        try:
            parts.port  # noqa: B018 - validates the port
        except ValueError as exc:
            raise UsageError(f"bad port in mirror URL: {exc}", uri=base_url) from exc
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.name = self.base_url
        self.timeout = timeout
        self.max_redirects = max_redirects
        self.ssl_context = ssl_context
        self.chunk_size = chunk_size
        self.extra_headers = dict(headers or {})
        self._authorization = self._credentials(token_env) if auth else None
        self._warned_plaintext = False
        self._lock = threading.Lock()
        self._idle: dict[_Key, http.client.HTTPConnection] = {}
        self._busy: set[http.client.HTTPConnection] = set()
        #: The rest of a whole-file answer (200) to a partial request, kept for the next range
        #: of the same file: a mirror without range support is then read once, front to back.
        self._held: _Held | None = None

    @staticmethod
    def _credentials(token_env: str | None) -> str | None:
        token = os.environ.get(token_env or DEFAULT_TOKEN_ENV)
        if token:
            return f"Bearer {token.strip()}"
        user, password = os.environ.get(USER_ENV), os.environ.get(PASSWORD_ENV)
        if user and password is not None:
            pair = f"{user}:{password}".encode()
            return "Basic " + base64.b64encode(pair).decode("ascii")
        return None

    def url_for(self, entry: FileEntry) -> str:
        """The URL of ``entry`` on this mirror (BEP 19 layout)."""
        return self.base_url + quote(entry.path, safe="/")

    # --- connections ---------------------------------------------------------------------------

    def _new_connection(self, key: _Key) -> http.client.HTTPConnection:
        scheme, host, port = key
        if scheme == "https":
            context = self.ssl_context or ssl.create_default_context()
            return http.client.HTTPSConnection(host, port, timeout=self.timeout, context=context)
        return http.client.HTTPConnection(host, port, timeout=self.timeout)

    def _checkout(self, key: _Key) -> tuple[http.client.HTTPConnection, bool]:
        """A connection for ``key``: an idle one (``reused=True``) or a new, connected one.

        Raises:
            SourceUnavailableError: cannot connect (refused, unknown host, TLS failure, ...).
        """
        with self._lock:
            conn = self._idle.pop(key, None)
            if conn is not None and conn.sock is not None:
                self._busy.add(conn)
                return conn, True
        conn = self._new_connection(key)
        with self._lock:
            self._busy.add(conn)
        try:
            conn.connect()
        except (OSError, ssl.SSLError) as exc:
            self._release(conn, reusable=False)
            what = "TLS handshake failed" if isinstance(exc, ssl.SSLError) else "cannot connect"
            raise SourceUnavailableError(
                f"{self.name}: {what}: {exc}", uri=f"{key[0]}://{key[1]}:{key[2]}/"
            ) from exc
        return conn, False

    def _release(self, conn: http.client.HTTPConnection, *, reusable: bool) -> None:
        """Give a connection back: keep it for the next request, or close it."""
        to_close: list[http.client.HTTPConnection] = []
        with self._lock:
            self._busy.discard(conn)
            if reusable and conn.sock is not None:
                scheme = "https" if isinstance(conn, http.client.HTTPSConnection) else "http"
                key = (scheme, conn.host, conn.port)
                old = self._idle.get(key)
                if old is not None and old is not conn:
                    to_close.append(old)
                self._idle[key] = conn
            else:
                to_close.append(conn)
        for c in to_close:
            c.close()

    def abort(self) -> None:
        """Shut down every connection in use, so a blocked read in another thread returns."""
        with self._lock:
            busy = list(self._busy)
        for conn in busy:
            sock = conn.sock
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        """Close every connection (the transport can still be used afterwards)."""
        self._drop_held()
        self.abort()
        with self._lock:
            conns = list(self._idle.values()) + list(self._busy)
            self._idle.clear()
            self._busy.clear()
        for conn in conns:
            conn.close()

    # --- requests ------------------------------------------------------------------------------

    def _headers(self, key: _Key, offset: int, length: int) -> dict[str, str]:
        headers = {
            "User-Agent": f"owmanifest/{__version__}",
            "Accept-Encoding": "identity",
            "Range": f"bytes={offset}-{offset + length - 1}",
        }
        headers.update(self.extra_headers)
        if self._authorization is not None:
            if key[0] == "https" or _is_loopback(key[1]):
                headers["Authorization"] = self._authorization
            elif not self._warned_plaintext:
                self._warned_plaintext = True
                log.warning("not sending credentials to %s over plain HTTP", self.name)
        return headers

    def _send(
        self, url: str, offset: int, length: int
    ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        key, target = _split(url)
        for attempt in (0, 1):
            conn, reused = self._checkout(key)
            try:
                conn.request("GET", target, headers=self._headers(key, offset, length))
                return conn, conn.getresponse()
            except (http.client.RemoteDisconnected, ConnectionError) as exc:
                self._release(conn, reusable=False)
                # A kept-alive connection the server closed meanwhile: retry once, afresh.
                if not reused or attempt:
                    raise FetchError(f"{self.name}: connection lost: {exc}", uri=url) from exc
            except BaseException:
                self._release(conn, reusable=False)
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _check_redirect(self, url: str, location: str | None) -> str:
        if not location:
            raise FetchError(f"{self.name}: redirect without a Location", uri=url)
        new = urljoin(url, location.strip())
        old_parts, new_parts = urlsplit(url), urlsplit(new)
        old_scheme, new_scheme = old_parts.scheme.lower(), new_parts.scheme.lower()
        same_host = (old_parts.hostname or "").lower() == (new_parts.hostname or "").lower()
        try:
            ports = (
                old_parts.port or _DEFAULT_PORTS.get(old_scheme),
                new_parts.port or _DEFAULT_PORTS.get(new_scheme),
            )
        except ValueError:  # a port that is not a number
            ports = (None, -1)
        # The same origin (scheme, host, port): another port is another server, which would
        # get the credentials; only http -> https on its default port is an upgrade.
        same_origin = same_host and (
            (old_scheme, ports[0]) == (new_scheme, ports[1])
            or (old_scheme, new_scheme, ports[1]) == ("http", "https", 443)
        )
        if new_scheme not in ("http", "https") or not same_origin:
            raise FetchError(
                f"{self.name}: refusing a redirect to another host, port or scheme",
                uri=url,
                expected=f"{old_parts.scheme}://{old_parts.netloc}/...",
                observed=new,
            )
        return new

    def open_range(self, entry: FileEntry, offset: int, length: int) -> Iterator[bytes]:
        """Yield ``length`` bytes of ``entry`` from ``offset``, checking status and headers.

        A mirror that ignores ``Range`` (``python -m http.server``) answers with the whole
        file: the bytes before ``offset`` are read and dropped, and the rest of the body is
        kept for the next range of the file, so that a file fetched range after range is
        still read once (a resumed one from its start).

        Raises:
            SourceUnavailableError: cannot connect to the mirror.
            SizeExceededError: the mirror announces more bytes than requested.
            FetchError: HTTP error status, a redirect to another host or too many redirects,
                a wrong ``Content-Range``/``Content-Length``, an encoded or multipart body,
                or the connection failed mid-body.
        """
        held = self._take_held(entry, offset)
        if held is not None:
            conn, resp, url = held.conn, held.resp, held.url
        else:
            conn, resp, url = self._open(entry, offset, length)
        reusable = kept = False
        try:
            # where the body ends: the range, or the whole file (200, or what was held of one)
            body_end = entry.size
            if held is None:
                if self._check_response(resp, url, entry, offset, length) == 200:
                    self._discard(resp, url, entry, offset)
                else:
                    body_end = offset + length
            yield from self._body(resp, url, entry, length)
            if offset + length < body_end:  # the rest of a whole file: for the next range
                self._hold(_Held(entry.path, offset + length, conn, resp, url))
                kept = True
                return
            if not resp.chunked:
                if resp.length == 0:
                    resp.read()  # marks the response complete, so the connection can be reused
            # Chunked: read the terminating chunk; anything else means the body was too long.
            elif not resp.isclosed() and resp.read(1):
                raise SizeExceededError(
                    f"{self.name}: the body of {entry.path!r} is longer than requested",
                    uri=url,
                    expected=f"{length} bytes",
                    observed=f"more than {length}",
                )
            reusable = resp.isclosed() and not resp.will_close
        finally:
            if not kept:
                if not reusable:
                    resp.close()
                self._release(conn, reusable=reusable)

    def _open(
        self, entry: FileEntry, offset: int, length: int
    ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse, str]:
        """Send the request for a range of ``entry``, following same-host redirects."""
        url = self.url_for(entry)
        for _ in range(self.max_redirects + 1):
            conn, resp = self._send(url, offset, length)
            if resp.status not in _REDIRECTS:
                return conn, resp, url
            location = resp.getheader("Location")
            self._release(conn, reusable=False)
            url = self._check_redirect(url, location)
        raise FetchError(
            f"{self.name}: more than {self.max_redirects} redirects for {entry.path!r}",
            uri=url,
        )

    def _body(
        self, resp: http.client.HTTPResponse, url: str, entry: FileEntry, count: int
    ) -> Iterator[bytes]:
        """The next ``count`` bytes of the body, in chunks of at most :attr:`chunk_size`.

        Raises:
            FetchError: the body ended before them.
        """
        remaining = count
        while remaining:
            data = resp.read1(min(self.chunk_size, remaining))
            if not data:
                raise FetchError(
                    f"{self.name}: the body of {entry.path!r} ended early",
                    uri=url,
                    expected=f"{count} bytes",
                    observed=f"{count - remaining} bytes",
                )
            remaining -= len(data)
            yield data

    def _discard(
        self, resp: http.client.HTTPResponse, url: str, entry: FileEntry, count: int
    ) -> None:
        """Read and drop the next ``count`` bytes of a whole-file answer, saying that the
        transport is alive every MiB (on resume, the verified start of a large file can take
        longer than the stall timeout to skip; found by a review)."""
        since = 0
        for chunk in self._body(resp, url, entry, count):
            since += len(chunk)
            if since >= _ALIVE_BYTES:
                self.alive()
                since = 0

    def _hold(self, held: _Held) -> None:
        with self._lock:
            old, self._held = self._held, held
        if old is not None:
            old.close(self)

    def _take_held(self, entry: FileEntry, offset: int) -> _Held | None:
        """The held rest of ``path``'s body, moved on to ``offset`` if that lies ahead (the
        bytes between are read and dropped: cheaper than asking for the whole file again,
        which a range with gaps before it did once per gap); any other is dropped."""
        with self._lock:
            held, self._held = self._held, None
        if held is None:
            return None
        if held.path != entry.path or offset < held.position:
            held.close(self)
            return None
        if offset > held.position:
            try:
                self._discard(held.resp, held.url, entry, offset - held.position)
            except BaseException:
                held.close(self)
                raise
        return held

    def _drop_held(self) -> None:
        with self._lock:
            held, self._held = self._held, None
        if held is not None:
            held.close(self)

    def _check_response(
        self,
        resp: http.client.HTTPResponse,
        url: str,
        entry: FileEntry,
        offset: int,
        length: int,
    ) -> int:
        """Check an answer's status and headers; returns the status: 206 (the range) or 200
        (the whole file, from a mirror that ignores ``Range``)."""
        status = resp.status
        wanted = f"bytes {offset}-{offset + length - 1}/{entry.size}"
        if status == 206:
            content_range = resp.getheader("Content-Range")
            m = _CONTENT_RANGE.match(content_range or "")
            if m is None:
                raise FetchError(
                    f"{self.name}: 206 answer without a usable Content-Range for {entry.path!r}",
                    uri=url,
                    expected=wanted,
                    observed=content_range,
                )
            first, last, total = int(m.group(1)), int(m.group(2)), m.group(3)
            if total != "*" and int(total) != entry.size:
                raise FetchError(
                    f"{self.name} has a different version of {entry.path!r} (its size differs)",
                    uri=url,
                    expected=f"{entry.size} bytes",
                    observed=f"{total} bytes",
                )
            if (first, last) != (offset, offset + length - 1):
                raise FetchError(
                    f"{self.name} answered with another byte range of {entry.path!r}",
                    uri=url,
                    expected=wanted,
                    observed=content_range,
                )
        elif status == 200:
            length = entry.size  # the whole file: its bytes before and after the range too
        elif status == 416:
            raise FetchError(
                f"{self.name} cannot serve that range of {entry.path!r} (416): its copy is "
                "shorter than the manifest says",
                uri=url,
                expected=wanted,
                observed=resp.getheader("Content-Range"),
            )
        elif status in (404, 410):
            raise FetchError(
                f"{self.name} does not have {entry.path!r} (HTTP {status} {resp.reason})",
                uri=url,
            )
        elif status in _REDIRECTS:  # pragma: no cover - handled by the caller
            raise FetchError(f"{self.name}: too many redirects", uri=url)
        else:
            raise FetchError(
                f"{self.name}: HTTP {status} {resp.reason} for {entry.path!r}",
                uri=url,
                expected="206 Partial Content",
                observed=f"{status} {resp.reason}",
            )
        encoding = (resp.getheader("Content-Encoding") or "identity").strip().lower()
        if encoding not in ("", "identity"):
            raise FetchError(
                f"{self.name} sent an encoded body for {entry.path!r}",
                uri=url,
                expected="identity",
                observed=encoding,
            )
        content_type = (resp.getheader("Content-Type") or "").lower()
        if content_type.startswith("multipart/"):
            raise FetchError(
                f"{self.name} sent a multipart body for {entry.path!r}",
                uri=url,
                expected="a single byte range",
                observed=content_type,
            )
        declared = resp.getheader("Content-Length")
        if declared is not None:
            try:
                n = int(declared.strip())
            except ValueError:
                raise FetchError(
                    f"{self.name}: bad Content-Length", uri=url, observed=declared
                ) from None
            if n > length:
                raise SizeExceededError(
                    f"{self.name} announces more bytes than requested for {entry.path!r}",
                    uri=url,
                    expected=f"{length} bytes",
                    observed=f"{n} bytes",
                )
            if n < length:
                raise FetchError(
                    f"{self.name} announces fewer bytes than requested for {entry.path!r}",
                    uri=url,
                    expected=f"{length} bytes",
                    observed=f"{n} bytes",
                )
        return status
