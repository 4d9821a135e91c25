"""Helpers for the transport tests: datasets, verified manifests, a Range-capable test server.

Test manifests are built directly (``Manifest``/``FileEntry``) and wrapped in a
``VerifiedManifest`` by hand: the verifier proper is tested elsewhere.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import random
import socket
import socketserver
import ssl
import struct
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

from owmanifest.manifest.digest import BEP52, Digest
from owmanifest.manifest.hashing import hash_file
from owmanifest.manifest.model import FileEntry, Manifest
from owmanifest.verify.result import VerifiedManifest

PIECE = 16384
SIGNER = "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK"


def content(name: str, size: int) -> bytes:
    """Deterministic pseudo-random bytes for ``name``."""
    rng = random.Random(hashlib.sha256(name.encode()).digest())
    return rng.randbytes(size)


@dataclass
class Dataset:
    """Files on disk plus a verified manifest and piece layers describing them."""

    root: Path
    verified: VerifiedManifest
    layers: dict[bytes, bytes]
    data: dict[str, bytes] = field(default_factory=dict)

    @property
    def manifest(self) -> Manifest:
        return self.verified.manifest

    def entry(self, path: str) -> FileEntry:
        return self.manifest.file(path)

    def check(self, dest: Path, paths: list[str] | None = None) -> None:
        """Assert that ``dest`` holds exactly the right bytes for ``paths`` (default: all)."""
        for path in paths if paths is not None else list(self.data):
            got = (dest / path).read_bytes()
            assert got == self.data[path], f"{path}: wrong content"
            assert not (dest / path).is_symlink()


def make_dataset(
    root: Path,
    sizes: Mapping[str, int],
    *,
    piece_length: int = PIECE,
    mirrors: tuple[str, ...] = (),
    contents: Mapping[str, bytes] | None = None,
    version: int = 1,
) -> Dataset:
    """Write files of the given sizes under ``root`` and describe them in a verified manifest.

    ``contents`` gives the bytes of some files (their sizes are then taken from it).
    """
    sizes = {**sizes, **{p: len(b) for p, b in (contents or {}).items()}}
    root.mkdir(parents=True, exist_ok=True)
    entries: list[FileEntry] = []
    layers: dict[bytes, bytes] = {}
    data: dict[str, bytes] = {}
    for path, size in sorted(sizes.items()):
        blob = (contents or {}).get(path) or content(path, size)
        data[path] = blob
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(blob)
        h = hash_file(target, piece_length, v1=False)
        digest = None if h.root is None else Digest(BEP52, h.root)
        entries.append(FileEntry(path, size, digest))
        if h.root is not None and h.piece_layer:
            layers[h.root] = h.piece_layer
    manifest = Manifest(
        id="https://example.org/datasets/test",
        version=version,
        files=tuple(entries),
        signers=(SIGNER,),
        threshold=1,
        piece_length=piece_length,
        mirrors=mirrors,
    )
    verified = VerifiedManifest(
        manifest=manifest,
        canonical_hash=Digest("rdfc-sha256", bytes(32)),
        signers=(SIGNER,),
        proofs=(),
        source="test",
    )
    return Dataset(root, verified, layers, data)


# --- a Range-capable HTTP server that can lie ---------------------------------------------------

#: Modes, chosen by the first path segment of the URL: ``http://host/<mode>/<file path>``.
#: Besides ``honest`` and these lies: ``ignore-range`` (200 with the whole file for a partial
#: range, as ``python -m http.server``: no lie, a mirror without range support),
#: ``redirect-same-host``, ``redirect-downgrade`` and ``drop-keepalive``.
LIES = (
    "wrong-bytes",  # 206, right headers, one byte flipped in every piece
    "short-body",  # 206, right headers, half the body, then the connection closes
    "too-many-bytes",  # 206, Content-Length and body longer than the range
    "too-many-chunked",  # 206, chunked, longer body than the range
    "wrong-content-length",  # 206, Content-Length smaller than the range
    "wrong-content-range",  # 206 for another range
    "not-found",  # 404
    "server-error",  # 500
    "redirect-other-host",  # 302 to the same file on "localhost" instead of 127.0.0.1
    "redirect-other-port",  # 302 to the same host, another port: another server
    "redirect-loop",  # 302 to itself
    "reset",  # half the body, then a TCP reset
    "stall",  # headers and a few bytes, then nothing
)


@dataclass
class Request:
    mode: str
    path: str
    range: str | None
    client_port: int


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: RangeServer

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _range(self, size: int) -> tuple[int, int] | None:
        header = self.headers.get("Range")
        if not header or not header.startswith("bytes="):
            return None
        first, _, last = header[6:].partition("-")
        start = int(first)
        end = min(int(last), size - 1) if last else size - 1
        return start, end

    def do_GET(self) -> None:
        raw = self.path.split("?", 1)[0]
        mode, _, rel = raw.lstrip("/").partition("/")
        rel = unquote(rel)
        self.server.requests.append(
            Request(mode, rel, self.headers.get("Range"), self.client_address[1])
        )
        self.server.headers_seen.append(dict(self.headers))
        if mode == "redirect-same-host":
            return self._redirect(f"/honest/{raw.split('/', 2)[2]}")
        if mode == "redirect-other-host":
            return self._redirect(f"http://localhost:{self.server.port}/honest/{rel}")
        if mode == "redirect-other-port":
            return self._redirect(f"http://127.0.0.1:{self.server.port + 1}/honest/{rel}")
        if mode == "redirect-loop":
            return self._redirect(raw)
        if mode == "redirect-downgrade":
            return self._redirect(f"http://127.0.0.1:{self.server.port}/honest/{rel}")
        if mode == "not-found":
            return self._status(404)
        if mode == "server-error":
            return self._status(500)
        path = self.server.directory / rel
        if not path.is_file():
            return self._status(404)
        data = path.read_bytes()
        span = self._range(len(data))
        if span is None or mode == "ignore-range":
            return self._send(200, data, {})
        start, end = span
        body = data[start : end + 1]
        headers = {"Content-Range": f"bytes {start}-{end}/{len(data)}"}
        if mode == "wrong-bytes":
            body = bytes([body[0] ^ 0xFF]) + body[1:]
        elif mode == "too-many-bytes":
            body = body + b"\0" * 100
        elif mode == "wrong-content-length":
            headers["Content-Length"] = str(len(body) - 1)
        elif mode == "wrong-content-range":
            headers["Content-Range"] = f"bytes {start + 1}-{end + 1}/{len(data)}"
        elif mode == "too-many-chunked":
            return self._send_chunked(body + b"\1" * 100, headers)
        elif mode in ("short-body", "reset", "stall"):
            return self._misbehave(mode, body, headers)
        self._send(206, body, headers)
        if mode == "drop-keepalive":  # like a server's keep-alive timeout, without warning
            self.wfile.flush()
            self.close_connection = True

    def _redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _status(self, code: int) -> None:
        body = f"error {code}\n".encode()
        self._send(code, body, {"Content-Type": "text/plain"})

    def _send(self, code: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(code)
        headers = {"Content-Length": str(len(body)), **headers}
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _send_chunked(self, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(206)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for i in range(0, len(body), 4096):
            part = body[i : i + 4096]
            self.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
        self.wfile.write(b"0\r\n\r\n")

    def _misbehave(self, mode: str, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(206)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        if mode == "stall":
            self.wfile.write(body[:10])
            self.wfile.flush()
            self.server.stop.wait(120)
        else:
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
        if mode == "reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.close()


class RangeServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    """Serves ``directory`` under ``/<mode>/``; ``honest`` behaves, the rest lie (see LIES)."""

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, directory: Path, tls: ssl.SSLContext | None = None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.scheme = "http"
        if tls is not None:
            self.socket = tls.wrap_socket(self.socket, server_side=True)
            self.scheme = "https"
        self.directory = directory
        self.requests: list[Request] = []
        self.headers_seen: list[dict[str, str]] = []
        self.stop = threading.Event()
        self.port: int = self.server_address[1]

    def url(self, mode: str = "honest") -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}/{mode}/"

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # lying on purpose makes for broken connections

    def requests_for(self, mode: str) -> list[Request]:
        return [r for r in self.requests if r.mode == mode]


@contextlib.contextmanager
def serve(directory: Path, tls: ssl.SSLContext | None = None) -> Iterator[RangeServer]:
    server = RangeServer(directory, tls)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield server
    finally:
        server.stop.set()
        server.shutdown()
        server.server_close()
        thread.join(30)
