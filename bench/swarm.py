#!/usr/bin/env python3
"""A swarm on one machine: 1 seeder and N leechers, each a separate ``owmanifest`` process.

Usage: ``python bench/swarm.py [--size-mib 256] [--leechers 8] [--files 8] [--timeout 1800]
[--dir DIR] [--json]``

Everything runs on loopback with the DHT, LSD and PEX off (``--no-dht``): a closed network.
The script

1. writes a dataset of ``--size-mib`` MiB of random bytes in ``--files`` files, builds its
   manifest and sidecar torrent, and signs it with a freshly generated key;
2. starts ``owmanifest seed MANIFEST DATA --listen 127.0.0.1:P --no-dht --json`` and waits for
   the magnet link (the data checked);
3. starts every leecher at once: ``owmanifest fetch MANIFEST DEST_i --trust DID --transport
   bittorrent --peer 127.0.0.1:P --peer <every other leecher> --listen 127.0.0.1:L_i --no-dht``,
   each with its own user directories (trust, rollback state);
4. waits for all of them (``--timeout`` bounds the whole run), checks every exit code, and
   verifies every destination again with ``verify_tree``;
5. stops the seeder (SIGTERM) and reads how many bytes it uploaded.

It prints the total time (first leecher started to last leecher done), each leecher's time and
exit code, and the seeder's upload ratio (bytes uploaded / dataset size: 1.0 means the leechers
got everything else from each other; N means the seeder served every leecher alone).
``tests/security/test_swarm.py`` runs the same code with a few MiB in CI.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

MiB = 1024 * 1024


@dataclass
class LeecherResult:
    index: int
    returncode: int | None
    seconds: float
    verified: bool
    stderr_tail: str = ""


@dataclass
class SwarmResult:
    size: int
    files: int
    leechers: int
    total_seconds: float
    seeder_uploaded: int
    upload_ratio: float
    all_ok: bool
    results: list[LeecherResult] = field(default_factory=list)
    seeder_stderr_tail: str = ""

    def summary(self) -> str:
        done = sum(r.returncode == 0 and r.verified for r in self.results)
        return (
            f"swarm: {self.leechers} leechers, {self.size / MiB:.1f} MiB in {self.files} files: "
            f"{done}/{self.leechers} finished and verified in {self.total_seconds:.1f} s; "
            f"seeder uploaded {self.seeder_uploaded / MiB:.1f} MiB "
            f"(upload ratio {self.upload_ratio:.2f})"
        )


def _free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def _write_dataset(root: Path, size: int, files: int) -> None:
    root.mkdir(parents=True, exist_ok=True)
    left = size
    for i in range(files):
        n = left if i == files - 1 else size // files + (i * 7919) % 4096
        n = max(0, min(n, left))
        left -= n
        target = root / f"part-{i // 4}" / f"file-{i:03d}.bin"
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "wb") as f:
            remaining = n
            while remaining:
                chunk = os.urandom(min(remaining, 4 * MiB))
                f.write(chunk)
                remaining -= len(chunk)


def _sign(data: Path, manifest_path: Path) -> str:
    """Build, sign and write the manifest and its torrent; returns the signer's did:key."""
    from owmanifest.manifest.builder import build_manifest
    from owmanifest.manifest.document import load_document
    from owmanifest.manifest.jsonld import dumps, manifest_to_jsonld
    from owmanifest.signing import sign_document
    from owmanifest.verify.keys import PrivateKey

    key = PrivateKey.generate()
    did = key.public_key.did
    built = build_manifest(
        data,
        dataset_id="https://openworm.org/data/swarm-bench",
        version=1,
        signers=[did],
        threshold=1,
    )
    doc = load_document(dumps(manifest_to_jsonld(built.manifest)), source=str(manifest_path))
    manifest_path.write_bytes(sign_document(doc, key))
    assert built.torrent is not None
    Path(str(manifest_path) + ".torrent").write_bytes(built.torrent)
    return did


def _read_json(proc: subprocess.Popen[str]) -> object:
    """The first JSON value a process prints on stdout (it may span several lines)."""
    assert proc.stdout is not None
    text = ""
    while True:
        line = proc.stdout.readline()
        if not line:
            err = proc.stderr.read() if proc.stderr else ""
            raise RuntimeError(f"the seeder exited ({proc.poll()}): {_tail(err)}")
        text += line
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            continue


