"""Faults: ``kill -9`` of a running ``owmanifest fetch``, crashes at chosen points, disk full,
mirrors that go down. After each fault: nothing unverified at a final path, nothing verified
lost, and a re-run resumes without fetching any verified piece again.
"""

from __future__ import annotations

import contextlib
import errno
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from owmanifest.cli import main
from owmanifest.errors import FetchError
from owmanifest.transport import HttpTransport, IncompleteFetchError, LocalTransport, fetch
from owmanifest.verify import verify_tree

from ..unit.fixtures import DIDS
from .ledger import attack, false_accept, fault, lost
from .support import (
    REPO,
    FaultServer,
    PieceSet,
    SignedDataset,
    cli_command,
    environment,
    fault_server,
    free_port,
    make_signed_dataset,
    requested_pieces,
    tree,
    verified_pieces,
    wait_for,
    wrong_final_files,
)

SIZES = {
    "neurons/a.bin": 600_000,
    "neurons/b.bin": 300_017,
    "traces/c.bin": 250_000,
    "README.txt": 5_000,
    "empty.dat": 0,
}
KILLS = int(os.environ.get("OWMANIFEST_SECURITY_KILLS", "4"))
SEED = int(os.environ.get("OWMANIFEST_SECURITY_SEED", "20261125"))
DRIVER = Path(__file__).with_name("crash_driver.py")


@pytest.fixture(scope="module")
def ds(tmp_path_factory: pytest.TempPathFactory) -> SignedDataset:
    return make_signed_dataset(tmp_path_factory.mktemp("faults"), SIZES)


@pytest.fixture
def server(ds: SignedDataset) -> Iterator[FaultServer]:
    with fault_server(ds.root) as srv:
        yield srv


def fetch_args(
    ds: SignedDataset, dest: Path, *mirrors: str, transports: tuple[str, ...] = ("http",)
) -> list[str]:
    args = ["fetch", str(ds.manifest_path), str(dest), "--trust", DIDS["alice"]]
    for t in transports:
        args += ["--transport", t]
    args += ["--no-manifest-mirrors", "-q"]
    for m in mirrors:
        args += ["--mirror", m]
    return args


def check_after_fault(ds: SignedDataset, dest: Path, before: PieceSet, what: str) -> PieceSet:
    """No wrong file at a final path; no verified piece lost since ``before``."""
    wrong = wrong_final_files(dest, ds.data)
    if wrong:
        raise false_accept(f"{what}: unverified bytes at a final path: {wrong}")
    now = verified_pieces(dest, ds)
    gone = [(p, i) for p, idx in before.pieces.items() for i in idx if (p, i) not in now]
    if gone:
        raise lost(f"{what}: verified pieces lost: {gone[:5]}")
    return now


def check_no_refetch(ds: SignedDataset, server: FaultServer, epoch: int, had: PieceSet) -> None:
    plen = ds.manifest.piece_length
    again = [pi for pi in requested_pieces(server.requests(epoch=epoch), plen) if pi in had]
    if again:
        raise lost(f"run {epoch}: verified pieces fetched again: {again[:5]} ({len(again)})")


