"""The benchmark suite runs end to end on small data (``bench/run.py --quick``)."""

from __future__ import annotations

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
