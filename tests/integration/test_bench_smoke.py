"""The benchmark suite runs end to end on small data (``bench/run.py --quick``)."""

from __future__ import annotations

import platform
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "run.py"


@pytest.mark.slow
def test_bench_quick_prints_the_table(tmp_path: Path) -> None:
    out = tmp_path / "report.md"
    done = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--dir", str(tmp_path), "--output", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = out.read_text(encoding="utf-8")
    assert "| workload | owmanifest | hashlib |" in report
    for workload in ("create · 64 MiB file", "verify · 500 files", "sign · 2,000 files",
                     "show · 10,000 files", "verify --fast"):  # fmt: skip
        assert workload in report
    assert list(tmp_path.iterdir()) == [out]  # the generated data is gone


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.machine() != "x86_64"
    or shutil.which("cc") is None,
    reason="the SHA lanes benchmark is x86-64 C, built with the system compiler",
)  # fmt: skip
def test_sha_lanes_digests_are_checked_and_printed() -> None:
    # Every lane's digest is checked against hashlib by the script (exit 1 otherwise), so a
    # figure in docs/performance.md cannot come from a lane the compiler dropped.
    done = subprocess.run(
        [sys.executable, str(BENCH.with_name("sha_lanes.py")), "--mib", "8", "--runs", "1"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "| hashlib sha256, one stream" in done.stdout
    if "sha_ni" in Path("/proc/cpuinfo").read_text(encoding="ascii", errors="replace"):
        assert "sha256-shani x2" in done.stdout and "sha1-shani x3" in done.stdout
