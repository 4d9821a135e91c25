#!/usr/bin/env python3
"""owmanifest against its peers: one table, a row per workload and a column per system.

Usage::

    python bench/run.py                 # the full suite (~15 min on 2 cores, ~12 GB free RAM)
    python bench/run.py --quick         # a smoke run on small data (~1 min)
    python bench/run.py --runs 5 --output table.md

Everything is generated in a temporary directory (``--dir`` to choose where); nothing is written
in the repository. The data: one file of random bytes (1 GiB), a tree of 10,000 files of
1-64 KiB, a tree of 100,000 files of 0-1 KiB (manifest-size workloads), a 10 GiB sparse file
(memory bounded by the manifest, not the data), and a synthetic signed manifest of 1,000,000
files (``show`` and ``verify`` of the signature at that size). The page cache is warmed first.

Every measurement is a whole process (``owmanifest`` as a user runs it, each peer tool the
same way), timed from spawn to exit; CPU time and peak RSS come from ``wait4`` (so they include
worker processes). Each cell is the median of ``--runs`` runs, the min-max range, the ratio to
the row's reference measured in the same run (``ref time / time``: above 1 is faster) and the
peak RSS of the largest process. The ``engine`` rows time :func:`hash_files` inside the process
(no interpreter start-up), against a hashlib stream timed the same way.

Systems: ``owmanifest`` (this checkout, ``python -m owmanifest``); ``hashlib``: one SHA-256
stream, 1 MiB reads, one thread (the reference); ``libtorrent``: hybrid v1+v2
``create_torrent`` + ``set_piece_hashes`` (its own piece-length choice unless stated);
``sha256sum`` and ``b3sum`` (when installed: ``find | xargs``, and ``-c`` to verify); ``bagit``:
bagit-python's ``bagit.py --sha256 --processes N`` (make, on a hard-linked copy) and
``--validate``. A peer that is not installed shows ``n/a``.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import os
import platform
import random
import re
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["main"]

REPO = Path(__file__).resolve().parents[1]
MiB = 1 << 20
GiB = 1 << 30
CORES = os.cpu_count() or 1
DATASET = "https://openworm.org/data/bench"
CREATED = "2026-01-01T00:00:00Z"


# --- measuring ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """One process: wall and CPU seconds, peak RSS in bytes."""

    wall: float
    cpu: float
    rss: int


@dataclass
class Cell:
    """The runs of one system on one workload."""

    runs: list[Run] = field(default_factory=list)
    note: str = ""

    @property
    def wall(self) -> float:
        return statistics.median(r.wall for r in self.runs)

    @property
    def cpu(self) -> float:
        return statistics.median(r.cpu for r in self.runs)

    @property
    def rss(self) -> int:
        return max(r.rss for r in self.runs)

    @property
    def cores(self) -> float:
        return self.cpu / self.wall if self.wall else 0.0


def _env(state: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["OWMANIFEST_STATE_DIR"] = str(state / "state")
    env["OWMANIFEST_CONFIG_DIR"] = str(state / "config")
    env.pop("PYTHONWARNINGS", None)
    # Run with compiled bytecode, as pip installs a package, even where the environment says
    # not to write it (PYTHONDONTWRITEBYTECODE=1 here would recompile owmanifest's modules on
    # every run: ~30-40 ms per command). The bytecode goes to the bench's temporary directory.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(state / "pycache")
    return env


def _compile(env: dict[str, str]) -> None:
    """Compile owmanifest's modules once, before anything is timed."""
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(REPO / "owmanifest")], env=env, check=True
    )


