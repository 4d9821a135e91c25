"""The committed test data is exactly what tests/assets/generate.py produces."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "assets" / "generate.py"


def test_regeneration_reproduces_committed_assets() -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