def _env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["OWMANIFEST_CONFIG_DIR"] = str(home / "config")
    env["OWMANIFEST_STATE_DIR"] = str(home / "state")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    return env


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def run_swarm(
    workdir: Path,
    *,
    size: int,
    leechers: int = 8,
    files: int = 8,
    timeout: float = 1800.0,
    stall_timeout: float = 120.0,
    python: str = sys.executable,
) -> SwarmResult:
    """Run the swarm in ``workdir``; see the module docstring. Never raises for a failed
    leecher: the result says what happened (``all_ok``)."""
    deadline = time.monotonic() + timeout
    data = workdir / "seed" / "data"
    _write_dataset(data, size, files)
    manifest = workdir / "seed" / "manifest.jsonld"
    did = _sign(data, manifest)
    seed_port, *ports = _free_ports(leechers + 1)
    cmd = [python, "-m", "owmanifest"]
    seeder = subprocess.Popen(
        [
            *cmd,
            "seed",
            str(manifest),
            str(data),
            "--listen",
            f"127.0.0.1:{seed_port}",
            "--no-dht",
            "--json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(workdir / "seed" / "home"),
        cwd=REPO,
    )
    procs: list[tuple[subprocess.Popen[str], float]] = []
    results: list[LeecherResult] = []
    start = end = time.monotonic()
    uploaded = 0
    seeder_err = ""
    try:
        assert seeder.stdout is not None
        _read_json(seeder)  # printed once the data is checked
        start = time.monotonic()
        for i, port in enumerate(ports):
            peers = [f"127.0.0.1:{seed_port}", *(f"127.0.0.1:{p}" for p in ports if p != port)]
            args = [
                *cmd,
                "fetch",
                str(manifest),
                str(workdir / f"leecher-{i}" / "dest"),
                "--trust",
                did,
                "--transport",
                "bittorrent",
                "--no-dht",
                "-q",
                "--listen",
                f"127.0.0.1:{port}",
                "--stall-timeout",
                str(stall_timeout),
            ]
            for p in peers:
                args += ["--peer", p]
            proc = subprocess.Popen(
                args,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
                env=_env(workdir / f"leecher-{i}" / "home"),
                cwd=REPO,
            )
            procs.append((proc, time.monotonic()))
        for i, (proc, began) in enumerate(procs):
            try:
                _, err = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                _, err = proc.communicate()
            results.append(
                LeecherResult(i, proc.returncode, time.monotonic() - began, False, _tail(err))
            )
        end = time.monotonic()
    finally:
        for proc, _ in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if seeder.poll() is None:
            seeder.send_signal(signal.SIGTERM)
        try:
            _, seeder_err = seeder.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            seeder.kill()
            _, seeder_err = seeder.communicate()
    m = re.search(r"uploaded (\d+) bytes", seeder_err or "")
    uploaded = int(m.group(1)) if m else 0
    _verify(manifest, did, workdir, results)
    ok = len(results) == leechers and all(r.returncode == 0 and r.verified for r in results)
    return SwarmResult(
        size=size,
        files=files,
        leechers=leechers,
        total_seconds=end - start,
        seeder_uploaded=uploaded,
        upload_ratio=uploaded / size if size else 0.0,
        all_ok=ok,
        results=results,
        seeder_stderr_tail=_tail(seeder_err or ""),
    )


def _verify(manifest: Path, did: str, workdir: Path, results: list[LeecherResult]) -> None:
    """Verify every destination again, in this process, against the signed manifest."""
    from owmanifest.errors import Error
    from owmanifest.verify import TrustPolicy, verify_manifest, verify_tree

    vm = verify_manifest(manifest.read_bytes(), TrustPolicy.from_keys([did]), source=str(manifest))
    for r in results:
        dest = workdir / f"leecher-{r.index}" / "dest"
        try:
            r.verified = verify_tree(vm, dest, strict=True).ok
        except Error:
            r.verified = False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-mib", type=float, default=256.0)
    parser.add_argument("--leechers", type=int, default=8)
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--timeout", type=float, default=1800.0)
    parser.add_argument("--dir", type=Path, help="work here (default: a temporary directory)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    size = int(args.size_mib * MiB)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        result = run_swarm(
            Path(tmp), size=size, leechers=args.leechers, files=args.files, timeout=args.timeout
        )
    if args.json:
        print(json.dumps(asdict(result), indent=2))
    else:
        print(result.summary())
        for r in result.results:
            state = "ok" if r.returncode == 0 and r.verified else f"FAILED (exit {r.returncode})"
            print(f"  leecher {r.index}: {r.seconds:.1f} s, {state}")
            if state != "ok":
                print("    " + r.stderr_tail.replace("\n", "\n    "))
    return 0 if result.all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
