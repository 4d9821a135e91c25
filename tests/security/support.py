"""Helpers for the security suite: signed datasets, hand-made (hostile) manifests, a fault server.

* :func:`make_signed_dataset` writes files, builds the manifest and sidecar torrent with
  ``build_manifest`` and signs them with the fixed test keys, exactly as ``owmanifest create``
  and ``sign`` do, so tests go through the real verifier.
* :func:`manifest_quads` / :func:`sign_quads` build and sign manifests that ``create`` would
  never write (hostile paths, absurd sizes): the signature is real, so only the verifier's own
  rules can stop them.
* :class:`FaultServer` is a Range-capable HTTP server on loopback that can throttle, drip bytes
  (slow loris), send endless or short bodies, and logs every request with the bytes it sent.
  The lying modes of ``tests/unit/transport_support.py`` are reused where they suffice.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import json
import os
import random
import socket
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote

import pyoxigraph as ox

from owmanifest.manifest import vocab
from owmanifest.manifest.builder import build_manifest
from owmanifest.manifest.canonical import canonical_nquads
from owmanifest.manifest.digest import Digest
from owmanifest.manifest.document import load_document
from owmanifest.manifest.jsonld import dumps, manifest_to_jsonld
from owmanifest.manifest.model import Manifest
from owmanifest.manifest.torrent import parse_torrent
from owmanifest.signing import sign_document
from owmanifest.verify import TrustPolicy, verify_manifest
from owmanifest.verify.proofs import create_proof, proof_graph_quads
from owmanifest.verify.result import VerifiedManifest

from ..unit.fixtures import ASSETS, DIDS, key, signed_bytes

__all__ = [
    "ALICE",
    "BOTH",
    "FaultServer",
    "SignedDataset",
    "content",
    "fixture_verified",
    "make_signed_dataset",
    "manifest_quads",
    "nquads",
    "run_cli",
    "sign_quads",
    "wrong_final_files",
]

REPO = Path(__file__).resolve().parents[2]
BOTH = TrustPolicy.from_keys([DIDS["alice"], DIDS["bob"]])
ALICE = TrustPolicy.from_keys([DIDS["alice"]])
SIGNED_AT = "2026-02-01T00:00:00Z"
DATASET = ASSETS / "dataset"


def fixture_verified() -> VerifiedManifest:
    """The committed signed fixture manifest, verified (alice and bob, threshold 2)."""
    return verify_manifest(signed_bytes(), BOTH, source="signed.jsonld")


def content(name: str, size: int) -> bytes:
    """Deterministic pseudo-random bytes for ``name``."""
    return random.Random(hashlib.sha256(name.encode()).digest()).randbytes(size)


# --- hand-made manifests --------------------------------------------------------------------------


def manifest_quads(manifest: Manifest) -> list[ox.Quad]:
    """The RDF of ``manifest`` (no proofs), bypassing every check of the reader."""
    data = json.dumps(manifest_to_jsonld(manifest)).encode()
    return list(ox.parse(data, format=ox.RdfFormat.JSON_LD))


def sign_quads(
    body: Sequence[ox.Quad], dataset_id: str, signers: Sequence[str] = ("alice",)
) -> list[ox.Quad]:
    """``body`` with a valid ``eddsa-rdfc-2022`` proof by each of ``signers`` added."""
    canonical = canonical_nquads(body)
    out = list(body)
    for name in signers:
        proof = create_proof(canonical, key(name), context=vocab.CONTEXT, created=SIGNED_AT)
        out += proof_graph_quads(proof, dataset_id, vocab.CONTEXT)
    return out


def nquads(quads: Sequence[ox.Quad]) -> bytes:
    out = ox.serialize(quads, format=ox.RdfFormat.N_QUADS)
    assert out is not None
    return bytes(out)


# --- signed datasets on disk ----------------------------------------------------------------------


@dataclass
class SignedDataset:
    """Files, a signed manifest and its sidecar torrent, as ``create`` and ``sign`` make them.

    Attributes:
        root: the dataset directory.
        manifest_path: the signed JSON-LD manifest (``<manifest>.torrent`` next to it).
        verified: the manifest, verified with :data:`ALICE` (or the given signers).
        data: the bytes of every file, by path.
    """

    root: Path
    manifest_path: Path
    verified: VerifiedManifest
    data: dict[str, bytes]
    torrent: bytes | None

    @property
    def manifest(self) -> Manifest:
        return self.verified.manifest

    @property
    def layers(self) -> Mapping[bytes, bytes]:
        return {} if self.torrent is None else parse_torrent(self.torrent).piece_layers

    @property
    def total(self) -> int:
        return self.manifest.total_size

    def pieces(self, path: str) -> int:
        return -(-len(self.data[path]) // self.manifest.piece_length)


def make_signed_dataset(
    workdir: Path,
    sizes: Mapping[str, int] | None = None,
    *,
    contents: Mapping[str, bytes] | None = None,
    piece_length: int = 16384,
    dataset_id: str = "https://openworm.org/data/security-test",
    version: int = 1,
    previous: Digest | None = None,
    signers: Sequence[str] = ("alice",),
    name: str = "manifest.jsonld",
    mirrors: Sequence[str] = (),
) -> SignedDataset:
    """Write a dataset under ``workdir/data`` and a signed manifest at ``workdir/<name>``."""
    root = workdir / "data"
    root.mkdir(parents=True, exist_ok=True)
    data: dict[str, bytes] = {}
    for path, size in (sizes or {}).items():
        data[path] = content(f"{path}@{version}", size)
    data.update(contents or {})
    for path, blob in data.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(blob)
    result = build_manifest(
        root,
        dataset_id=dataset_id,
        version=version,
        signers=[DIDS[s] for s in signers],
        threshold=len(signers),
        piece_length=piece_length,
        previous_version=previous,
        created="2026-01-01T00:00:00Z",
        mirrors=mirrors,
    )
    document = load_document(dumps(manifest_to_jsonld(result.manifest)), source=name)
    signed = b""
    for signer in signers:
        signed = sign_document(document, key(signer), created=SIGNED_AT)
        document = load_document(signed, source=name)
    manifest_path = workdir / name
    manifest_path.write_bytes(signed)
    if result.torrent is not None:
        Path(str(manifest_path) + ".torrent").write_bytes(result.torrent)
    policy = TrustPolicy.from_keys([DIDS[s] for s in signers])
    verified = verify_manifest(signed, policy, source=str(manifest_path))
    return SignedDataset(root, manifest_path, verified, data, result.torrent)


def wrong_final_files(dest: Path, data: Mapping[str, bytes]) -> list[str]:
    """Final paths that exist but are not exactly the expected regular file."""
    wrong: list[str] = []
    for path, blob in data.items():
        target = dest / path
        if target.is_symlink():
            wrong.append(f"{path}: a symbolic link")
        elif target.exists() and (not target.is_file() or target.read_bytes() != blob):
            wrong.append(f"{path}: wrong content")
    return wrong


def tree(root: Path) -> dict[str, bytes]:
    """Every regular file under ``root`` outside ``.owmanifest/``."""
    if not root.exists():
        return {}
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and not p.is_symlink() and ".owmanifest" not in p.relative_to(root).parts
    }


# --- the command line as a subprocess -------------------------------------------------------------


def cli_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "owmanifest", *args]


def run_cli(*args: str, timeout: float = 300.0) -> subprocess.CompletedProcess[str]:
    """Run ``owmanifest ARGS`` in a new process (environment inherited: isolated user dirs)."""
    return subprocess.run(
        cli_command(*args), capture_output=True, text=True, timeout=timeout, cwd=REPO
    )


# --- a server that fails on purpose ---------------------------------------------------------------


@dataclass
class Served:
    """One request: run number (:attr:`FaultServer.epoch`), mode, path, range, bytes sent."""

    epoch: int
    mode: str
    path: str
    first: int
    last: int
    sent: int = 0


class _FaultHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: FaultServer

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        mode, _, rel = self.path.split("?", 1)[0].lstrip("/").partition("/")
        rel = unquote(rel)
        if mode == "down":
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        path = self.server.directory / rel
        declared = self.server.declared_sizes.get(rel)
        if declared is None and not path.is_file():
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        size = declared if declared is not None else path.stat().st_size
        first, last = 0, size - 1
        header = self.headers.get("Range", "")
        if header.startswith("bytes="):
            a, _, b = header[6:].partition("-")
            first, last = int(a), min(int(b), size - 1) if b else size - 1
        record = Served(self.server.epoch, mode, rel, first, last)
        with self.server.lock:
            self.server.log.append(record)
        length = last - first + 1
        self.send_response(206 if header else 200)
        self.send_header("Content-Range", f"bytes {first}-{last}/{size}")
        if mode == "endless-chunked":
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(length))
        self.end_headers()
        try:
            if mode == "slow-loris":
                self._drip(record, path, first, length)
            elif mode in ("endless", "endless-chunked"):
                self._endless(record, mode)
            else:
                self._body(record, path, first, length, mode)
        except OSError:
            self.close_connection = True

    def _write(self, record: Served, data: bytes) -> None:
        self.wfile.write(data)
        self.wfile.flush()
        record.sent += len(data)
        with self.server.lock:
            self.server.bytes_sent += len(data)

    def _body(self, record: Served, path: Path, first: int, length: int, mode: str) -> None:
        limit = length if mode != "short" else min(length, self.server.short_limit)
        rate = self.server.rate if mode == "throttled" else 0.0
        chunk = self.server.chunk
        with open(path, "rb") as f:
            f.seek(first)
            left = limit
            while left and not self.server.stopping.is_set():
                data = f.read(min(chunk, left))
                if not data:
                    break
                self._write(record, data)
                left -= len(data)
                if rate:
                    time.sleep(len(data) / rate)
        if limit < length:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)

    def _drip(self, record: Served, path: Path, first: int, length: int) -> None:
        with open(path, "rb") as f:
            f.seek(first)
            for _ in range(length):
                if self.server.stopping.wait(self.server.drip_interval):
                    break
                self._write(record, f.read(1))

    def _endless(self, record: Served, mode: str) -> None:
        block = b"\xa5" * 65536
        while not self.server.stopping.is_set() and record.sent < self.server.endless_cap:
            if mode == "endless-chunked":
                self.wfile.write(b"%x\r\n" % len(block) + block + b"\r\n")
                self.wfile.flush()
                record.sent += len(block)
                with self.server.lock:
                    self.server.bytes_sent += len(block)
            else:
                self._write(record, block)
        self.close_connection = True


class FaultServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    """Serves ``directory`` under ``/<mode>/``.

    Modes: ``honest``; ``throttled`` (``rate`` bytes per second per response); ``slow-loris``
    (one byte every ``drip_interval`` seconds); ``short`` (announces the whole range, sends
    ``short_limit`` bytes, closes); ``endless`` / ``endless-chunked`` (sends filler until the
    client goes away, or ``endless_cap`` bytes); ``down`` (503 for everything). A path in
    ``declared_sizes`` is announced with that size whatever the file holds.
    """

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, directory: Path) -> None:
        super().__init__(("127.0.0.1", 0), _FaultHandler)
        self.directory = directory
        self.port: int = self.server_address[1]
        self.lock = threading.Lock()
        self.log: list[Served] = []
        self.bytes_sent = 0
        self.epoch = 0
        self.rate = 256 * 1024.0
        self.chunk = 16384
        self.drip_interval = 0.5
        self.short_limit = 1000
        self.endless_cap = 1 << 40
        self.declared_sizes: dict[str, int] = {}
        self.stopping = threading.Event()

    def url(self, mode: str = "honest") -> str:
        return f"http://127.0.0.1:{self.port}/{mode}/"

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients killed with SIGKILL leave broken connections behind, on purpose

    def requests(self, *, epoch: int | None = None, mode: str | None = None) -> list[Served]:
        with self.lock:
            return [
                r
                for r in self.log
                if (epoch is None or r.epoch == epoch) and (mode is None or r.mode == mode)
            ]


@contextlib.contextmanager
def fault_server(directory: Path) -> Iterator[FaultServer]:
    server = FaultServer(directory)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield server
    finally:
        server.stopping.set()
        server.shutdown()
        server.server_close()
        thread.join(30)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PieceSet:
    """Which pieces of which files, for "downloaded twice" accounting."""

    pieces: dict[str, set[int]] = field(default_factory=dict)

    def add(self, path: str, index: int) -> None:
        self.pieces.setdefault(path, set()).add(index)

    def __contains__(self, item: tuple[str, int]) -> bool:
        return item[1] in self.pieces.get(item[0], set())

    def count(self) -> int:
        return sum(len(v) for v in self.pieces.values())


class _Described(Protocol):
    """Any dataset with its bytes and a manifest (SignedDataset, bt_support.SwarmDataset)."""

    data: dict[str, bytes]

    @property
    def manifest(self) -> Manifest: ...


def verified_pieces(dest: Path, ds: _Described) -> PieceSet:
    """The pieces a destination holds verified: whole files at their final paths, and pieces of
    the partial area's data files whose bytes are exactly right."""
    from owmanifest.transport._partial import PARTIAL_DIR, STATE_DIR

    out = PieceSet()
    plen = ds.manifest.piece_length
    for path, blob in ds.data.items():
        n = -(-len(blob) // plen)
        final = dest / path
        if final.is_file() and not final.is_symlink() and final.read_bytes() == blob:
            for i in range(n):
                out.add(path, i)
            continue
        keyname = hashlib.sha256(path.encode("utf-8")).hexdigest()[:40]
        part = dest / STATE_DIR / PARTIAL_DIR / f"{keyname}.part"
        if not part.is_file():
            continue
        have = part.read_bytes()
        for i in range(n):
            piece = blob[i * plen : (i + 1) * plen]
            if have[i * plen : i * plen + len(piece)] == piece:
                out.add(path, i)
    return out


def requested_pieces(requests: Sequence[Served], plen: int) -> list[tuple[str, int]]:
    """Every (path, piece) covered by the byte ranges of ``requests``, with repetitions."""
    out: list[tuple[str, int]] = []
    for r in requests:
        out += [(r.path, i) for i in range(r.first // plen, r.last // plen + 1)]
    return out


def wait_for(condition: object, timeout: float, what: str) -> None:
    """Poll ``condition()`` until true; ``AssertionError`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.02)


def environment() -> dict[str, str]:
    """The environment for subprocesses (inherits the isolated user directories)."""
    env = dict(os.environ)
    env.setdefault("PYTHONPATH", str(REPO))
    return env
