"""Load: 1 seeder and 8 leechers, each a separate ``owmanifest`` process, on loopback.

The CI size is a few MiB (``OWMANIFEST_SWARM_MIB``, default 4); the full 256 MiB run is
``python bench/swarm.py``, the same code. The run is bounded (``--timeout``); every leecher must
exit 0 and its destination must verify. The total time and the seeder's upload ratio are
reported in the ledger's summary at the end of the test run (not asserted: no timing
assertions).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

pytest.importorskip("libtorrent", reason="libtorrent is not installed")
try:
    import owmanifest.transport.bittorrent  # noqa: F401
except ImportError as exc:  # the BitTorrent transport is written separately
    pytest.skip(f"owmanifest.transport.bittorrent is missing: {exc}", allow_module_level=True)

from .ledger import LEDGER

pytestmark = pytest.mark.network

BENCH = Path(__file__).resolve().parents[2] / "bench" / "swarm.py"
MIB = float(os.environ.get("OWMANIFEST_SWARM_MIB", "4"))


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("owmanifest_bench_swarm", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("leechers", [8])
def test_one_seeder_eight_leechers(tmp_path: Path, leechers: int) -> None:
    swarm = _bench()
    result = swarm.run_swarm(
        tmp_path, size=int(MIB * 1024 * 1024), leechers=leechers, files=6, timeout=600
    )
    LEDGER.notes.append(result.summary())
    failed = [r for r in result.results if r.returncode != 0 or not r.verified]
    assert result.all_ok, "\n".join(
        f"leecher {r.index}: exit {r.returncode}, verified {r.verified}\n{r.stderr_tail}"
        for r in failed
    ) + ("\nseeder: " + result.seeder_stderr_tail)
    assert len(result.results) == leechers
    assert result.seeder_uploaded > 0


@pytest.mark.slow
def test_one_seeder_eight_leechers_64_mib(tmp_path: Path) -> None:
    """A bigger swarm for the nightly run (the full 256 MiB is bench/swarm.py)."""
    swarm = _bench()
    result = swarm.run_swarm(tmp_path, size=64 * 1024 * 1024, leechers=8, files=8, timeout=1800)
    LEDGER.notes.append(result.summary())
    assert result.all_ok, result.summary()