def finish(ds: SignedDataset, server: FaultServer, dest: Path, epoch: int, had: PieceSet) -> None:
    """Resume to the end: exit 0, exact tree, nothing verified fetched again, no litter."""
    server.epoch = epoch
    proc = subprocess.run(
        cli_command(*fetch_args(ds, dest, server.url())),
        capture_output=True,
        text=True,
        timeout=300,
        env=environment(),
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr
    assert tree(dest) == ds.data
    verify_tree(ds.verified, dest, strict=True)
    check_no_refetch(ds, server, epoch, had)
    assert not (dest / ".owmanifest").exists(), list((dest / ".owmanifest").rglob("*"))


def test_kill_9_at_random_points_then_resume(
    ds: SignedDataset, server: FaultServer, tmp_path: Path
) -> None:
    """A real ``owmanifest fetch`` over HTTP from a throttled mirror, killed with SIGKILL at
    random moments (seeded; ``OWMANIFEST_SECURITY_SEED``), ``OWMANIFEST_SECURITY_KILLS`` times;
    checked after every kill; then resumed to the end."""
    rng = random.Random(SEED)
    server.rate = 400_000.0
    dest = tmp_path / "dest"
    had = PieceSet()
    kills = 0
    for epoch in range(KILLS):
        server.epoch = epoch
        proc = subprocess.Popen(
            cli_command(*fetch_args(ds, dest, server.url("throttled"))),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=environment(),
            cwd=REPO,
        )
        try:
            # wait until bytes flow in this run, then a random moment more
            wait_for(
                lambda e=epoch, p=proc: (
                    any(r.sent for r in server.requests(epoch=e)) or p.poll() is not None
                ),
                120,
                "the fetch to start receiving",
            )
            time.sleep(rng.uniform(0.0, 0.8))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                fault("kill -9 of owmanifest fetch")
                kills += 1
        finally:
            _, err = proc.communicate(timeout=120)
        if proc.returncode == 0:  # finished before the kill: nothing more to interrupt
            break
        assert proc.returncode == -signal.SIGKILL, err
        check_no_refetch(ds, server, epoch, had)
        had = check_after_fault(ds, dest, had, f"after kill {epoch + 1}")
    assert kills >= 1
    finish(ds, server, dest, KILLS, had)


CRASH_POINTS = {
    # (point, n): the n-th time the point is reached
    "after-first-piece": ("piece-written", 1),
    "after-piece-7": ("piece-written", 7),
    "after-piece-40": ("piece-written", 40),
    "while-saving-state": ("state-replacing", 3),
    "before-first-file-exposed": ("before-expose", 1),
    "before-third-file-exposed": ("before-expose", 3),
    "after-first-file-exposed": ("after-expose", 1),
    "after-second-file-exposed": ("after-expose", 2),
    "after-fourth-file-exposed": ("after-expose", 4),
}


@pytest.mark.parametrize("point", CRASH_POINTS.values(), ids=CRASH_POINTS.keys())
def test_crash_at_a_chosen_point_then_resume(
    ds: SignedDataset, server: FaultServer, tmp_path: Path, point: tuple[str, int]
) -> None:
    """Death at a deterministic place (``crash_driver.py``): the same checks as for kill -9."""
    dest = tmp_path / "dest"
    server.epoch = 0
    name, n = point
    proc = subprocess.run(
        [sys.executable, str(DRIVER), name, str(n), "--", *fetch_args(ds, dest, server.url())],
        capture_output=True,
        text=True,
        timeout=300,
        env=environment(),
        cwd=REPO,
    )
    assert proc.returncode == 137, proc.stderr
    fault(f"crash at {name}")
    had = check_after_fault(ds, dest, PieceSet(), f"crash {name} #{n}")
    check_no_refetch(ds, server, 0, PieceSet())
    finish(ds, server, dest, 1, had)


# --- disk full ------------------------------------------------------------------------------------


@contextlib.contextmanager
def small_tmpfs(where: Path, size: int) -> Iterator[Path]:
    """A tmpfs of ``size`` bytes mounted at ``where`` (root only); skips if that is impossible."""
    where.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (the injected-ENOSPC test covers this)")
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(where)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if proc.returncode:
        pytest.skip(f"cannot mount a tmpfs: {proc.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True, timeout=60)


def test_disk_full_on_a_real_small_file_system(ds: SignedDataset, tmp_path: Path) -> None:
    """ENOSPC from a real (tmpfs) file system half-way: a clean error, the partial area kept,
    nothing wrong at a final path; with more room, the fetch resumes and completes without
    fetching a verified piece again."""
    with small_tmpfs(tmp_path / "mnt", 640 * 1024) as mnt, fault_server(ds.root) as srv:
        dest = mnt / "dest"
        fault("disk full (tmpfs)")
        with pytest.raises(FetchError) as info:
            fetch(ds.verified, dest, [HttpTransport(srv.url())], piece_layers=ds.layers)
        assert "No space left" in str(info.value) or "ENOSPC" in str(info.value)
        assert not isinstance(info.value, IncompleteFetchError) or info.value.report
        had = check_after_fault(ds, dest, PieceSet(), "disk full")
        assert had.count() > 0
        assert (dest / ".owmanifest" / "partial").is_dir()  # kept for the resume
        subprocess.run(
            ["mount", "-o", "remount,size=8m", str(mnt)], check=True, capture_output=True
        )
        srv.epoch = 1
        fetch(ds.verified, dest, [HttpTransport(srv.url())], piece_layers=ds.layers)
        assert tree(dest) == ds.data
        check_no_refetch(ds, srv, 1, had)
        assert not (dest / ".owmanifest").exists()


@pytest.mark.parametrize("where", ["piece", "state", "expose"])
def test_disk_full_injected(
    ds: SignedDataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    """ENOSPC injected at each kind of write (a piece, the piece state, the final move)."""
    from owmanifest.transport import _partial

    calls = 0

    def enospc(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def after(n: int, original: object) -> object:
        def wrapper(*args: object, **kwargs: object) -> object:
            nonlocal calls
            calls += 1
            if calls >= n:
                enospc()
            return original(*args, **kwargs)  # type: ignore[operator]

        return wrapper

    if where == "piece":
        monkeypatch.setattr(
            _partial.PartialFile, "write_piece", after(20, _partial.PartialFile.write_piece)
        )
    elif where == "state":
        monkeypatch.setattr(_partial, "atomic_write_json", after(3, _partial.atomic_write_json))
    else:
        monkeypatch.setattr(
            _partial.PartialFile, "finalize", after(2, _partial.PartialFile.finalize)
        )
    dest = tmp_path / "dest"
    fault(f"ENOSPC injected ({where})")
    with pytest.raises(FetchError) as info:
        fetch(ds.verified, dest, [LocalTransport(ds.root)], piece_layers=ds.layers)
    assert "No space left" in str(info.value)
    had = check_after_fault(ds, dest, PieceSet(), f"ENOSPC at {where}")
    monkeypatch.undo()
    fetch(ds.verified, dest, [LocalTransport(ds.root)], piece_layers=ds.layers)
    assert tree(dest) == ds.data
    check_after_fault(ds, dest, had, f"resume after ENOSPC at {where}")


# --- mirrors down ---------------------------------------------------------------------------------


def test_all_mirrors_down_lists_each_one_and_why(
    ds: SignedDataset, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every mirror fails in its own way: exit 1, and the message names each mirror with the
    reason, for each file; nothing is written at a final path."""
    empty = tmp_path / "empty"
    empty.mkdir()
    refused_port = free_port()  # nothing listens there
    with fault_server(ds.root) as srv, fault_server(empty) as nothing:
        mirrors = {
            f"http://127.0.0.1:{refused_port}/": "cannot connect",
            srv.url("down"): "HTTP 503",
            nothing.url(): "does not have",
            str(tmp_path / "not-mounted"): "not a directory",
        }
        dest = tmp_path / "dest"
        fault("all mirrors down", len(mirrors))
        code = main(fetch_args(ds, dest, *mirrors, transports=("http", "file")))
    err = capsys.readouterr().err
    assert code == 1, err
    for mirror, why in mirrors.items():
        assert mirror in err, (mirror, err)
        assert why in err, (why, err)
    assert "4 of 5 file(s) could not be fetched" in err  # the empty file needs no source
    assert tree(dest) == {"empty.dat": b""}


def test_mirror_dies_mid_transfer_then_the_next_one_finishes(
    ds: SignedDataset, tmp_path: Path
) -> None:
    """The first mirror is shut down while sending; the fetch moves on and keeps every piece
    the first one delivered."""
    dest = tmp_path / "dest"
    with fault_server(ds.root) as first, fault_server(ds.root) as second:
        first.rate = 300_000.0
        first.chunk = 4096

        def kill_first() -> None:
            wait_for(lambda: first.bytes_sent > 100_000, 120, "the first mirror to send")
            first.stopping.set()
            first.shutdown()
            first.server_close()
            fault("mirror shut down mid-transfer")

        import threading

        killer = threading.Thread(target=kill_first, daemon=True)
        killer.start()
        report = fetch(
            ds.verified,
            dest,
            [HttpTransport(first.url("throttled"), timeout=10), HttpTransport(second.url())],
            piece_layers=ds.layers,
            stall_timeout=5,
        )
        killer.join(60)
    assert tree(dest) == ds.data
    assert report.bytes_by_source.get(first.url("throttled"), 0) > 0
    assert report.problems
    plen = ds.manifest.piece_length
    from_second = requested_pieces(second.requests(), plen)
    assert len(from_second) == len(set(from_second))  # nothing asked twice of the second
    attack("transport/mirror-dies")