def run_once(argv: Sequence[str], env: dict[str, str], internal: bool = False) -> Run:
    """Run ``argv``; with ``internal``, the process prints its own ``{"seconds", "cpu"}``."""
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(
            list(argv), stdout=subprocess.PIPE, stderr=err, env=env, stdin=subprocess.DEVNULL
        )
        assert proc.stdout is not None
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        proc.stdout.close()
        if proc.returncode != 0:
            err.seek(0)
            message = err.read().decode(errors="replace")[-2000:]
            raise RuntimeError(f"{' '.join(argv)[:200]} exited {proc.returncode}: {message}")
    cpu = usage.ru_utime + usage.ru_stime
    if internal:
        reported = json.loads(out.decode().strip().splitlines()[-1])
        wall, cpu = reported["seconds"], reported["cpu"]
    return Run(wall, cpu, usage.ru_maxrss * 1024)


def measure(
    argv: Sequence[str],
    env: dict[str, str],
    runs: int,
    *,
    setup: Callable[[], object] | None = None,
    internal: bool = False,
    label: str = "",
) -> Cell:
    cell = Cell()
    for _ in range(runs):
        if setup is not None:
            setup()
        cell.runs.append(run_once(argv, env, internal))
    print(f"  {label:58} {cell.wall:8.3f} s  {cell.rss / MiB:7.0f} MB", file=sys.stderr)
    return cell


# --- workers: run in a child process ------------------------------------------------------------


def _files_under(target: str) -> list[str]:
    if os.path.isfile(target):
        return [target]
    out: list[str] = []
    for parent, dirs, files in os.walk(target):
        dirs.sort()
        out.extend(os.path.join(parent, name) for name in sorted(files))
    return out


def _report(start: float, cpu_start: float) -> None:
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    used = cpu.ru_utime + cpu.ru_stime + children.ru_utime + children.ru_stime - cpu_start
    print(json.dumps({"seconds": time.perf_counter() - start, "cpu": used}))


def _cpu_now() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime


def _stream(share: Sequence[tuple[str, int, int]]) -> str:
    h = hashlib.sha256()
    # Reads of up to 1 MiB, into a buffer no larger than the largest read: on this VM a fresh
    # process's first pass through a 1 MiB buffer is ~1.6x slower when every file is smaller
    # (0.58-0.64 s against 0.38 s on the 10,000-file tree; a 64 KiB buffer shows no such
    # penalty, nor does owmanifest's engine, which sizes its buffer the same way).
    largest = max((length for _, _, length in share), default=1)
    buf = memoryview(bytearray(min(MiB, max(largest, 1))))
    for path, offset, length in share:
        with open(path, "rb", buffering=0) as f:
            f.seek(offset)
            while length:
                n = f.readinto(buf[: min(len(buf), length)])
                if not n:
                    break
                h.update(buf[:n])
                length -= n
    return h.hexdigest()


