"""Helpers for the BitTorrent tests: signed datasets, seeders, a bad seeder, opentracker.

Datasets are built with :func:`owmanifest.manifest.builder.build_manifest`, signed with the
fixture key ``alice`` and verified with :meth:`TrustPolicy.from_keys`, so the tests go through
the same path as ``owmanifest create`` / ``sign`` / ``fetch``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from owmanifest.manifest.builder import build_manifest
from owmanifest.manifest.document import load_document
from owmanifest.manifest.jsonld import dumps, manifest_to_jsonld
from owmanifest.manifest.model import Manifest
from owmanifest.manifest.torrent import parse_torrent
from owmanifest.signing import sign_document
from owmanifest.transport.base import Progress
from owmanifest.verify.manifest import verify_manifest
from owmanifest.verify.policy import TrustPolicy
from owmanifest.verify.result import VerifiedManifest
from tests.unit.fixtures import DIDS, key

KiB = 1024
MiB = 1024 * KiB

#: A few MiB in several files, nested, with an empty file and sizes off the piece grid.
SIZES: dict[str, int] = {
    "README.txt": 1_000,
    "empty.dat": 0,
    "neurons/connectome.csv": 700_000 + 17,
    "neurons/weights/big.bin": 3 * MiB + 5,
    "traces/run-01.npy": 512 * KiB,
    "traces/run-02.npy": 300_001,
}
PIECE = 32 * KiB


def content(name: str, size: int) -> bytes:
    rng = random.Random(hashlib.sha256(name.encode()).digest())
    return rng.randbytes(size)


@dataclass
class SwarmDataset:
    """A signed, verified dataset with its sidecar torrent."""

    root: Path
    verified: VerifiedManifest
    torrent: bytes
    data: dict[str, bytes]

    @property
    def manifest(self) -> Manifest:
        return self.verified.manifest

    @property
    def layers(self) -> Mapping[bytes, bytes]:
        return parse_torrent(self.torrent).piece_layers

    @property
    def total(self) -> int:
        return self.manifest.total_size

    def check(self, dest: Path) -> None:
        for path, blob in self.data.items():
            target = dest / path
            assert not target.is_symlink()
            assert target.read_bytes() == blob, f"{path}: wrong content"


def make_dataset(
    root: Path,
    sizes: Mapping[str, int] = SIZES,
    *,
    piece_length: int = PIECE,
    private: bool = False,
    hybrid: bool = True,
    dataset_id: str = "https://openworm.org/data/bt-test",
) -> SwarmDataset:
    """Write the files, build the manifest and torrent, sign with alice, verify."""
    root.mkdir(parents=True, exist_ok=True)
    data: dict[str, bytes] = {}
    for path, size in sizes.items():
        blob = content(path, size)
        data[path] = blob
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(blob)
    result = build_manifest(
        root,
        dataset_id=dataset_id,
        version=1,
        signers=[DIDS["alice"]],
        threshold=1,
        piece_length=piece_length,
        private=private,
        hybrid=hybrid,
        created="2025-01-01T00:00:00Z",
    )
    assert result.torrent is not None
    unsigned = dumps(manifest_to_jsonld(result.manifest))
    doc = load_document(unsigned, source="bt-test.jsonld")
    signed = sign_document(doc, key("alice"), created="2025-01-01T00:00:00Z")
    verified = verify_manifest(
        signed, TrustPolicy.from_keys([DIDS["alice"]]), source="bt-test.jsonld"
    )
    return SwarmDataset(root, verified, result.torrent, data)


def corrupt_copy(src: Path, dst: Path) -> None:
    """Copy a dataset, flipping one byte in every 1000 of every non-empty file (sizes kept)."""
    shutil.copytree(src, dst)
    for path in sorted(dst.rglob("*")):
        if path.is_file() and path.stat().st_size:
            blob = bytearray(path.read_bytes())
            for i in range(0, len(blob), 1000):
                blob[i] ^= 0xFF
            path.write_bytes(bytes(blob))


class LyingSeeder:
    """A libtorrent seeder that serves corrupted data as if it were good.

    libtorrent trusts resume data that says every piece is there, so: resume data from an
    honest check of ``good``, then the torrent is added over ``bad`` (corrupted, same sizes)
    with that resume data. It never re-hashes what it serves.
    """

    def __init__(self, dataset: SwarmDataset, bad: Path, *, settings: dict[str, Any] | None = None):
        import libtorrent as lt

        from owmanifest.transport._lt import new_session, torrent_files

        self.lt = lt
        ti = lt.torrent_info(dataset.torrent)
        files = torrent_files(ti)

        def params(directory: Path) -> Any:
            atp = lt.add_torrent_params()
            atp.ti = lt.torrent_info(dataset.torrent)
            atp.save_path = str(directory)
            atp.renamed_files = {f.index: str(directory / f.path) for f in files}
            atp.flags &= ~(lt.torrent_flags.auto_managed | lt.torrent_flags.paused)
            return atp

        honest = new_session("127.0.0.1:0", dht=False)
        handle = honest.add_torrent(params(dataset.root))
        _wait(lambda: handle.status().is_seeding, "honest check")
        handle.save_resume_data(lt.torrent_handle.save_info_dict)
        resume = _wait_alert(honest, lt.save_resume_data_alert)
        buf = lt.write_resume_data_buf(resume.params)
        honest.remove_torrent(handle)
        del honest

        self.session = new_session("127.0.0.1:0", dht=False, extra=settings)
        atp = lt.read_resume_data(buf)
        fresh = params(bad)
        atp.ti = fresh.ti
        atp.save_path = fresh.save_path
        atp.renamed_files = fresh.renamed_files
        atp.flags &= ~(lt.torrent_flags.auto_managed | lt.torrent_flags.paused)
        self.handle = self.session.add_torrent(atp)
        _wait(lambda: self.handle.status().is_seeding, "lying seeder")
        self.port = int(self.session.listen_port())

    def uploaded(self) -> int:
        return int(self.handle.status().total_payload_upload)

    def close(self) -> None:
        self.session.remove_torrent(self.handle)
        self.session.pause()
        del self.session


def _wait(cond: Any, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.05)


def _wait_alert(session: Any, kind: type, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        session.wait_for_alert(200)
        for alert in session.pop_alerts():
            if isinstance(alert, kind):
                return alert
    raise TimeoutError(kind.__name__)


class StopAfter(Progress):
    """A Progress that interrupts the fetch once ``limit`` verified bytes arrived."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.seen = 0

    def start(self, total_bytes: int) -> None:
        pass

    def advance(self, nbytes: int, source: str) -> None:
        self.seen += nbytes
        if self.seen >= self.limit:
            raise KeyboardInterrupt

    def file_done(self, path: str) -> None:
        pass

    def close(self) -> None:
        pass


