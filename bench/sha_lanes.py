"""How many messages one core must hash at once to reach its SHA throughput (ADR 0009).

Compiles ``bench/sha_lanes.c`` with the system C compiler (the flags ``setup.py`` uses), runs
it, checks every digest it prints against :mod:`hashlib` (a lane the compiler dropped would
show as a wrong digest, not as a fast one), and prints GB/s per core for SHA-256 and SHA-1
with the x86 SHA extensions, 1 to 4 messages interleaved, and for SHA-1 of 16 messages in the
lanes of AVX-512 registers, where the processor has them. One core; messages of 16 KiB in the
cache; the median of ``--runs`` runs.

    python bench/sha_lanes.py [--mib 1024] [--runs 3]
"""

from __future__ import annotations

import argparse
import hashlib
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MSG = 16384
NMSG = 64
MASK = (1 << 64) - 1


def messages() -> list[bytes]:
    """The bytes sha_lanes.c hashes: a xorshift64 stream's top bytes."""
    x = 0x9E3779B97F4A7C15
    out = bytearray(NMSG * MSG)
    for i in range(len(out)):
        x ^= (x << 13) & MASK
        x ^= x >> 7
        x ^= (x << 17) & MASK
        out[i] = x >> 56
    return [bytes(out[i * MSG : (i + 1) * MSG]) for i in range(NMSG)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mib", type=int, default=1024, help="MiB hashed per measurement")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        print("no C compiler: nothing to measure", file=sys.stderr)
        return 2
    if not sys.platform.startswith("linux") or platform.machine() not in ("x86_64", "AMD64"):
        print("x86-64 Linux only", file=sys.stderr)
        return 2
    msgs = messages()
    with tempfile.TemporaryDirectory() as tmp:
        exe = Path(tmp) / "sha_lanes"
        source = Path(__file__).with_name("sha_lanes.c")
        subprocess.run([cc, "-O2", "-std=gnu11", "-o", str(exe), str(source)], check=True)
        speeds: dict[tuple[str, int], list[float]] = {}
        for _ in range(args.runs):
            out = subprocess.run([str(exe), str(args.mib)], check=True, capture_output=True,
                                 text=True).stdout  # fmt: skip
            for line in out.splitlines():
                name, lanes_s, gbs, *digests = line.split()
                lanes = int(lanes_s)
                rounds = (args.mib << 20) // (lanes * MSG)
                algorithm = hashlib.sha256 if name.startswith("sha256") else hashlib.sha1
                for lane, digest in enumerate(digests):
                    expected = algorithm(msgs[((rounds - 1) * lanes + lane) % NMSG]).hexdigest()
                    if digest != expected:
                        print(f"{name} x{lanes}: lane {lane} digest {digest} != {expected}",
                              file=sys.stderr)  # fmt: skip
                        return 1
                speeds.setdefault((name, lanes), []).append(float(gbs))
    one = hashlib.sha256()
    start = time.perf_counter()
    block = b"".join(msgs)
    for _ in range(max(1, args.mib)):
        one.update(block)
    hashlib_gbs = max(1, args.mib) * len(block) / (time.perf_counter() - start) / 1e9
    print(f"| messages at once | GB/s per core, median of {args.runs} [min-max] |")
    print("|---|---|")
    for (name, lanes), values in speeds.items():
        print(f"| {name} x{lanes} | {statistics.median(values):.2f} "
              f"[{min(values):.2f}-{max(values):.2f}] |")  # fmt: skip
    print(f"| hashlib sha256, one stream (1 MiB updates) | {hashlib_gbs:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