def worker(kind: str, args: Sequence[str]) -> None:
    """The child side of a measurement (``bench/run.py --worker KIND ARGS...``)."""
    if kind == "hashlib":  # one stream over every file, the reference
        start, cpu = time.perf_counter(), _cpu_now()
        paths = _files_under(args[0])
        _stream([(p, 0, os.path.getsize(p)) for p in paths])
        _report(start, cpu)
    elif kind == "hashlib-per-core":  # one stream per core over equal shares: the ceiling
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        start, cpu = time.perf_counter(), _cpu_now()
        paths = _files_under(args[0])
        sizes = [os.path.getsize(p) for p in paths]
        per = -(-sum(sizes) // CORES)
        shares: list[list[tuple[str, int, int]]] = [[]]
        room = per
        for path, size in zip(paths, sizes, strict=True):
            offset = 0
            while offset < size:
                take = min(size - offset, room)
                shares[-1].append((path, offset, take))
                offset, room = offset + take, room - take
                if room == 0:
                    shares.append([])
                    room = per
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(CORES, mp_context=context) as pool:
            list(pool.map(_stream, [s for s in shares if s]))
        _report(start, cpu)
    elif kind == "engine":  # owmanifest's hashing engine alone
        from owmanifest.manifest.hashing import hash_files
        from owmanifest.manifest.torrent import TorrentFile, build_torrent

        target, piece, v1 = args[0], int(args[1]), args[2] == "hybrid"
        start, cpu = time.perf_counter(), _cpu_now()
        paths = _files_under(target)
        hashes = hash_files(paths, piece, v1=v1)
        if v1:  # a hybrid torrent, as create builds it
            files = [
                TorrentFile(os.path.relpath(p, target) if p != target else "f", h.size, h)
                for p, h in zip(paths, hashes, strict=True)
            ]
            build_torrent("bench", files, piece)
        _report(start, cpu)
    elif kind == "libtorrent":
        import libtorrent as lt

        target, piece = args[0], int(args[1])
        start, cpu = time.perf_counter(), _cpu_now()
        ct = lt.create_torrent(lt.list_files(target), piece, 0)
        lt.set_piece_hashes(ct, os.path.dirname(os.path.abspath(target)))
        lt.bencode(ct.generate())
        _report(start, cpu)
    elif kind == "synthetic":  # an unsigned manifest of N files, without the files
        from owmanifest.manifest.digest import BEP52, Digest
        from owmanifest.manifest.jsonld import dumps, manifest_to_jsonld
        from owmanifest.manifest.model import FileEntry, Manifest

        count, out, did = int(args[0]), Path(args[1]), args[2]
        entries = tuple(
            FileEntry(
                f"d{i // 1000:04d}/f{i:07d}.dat",
                1000 + i % 5000,
                Digest(BEP52, hashlib.sha256(b"%d" % i).digest()),
            )
            for i in range(count)
        )
        manifest = Manifest(
            id=f"{DATASET}/synthetic-{count}",
            version=1,
            files=entries,
            signers=(did,),
            threshold=1,
            piece_length=1 << 20,
            created=CREATED,
        )
        out.write_bytes(dumps(manifest_to_jsonld(manifest)))
    else:
        raise SystemExit(f"unknown worker {kind!r}")


# --- data ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sizes:
    big_mib: int
    tree_files: int
    meta_files: int
    huge_files: int
    sparse_gib: float
    runs: int


FULL = Sizes(big_mib=1024, tree_files=10_000, meta_files=100_000, huge_files=1_000_000,
             sparse_gib=10, runs=3)  # fmt: skip
QUICK = Sizes(big_mib=64, tree_files=500, meta_files=2_000, huge_files=10_000,
              sparse_gib=0.25, runs=1)  # fmt: skip


def make_big(path: Path, mib: int) -> None:
    path.parent.mkdir(parents=True)
    with path.open("wb") as f:
        for _ in range(mib):
            f.write(os.urandom(MiB))


def make_tree(top: Path, count: int, low: int, high: int, seed: int) -> None:
    rng = random.Random(seed)
    for i in range(count):
        d = top / f"d{i // 500:04d}"
        if i % 500 == 0:
            d.mkdir(parents=True)
        (d / f"f{i:07d}.bin").write_bytes(rng.randbytes(rng.randint(low, high)))


def warm(target: Path) -> None:
    buf = bytearray(MiB)
    for path in _files_under(str(target)):
        with open(path, "rb", buffering=0) as f:
            while f.readinto(buf):
                pass


# --- the suite ----------------------------------------------------------------------------------

SYSTEMS = ("owmanifest", "hashlib", "hashlib per core", "libtorrent", "sha256sum", "b3sum", "bagit")


Spec = tuple[str, Sequence[str], dict[str, Any]]
"""A system to measure on a row: (name, argv, options: ``setup`` callable, ``internal``)."""


@dataclass
class Row:
    workload: str
    reference: str | None
    cells: dict[str, Cell] = field(default_factory=dict)
    note: str = ""


class Suite:
    def __init__(self, top: Path, sizes: Sizes, runs: int) -> None:
        self.top = top
        self.sizes = sizes
        self.runs = runs
        self.env = _env(top)
        _compile(self.env)
        self.py = sys.executable
        self.ow = [self.py, "-m", "owmanifest"]
        self.me = [self.py, str(Path(__file__).resolve()), "--worker"]
        self.rows: list[Row] = []
        self.extra: dict[str, object] = {}
        self.has_lt = self._can_import("libtorrent")
        self.bagit = shutil.which("bagit.py") or _venv_tool("bagit.py")
        self.tools = {t: shutil.which(t) for t in ("sha256sum", "b3sum")}

    def _can_import(self, module: str) -> bool:
        code = f"import {module}"
        return subprocess.run([self.py, "-c", code], capture_output=True).returncode == 0

    def cell(self, row: Row, system: str, argv: Sequence[str], **kw: object) -> Cell:
        cell = measure(argv, self.env, self.runs, label=f"{row.workload} | {system}", **kw)  # type: ignore[arg-type]
        row.cells[system] = cell
        return cell

    def cells(self, row: Row, specs: Sequence[Spec]) -> None:
        """Measure several systems on one row with their runs interleaved (A B C, A B C, ...).

        This VM's speed drifts, by up to 2x over minutes; runs taken one system after the other
        would turn that drift into ratios. Interleaved, every system sees the same machine.
        """
        for system, _, _ in specs:
            row.cells[system] = Cell()
        for _ in range(self.runs):
            for system, argv, kw in specs:
                setup = kw.get("setup")
                if setup is not None:
                    setup()
                row.cells[system].runs.append(run_once(argv, self.env, bool(kw.get("internal"))))
        for system, _, _ in specs:
            cell = row.cells[system]
            label = f"{row.workload} | {system}"
            print(f"  {label:58} {cell.wall:8.3f} s  {cell.rss / MiB:7.0f} MB", file=sys.stderr)

    def keygen(self) -> str:
        key = self.top / "bench.key"
        out = subprocess.run(
            [*self.ow, "keygen", "--out", str(key), "-q"],
            env=self.env,
            check=True,
            capture_output=True,
            text=True,
        )
        self.key = key
        return out.stdout.strip()

    def create_argv(self, directory: Path, out: Path, did: str, name: str) -> list[str]:
        dataset = f"{DATASET}/{_slug(name)}"
        return [*self.ow, "create", str(directory), "--id", dataset, "--version", "1",
                "--signer", did, "-o", str(out), "--force", "-q", "--created", CREATED]  # fmt: skip

    def hashing_rows(self, name: str, target: Path, did: str) -> None:
        """create and verify rows over ``target`` (a file or a tree), every system."""
        work = self.top / "work" / _slug(name)
        work.mkdir(parents=True)
        manifest = work / "m.jsonld"
        directory = target if target.is_dir() else target.parent
        create = Row(f"create · {name}", "hashlib")
        self.rows.append(create)
        hashlib_spec: Spec = ("hashlib", [*self.me, "hashlib", str(directory)], {})
        specs: list[Spec] = [
            ("owmanifest", self.create_argv(directory, manifest, did, name), {}),
            hashlib_spec,
        ]
        if self.has_lt:
            specs.append(("libtorrent", [*self.me, "libtorrent", str(directory), "0"], {}))
        lists = {}
        for tool, path in self.tools.items():
            if path:
                lists[tool] = work / f"{tool}.txt"
                script = (
                    f"cd {shlex.quote(str(directory))} && find . -type f -print0 | sort -z | "
                    f"xargs -0 {path} > {shlex.quote(str(lists[tool]))}"
                )
                specs.append((tool, ["sh", "-c", script], {}))
        bag = work / "bag"
        if self.bagit:

            def fresh_copy() -> None:
                shutil.rmtree(bag, ignore_errors=True)
                subprocess.run(["cp", "-al", str(directory), str(bag)], check=True)

            specs.append(("bagit", [self.bagit, "--quiet", "--sha256", "--processes",
                          str(CORES), str(bag)], {"setup": fresh_copy}))  # fmt: skip
        self.cells(create, specs)

        subprocess.run([*self.ow, "sign", str(manifest), "--key", str(self.key), "-q"],
                       env=self.env, check=True)  # fmt: skip
        verify = Row(f"verify · {name}", "hashlib")
        self.rows.append(verify)
        specs = [
            ("owmanifest", [*self.ow, "verify", str(manifest), str(directory),
             "--trust", did, "--no-state", "-q"], {}),
            hashlib_spec,  # again, interleaved with these runs
        ]  # fmt: skip
        for tool, listing in lists.items():
            script = (
                f"cd {shlex.quote(str(directory))} && {self.tools[tool]} -c --quiet "
                f"{shlex.quote(str(listing))}"
            )
            specs.append((tool, ["sh", "-c", script], {}))
        if self.bagit:
            specs.append(("bagit", [self.bagit, "--quiet", "--validate", "--processes",
                          str(CORES), str(bag)], {}))  # fmt: skip
        self.cells(verify, specs)
        self.extra[f"piece length · {name}"] = json.loads(manifest.read_text())["pieceLength"]

    def engine_rows(self, name: str, target: Path) -> None:
        """The hashing engine alone (in-process timing) against hashlib and its per-core ceiling."""
        directory = str(target if target.is_dir() else target.parent)
        piece = int(self.extra[f"piece length · {name}"])  # type: ignore[call-overload]
        internal = {"internal": True}
        hashlib_spec: Spec = ("hashlib", [*self.me, "hashlib", directory], internal)
        for mode in ("v2", "hybrid"):
            row = Row(f"engine {mode} · {name}", "hashlib")
            self.rows.append(row)
            specs: list[Spec] = [
                ("owmanifest", [*self.me, "engine", directory, str(piece), mode], internal),
                hashlib_spec,
            ]
            if mode == "v2":
                specs.append(("hashlib per core", [*self.me, "hashlib-per-core", directory],
                              internal))  # fmt: skip
            elif self.has_lt:  # libtorrent at the same piece length: the same work
                specs.append(("libtorrent", [*self.me, "libtorrent", directory, str(piece)],
                              internal))  # fmt: skip
                row.note = f"libtorrent at the same {piece // 1024} KiB pieces"
            self.cells(row, specs)

    def sparse_rows(self, did: str) -> None:
        directory = self.top / "sparse"
        directory.mkdir()
        size = int(self.sizes.sparse_gib * GiB)
        with (directory / "sparse.bin").open("wb") as f:
            f.truncate(size)
        name = f"{self.sizes.sparse_gib:g} GiB sparse file"
        manifest = self.top / "work" / "sparse.jsonld"
        create = Row(f"create · {name}", "hashlib")
        self.rows.append(create)
        hashlib_spec: Spec = ("hashlib", [*self.me, "hashlib", str(directory)], {})
        self.cells(create, [
            ("owmanifest", self.create_argv(directory, manifest, did, "sparse"), {}),
            hashlib_spec,
        ])  # fmt: skip
        subprocess.run([*self.ow, "sign", str(manifest), "--key", str(self.key), "-q"],
                       env=self.env, check=True)  # fmt: skip
        verify = Row(f"verify · {name}", "hashlib")
        self.rows.append(verify)
        self.cells(verify, [
            ("owmanifest", [*self.ow, "verify", str(manifest), str(directory),
             "--trust", did, "--no-state", "-q"], {}),
            hashlib_spec,
        ])  # fmt: skip

    def metadata_rows(self, did: str) -> None:
        count = self.sizes.meta_files
        tree = self.top / "meta"
        make_tree(tree, count, 0, 1024, seed=3)
        warm(tree)
        name = f"{count:,} files"
        manifest = self.top / "work" / "meta.jsonld"
        row = Row(f"create · {name} of 0-1 KiB", None, note="target <= 5 s")
        self.rows.append(row)
        self.cell(row, "owmanifest", self.create_argv(tree, manifest, did, "meta"))
        if self.has_lt:
            self.cell(row, "libtorrent", [*self.me, "libtorrent", str(tree), "0"])
        sha = self.tools.get("sha256sum")
        if sha:
            self.cell(row, "sha256sum", ["sh", "-c", f"cd {shlex.quote(str(tree))} && find . "
                      f"-type f -print0 | sort -z | xargs -0 {sha} > /dev/null"])  # fmt: skip
        if self.bagit:
            bag = self.top / "work" / "meta-bag"

            def fresh_copy() -> None:
                shutil.rmtree(bag, ignore_errors=True)
                subprocess.run(["cp", "-al", str(tree), str(bag)], check=True)

            self.cell(row, "bagit", [self.bagit, "--quiet", "--sha256", "--processes",
                      str(CORES), str(bag)], setup=fresh_copy)  # fmt: skip
        unsigned = manifest.read_bytes()
        signed = self.top / "work" / "meta-signed.jsonld"

        def fresh_manifest() -> None:
            signed.write_bytes(unsigned)

        row = Row(f"sign · {name}", None, note="target <= 5 s")
        self.rows.append(row)
        self.cell(row, "owmanifest", [*self.ow, "sign", str(signed), "--key", str(self.key),
                  "-q"], setup=fresh_manifest)  # fmt: skip
        row = Row(f"verify signature · {name}", None, note="target <= 5 s")
        self.rows.append(row)
        self.cell(row, "owmanifest", [*self.ow, "verify", str(signed), "--trust", did,
                  "--no-state", "-q"])  # fmt: skip
        row = Row(f"verify --fast · {name}, unchanged tree", None)
        self.rows.append(row)
        fast = [*self.ow, "verify", str(signed), str(tree), "--trust", did, "--no-state", "-q",
                "--fast"]  # fmt: skip
        run_once(fast, self.env)  # fills the cache
        self.cell(row, "owmanifest", fast)
        row.note = "after one full verify"
        touched = Row(f"verify --fast · {name}, one file changed", None)
        self.rows.append(touched)
        some_file = next(p for p in sorted(tree.rglob("*")) if p.is_file())

        def touch() -> None:  # a new mtime before each run: one file to hash again
            os.utime(some_file, ns=(time.time_ns(), time.time_ns()))

        self.cell(touched, "owmanifest", fast, setup=touch)
        touched.note = "its mtime, before each run"
        full = Row(f"verify (full) · {name}", None)
        self.rows.append(full)
        self.cell(full, "owmanifest", fast[:-1])
        shutil.rmtree(tree)

    def huge_rows(self, did: str) -> None:
        count = self.sizes.huge_files
        name = f"{count:,} files"
        manifest = self.top / "work" / "huge.jsonld"
        subprocess.run([*self.me, "synthetic", str(count), str(manifest), did], env=self.env,
                       check=True)  # fmt: skip
        sign = Row(f"sign · {name} (synthetic)", None, note="one run")
        self.rows.append(sign)
        sign.cells["owmanifest"] = Cell(
            [run_once([*self.ow, "sign", str(manifest), "--key", str(self.key), "-q"], self.env)]
        )
        print(f"  {sign.workload:58} {sign.cells['owmanifest'].wall:8.3f} s", file=sys.stderr)
        self.extra["manifest bytes · huge"] = manifest.stat().st_size
        show = Row(f"show · {name}", None)
        self.rows.append(show)
        self.cell(show, "owmanifest", [*self.ow, "show", str(manifest), "--no-files"])
        verify = Row(f"verify signature · {name}", None)
        self.rows.append(verify)
        self.cell(verify, "owmanifest", [*self.ow, "verify", str(manifest), "--trust", did,
                  "--no-state", "-q"])  # fmt: skip

    def help_rows(self) -> None:
        for args in (["--help"], ["verify", "--help"]):
            row = Row(f"owmanifest {' '.join(args)}", None, note="target <= 0.3 s")
            self.rows.append(row)
            self.cell(row, "owmanifest", [*self.ow, *args])

    def run(self, only: Sequence[str] = ()) -> None:
        s = self.sizes

        def wanted(part: str) -> bool:
            return not only or part in only

        print("generating data...", file=sys.stderr)
        (self.top / "work").mkdir()
        did = self.keygen()
        if wanted("help"):
            self.help_rows()
        if wanted("hashing") or wanted("engine"):
            big = self.top / "big" / "big.bin"
            make_big(big, s.big_mib)
            tree = self.top / "tree"
            make_tree(tree, s.tree_files, 1024, 64 * 1024, seed=1)
            warm(big)
            warm(tree)
            mib = s.big_mib
            big_name = f"{mib} MiB file" if mib < 1024 else f"{mib // 1024} GiB file"
            tree_name = f"{s.tree_files:,} files of 1-64 KiB"
            self.hashing_rows(big_name, big, did)  # also sets the piece lengths engine uses
            self.hashing_rows(tree_name, tree, did)
            if wanted("engine"):
                self.engine_rows(big_name, big)
                self.engine_rows(tree_name, tree)
        if wanted("sparse"):
            self.sparse_rows(did)
        if wanted("metadata"):
            self.metadata_rows(did)
        if wanted("huge"):
            self.huge_rows(did)


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-")


def _venv_tool(name: str) -> str | None:
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else None


# --- output -------------------------------------------------------------------------------------


def _seconds(value: float) -> str:
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def _cell_text(cell: Cell, reference: Cell | None) -> str:
    low = min(r.wall for r in cell.runs)
    high = max(r.wall for r in cell.runs)
    text = _seconds(cell.wall)
    if len(cell.runs) > 1:
        text += f" [{_seconds(low)}-{_seconds(high)}]"
    if reference is not None:
        text += f" · {reference.wall / cell.wall:.2f}x"
    return text + f" · {cell.rss / MiB:.0f} MB"


def table(rows: Sequence[Row]) -> str:
    used = [s for s in SYSTEMS if any(s in r.cells for r in rows)]
    lines = [
        "| workload | " + " | ".join(used) + " | note |",
        "|---|" + "---|" * len(used) + "---|",
    ]
    for row in rows:
        ref = row.cells.get(row.reference) if row.reference else None
        cells = [_cell_text(row.cells[s], ref) if s in row.cells else "n/a" for s in used]
        lines.append(f"| {row.workload} | " + " | ".join(cells) + f" | {row.note} |")
    return "\n".join(lines)


def _find(rows: Sequence[Row], prefix: str) -> Row | None:
    return next((r for r in rows if r.workload.startswith(prefix)), None)


def targets(suite: Suite) -> str:
    rows = suite.rows
    out = []

    def per_core(row: Row | None) -> str:
        if row is None or "owmanifest" not in row.cells or "hashlib" not in row.cells:
            return "n/a"
        own, ref = row.cells["owmanifest"], row.cells["hashlib"]
        text = f"{ref.cpu / own.cpu:.2f} per core used ({own.cores:.2f} cores"
        text += f", {ref.wall / own.wall:.2f}x one stream's wall time)"
        ceiling = row.cells.get("hashlib per core")
        if ceiling is not None:
            text += f"; one hashlib stream per core reaches {ref.cpu / ceiling.cpu:.2f} per core"
        return text

    for row in rows:
        if row.workload.startswith("engine v2"):
            out.append(f"- {row.workload}: {per_core(row)}")
        if row.workload.startswith(("create ·", "verify ·")) and "hashlib" in row.cells:
            own, ref = row.cells.get("owmanifest"), row.cells["hashlib"]
            if own is not None:
                out.append(
                    f"- {row.workload}: {ref.wall / own.wall:.2f}x one hashlib stream, "
                    f"{own.cores:.2f} cores, {ref.cpu / own.cpu:.2f} per core used"
                )
    for row in rows:
        if row.reference is None:
            continue
        if row.workload.startswith(("create ·", "engine hybrid")) and "libtorrent" in row.cells:
            own, lt = row.cells["owmanifest"], row.cells["libtorrent"]
            out.append(f"- {row.workload}: {lt.wall / own.wall:.2f}x libtorrent hybrid "
                       f"({row.note or 'libtorrent choosing its piece length'})")  # fmt: skip
    for row in rows:
        if row.reference is None:
            cell = row.cells["owmanifest"]
            note = f" ({row.note})" if row.note else ""
            out.append(f"- {row.workload}: {_seconds(cell.wall)}, peak RSS "
                       f"{cell.rss / MiB:.0f} MB{note}")  # fmt: skip
        elif "sparse" in row.workload:
            cell = row.cells["owmanifest"]
            out.append(f"- {row.workload}: peak RSS {cell.rss / MiB:.0f} MB")
    for key, value in suite.extra.items():
        out.append(f"- {key}: {value}")
    return "\n".join(out)


def machine() -> str:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = []
    for dist in ("pyoxigraph", "libtorrent", "PyNaCl", "jsonschema", "bagit"):
        try:
            versions.append(f"{dist} {importlib.metadata.version(dist)}")
        except importlib.metadata.PackageNotFoundError:
            versions.append(f"{dist} n/a")
    tools = []
    for tool in ("sha256sum", "b3sum"):
        path = shutil.which(tool)
        if path:
            first = subprocess.run([path, "--version"], capture_output=True, text=True).stdout
            tools.append(first.splitlines()[0] if first else tool)
    load = os.getloadavg()
    sys.path.insert(0, str(REPO))
    from owmanifest.manifest.document import compiled_reader
    from owmanifest.manifest.hashing import engine, sha_extensions

    reader = "compiled" if compiled_reader() else "python"
    return (
        f"CPU: {cpu}, {CORES} cores; {platform.platform()}\n"
        f"Python {platform.python_version()}; " + ", ".join(versions) + "\n"
        f"owmanifest hashing engine: {engine()}"
        f"{' (SHA extensions, two blocks at a time)' if sha_extensions() else ''}, "
        f"manifest one pass: {reader} "
        "(OWMANIFEST_PURE_PYTHON=1 for pure Python)\n"
        f"Tools: {', '.join(tools) or 'none'}; load average at start {load[0]:.2f}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small data, one run: a smoke test")
    parser.add_argument("--runs", type=int, help="runs per cell (median; default 3, quick 1)")
    parser.add_argument("--dir", help="where to create the temporary data (default: $TMPDIR)")
    parser.add_argument("--output", help="also write the Markdown report to this file")
    parser.add_argument(
        "--only",
        action="append",
        choices=["help", "hashing", "engine", "sparse", "metadata", "huge"],
        help="run only these parts (repeatable; engine implies hashing)",
    )
    parser.add_argument("--worker", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker[0], args.worker[1:])
        return 0
    sizes = QUICK if args.quick else FULL
    runs = args.runs or sizes.runs
    header = machine()
    print(header, file=sys.stderr)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="owmanifest-bench-", dir=args.dir) as tmp:
        suite = Suite(Path(tmp), sizes, runs)
        suite.run(args.only or ())
    report = (
        f"{header}\nMedian of {runs} run(s) [min-max] · ratio to the row's reference (hashlib: "
        f"one SHA-256 stream; above 1 is faster) · peak RSS of the largest process. "
        f"Suite time {time.perf_counter() - start:.0f} s.\n\n"
        f"{table(suite.rows)}\n\nTargets:\n{targets(suite)}\n"
    )
    print(report)
    if args.output:
        Path(args.output).write_text(report, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