class Counting(Progress):
    """A Progress that adds up what it is told."""

    def __init__(self) -> None:
        self.total = 0
        self.advanced = 0
        self.done: list[str] = []

    def start(self, total_bytes: int) -> None:
        self.total = total_bytes

    def advance(self, nbytes: int, source: str) -> None:
        self.advanced += nbytes

    def file_done(self, path: str) -> None:
        self.done.append(path)

    def close(self) -> None:
        pass


# --- opentracker ---------------------------------------------------------------------------------

OPENTRACKER = shutil.which("opentracker") or next(
    (p for p in ("/usr/bin/opentracker", "/usr/sbin/opentracker") if os.path.exists(p)), None
)


from tests.nginx_support import free_port, stop, wait_listening  # noqa: E402


@contextlib.contextmanager
def opentracker(manifest: Manifest) -> Iterator[str]:
    """Run Debian's opentracker on a loopback port; yields the announce URL.

    Debian builds it with a whitelist: the v1 info-hash and the first 40 hex digits of the v2
    info-hash are listed in a file given by absolute path (opentracker changes to ``/``, and
    reads it after dropping privileges to "nobody").
    """
    assert OPENTRACKER is not None
    # opentracker refuses to run as root and reads the whitelist as "nobody": put it where
    # everybody can read it (pytest's temporary directories are private)
    public = Path(tempfile.mkdtemp(prefix="owmanifest-opentracker-"))
    public.chmod(0o755)
    whitelist = public / "whitelist"
    hashes = [h for h in (manifest.info_hash_v1, (manifest.info_hash_v2 or "")[:40]) if h]
    whitelist.write_text("".join(h + "\n" for h in hashes))
    whitelist.chmod(0o644)
    port = free_port()
    proc = subprocess.Popen(
        [
            OPENTRACKER,
            *("-i", "127.0.0.1", "-p", str(port), "-P", str(port), "-w", str(whitelist)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_listening(proc, port, "opentracker")
        yield f"http://127.0.0.1:{port}/announce"
    finally:
        stop(proc)
        shutil.rmtree(public, ignore_errors=True)
