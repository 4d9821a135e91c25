#!/usr/bin/env python3
"""Hashing throughput: owmanifest against hashlib, libtorrent and sha256sum.

Usage: ``python bench/hashing.py [--size-mib 1024] [--files 10000] [--runs 3] [--dir DIR]``

Generates, in a temporary directory (nothing is written in the repository), one large file of
random bytes and a tree of small files (1-64 KiB each), reads everything once to warm the page
cache, then times each contender (median of ``--runs``) and prints a table:

* ``owmanifest v2``: :func:`~owmanifest.manifest.hashing.hash_files` with ``v1=False``;
* ``owmanifest hybrid``: ``hash_files`` with v1 pieces, plus :func:`build_torrent`;
* ``hashlib sha256``: one ``hashlib.sha256`` stream over the same bytes, one thread, 1 MiB reads;
* ``hashlib, 1 stream per core``: the same split in equal shares over one process per core (the
  ceiling for any SHA-256 based hashing on this machine; for reference);
* ``libtorrent hybrid``: ``create_torrent(files, piece_length, flags=0)`` + ``set_piece_hashes``
  + ``generate`` (libtorrent 2.x, when importable);
* ``sha256sum``: coreutils, when installed.

The piece length is the one :func:`choose_piece_length` picks for each data set, for everyone.
"cores" is CPU time (this process and its children) divided by wall time; "per core" is bytes
per CPU-second relative to the single hashlib stream's (robust to the machine being shared).
The targets from the issue are printed under the table.
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from owmanifest.manifest.hashing import hash_files
from owmanifest.manifest.torrent import (
    TorrentFile,
    build_torrent,
    choose_piece_length,
)

MiB = 1024 * 1024


@dataclass
class Result:
    name: str
    seconds: float  # wall, median
    cpu_seconds: float  # this process and its children, median

    @property
    def cores(self) -> float:
        return self.cpu_seconds / self.seconds


def _cpu_seconds() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime


def measure(name: str, run: Callable[[], object], runs: int) -> Result:
    walls, cpus = [], []
    for _ in range(runs):
        cpu, start = _cpu_seconds(), time.perf_counter()
        run()
        walls.append(time.perf_counter() - start)
        cpus.append(_cpu_seconds() - cpu)
    return Result(name, statistics.median(walls), statistics.median(cpus))


def make_data(top: Path, size_mib: int, files: int) -> tuple[Path, Path]:
    big = top / "big" / "big.bin"
    big.parent.mkdir(parents=True)
    with big.open("wb") as f:
        for _ in range(size_mib):
            f.write(os.urandom(MiB))
    rng = random.Random(1)
    tree = top / "tree"
    for i in range(files):
        path = tree / f"d{i // 500:03d}" / f"f{i:05d}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rng.randbytes(rng.randint(1024, 64 * 1024)))
    return big, tree


def warm(paths: Sequence[Path]) -> None:
    buf = bytearray(MiB)
    for path in paths:
        with path.open("rb", buffering=0) as f:
            while f.readinto(buf):
                pass


def hashlib_stream(paths: Sequence[Path]) -> bytes:
    h = hashlib.sha256()
    buf = memoryview(bytearray(MiB))
    for path in paths:
        with path.open("rb", buffering=0) as f:
            while n := f.readinto(buf):
                h.update(buf[:n])
    return h.digest()


def _stream_share(share: Sequence[tuple[str, int, int]]) -> bytes:
    h = hashlib.sha256()
    buf = memoryview(bytearray(MiB))
    for path, offset, length in share:
        with open(path, "rb", buffering=0) as f:
            f.seek(offset)
            while length:
                n = f.readinto(buf[: min(len(buf), length)])
                h.update(buf[:n])
                length -= n
    return h.digest()


def hashlib_per_core(paths: Sequence[Path]) -> None:
    """One hashlib stream per core, each over an equal share of the bytes: the ceiling."""
    cores = os.cpu_count() or 1
    sizes = [p.stat().st_size for p in paths]
    share_size = -(-sum(sizes) // cores)
    shares: list[list[tuple[str, int, int]]] = [[]]
    room = share_size
    for path, size in zip(paths, sizes, strict=True):
        offset = 0
        while offset < size:
            take = min(size - offset, room)
            shares[-1].append((str(path), offset, take))
            offset += take
            room -= take
            if room == 0:
                shares.append([])
                room = share_size
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(cores, mp_context=context) as pool:
        list(pool.map(_stream_share, [s for s in shares if s]))


def owmanifest_hybrid(root: Path, paths: Sequence[Path], piece_length: int) -> bytes:
    hashes = hash_files(paths, piece_length, v1=True)
    files = [
        TorrentFile(p.relative_to(root).as_posix(), h.size, h)
        for p, h in zip(paths, hashes, strict=True)
    ]
    return build_torrent(root.name, files, piece_length)


def libtorrent_hybrid(target: Path, piece_length: int) -> bytes:
    import libtorrent as lt

    ct = lt.create_torrent(lt.list_files(str(target)), piece_length, 0)
    lt.set_piece_hashes(ct, str(target.parent))
    return bytes(lt.bencode(ct.generate()))


def bench(
    label: str, target: Path, paths: Sequence[Path], runs: int, has_lt: bool
) -> tuple[int, int, list[Result]]:
    total = sum(p.stat().st_size for p in paths)
    piece_length = choose_piece_length(total, sum(1 for p in paths if p.stat().st_size))
    root = target if target.is_dir() else target.parent
    results = [
        measure("hashlib sha256 (1 stream)", lambda: hashlib_stream(paths), runs),
        measure("hashlib, 1 stream per core", lambda: hashlib_per_core(paths), runs),
        measure("owmanifest v2", lambda: hash_files(paths, piece_length, v1=False), runs),
        measure(
            "owmanifest hybrid v1+v2", lambda: owmanifest_hybrid(root, paths, piece_length), runs
        ),
    ]
    if has_lt:
        results.append(
            measure("libtorrent hybrid", lambda: libtorrent_hybrid(target, piece_length), runs)
        )
    if shutil.which("sha256sum"):
        cmd = ["sha256sum", *map(str, paths)]
        results.append(
            measure("sha256sum", lambda: subprocess.run(cmd, check=True, capture_output=True), runs)
        )
    return total, piece_length, results


def table(label: str, total: int, piece_length: int, results: list[Result]) -> dict[str, float]:
    base = next(r for r in results if r.name.startswith("hashlib"))
    lt_result = next((r for r in results if r.name.startswith("libtorrent")), None)
    base_rate = total / base.seconds / 1e6
    print(f"\n{label}: {total / 1e6:.0f} MB, piece length {piece_length // 1024} KiB")
    header = f"{'':28} {'MB/s':>8} {'x hashlib':>10} {'cores':>6} {'per core':>9}"
    print(header + (f" {'x lt hybrid':>12}" if lt_result else ""))
    ratios: dict[str, float] = {}
    for r in results:
        rate = total / r.seconds / 1e6
        per_core = base.cpu_seconds / r.cpu_seconds  # bytes per CPU-second, relative
        line = f"{r.name:28} {rate:8.0f} {rate / base_rate:10.2f} {r.cores:6.2f} {per_core:9.2f}"
        if lt_result:
            line += f" {lt_result.seconds / r.seconds:12.2f}"
        print(line)
        ratios[r.name] = per_core
        if lt_result:
            ratios[r.name + " vs lt"] = lt_result.seconds / r.seconds
    return ratios


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="size of the large file")
    parser.add_argument("--files", type=int, default=10000, help="files in the small-file tree")
    parser.add_argument("--runs", type=int, default=3, help="runs per contender (median)")
    parser.add_argument("--dir", help="where to create the temporary data (default: $TMPDIR)")
    args = parser.parse_args(argv)
    try:
        import libtorrent

        has_lt = True
        lt_version = libtorrent.__version__
    except ImportError:
        has_lt, lt_version = False, "not installed"

    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, libtorrent {lt_version}")
    with tempfile.TemporaryDirectory(prefix="owmanifest-bench-", dir=args.dir) as tmp:
        top = Path(tmp)
        start = time.perf_counter()
        big, tree = make_data(top, args.size_mib, args.files)
        small = sorted(p for p in tree.rglob("*") if p.is_file())
        warm([big, *small])
        print(f"generated and cached the data in {time.perf_counter() - start:.1f} s")

        total, piece, results = bench("large file", big, [big], args.runs, has_lt)
        big_ratios = table(f"one {args.size_mib} MiB file", total, piece, results)
        total, piece, results = bench("tree", tree, small, args.runs, has_lt)
        tree_ratios = table(f"{args.files} files of 1-64 KiB", total, piece, results)

    print("\ntargets:")
    v2 = big_ratios["owmanifest v2"]
    ceiling = big_ratios["hashlib, 1 stream per core"]
    print(f"  per core used >= 0.9x hashlib (v2, large file): {v2:.2f}")
    print(f"    (one hashlib stream per core reaches {ceiling:.2f} per core on this machine)")
    print(f"  per core used, v2 on the tree: {tree_ratios['owmanifest v2']:.2f}")
    if has_lt:
        speedup = tree_ratios["owmanifest hybrid v1+v2 vs lt"]
        print(f"  >= 1.5x libtorrent hybrid on the tree: {speedup:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
