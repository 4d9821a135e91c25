"""Shared fixtures: where the read-only shared material (test vectors) lives."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def find_shared() -> Path | None:
    """``$OWMANIFEST_SHARED``, else ``shared/`` next to the repository; ``None`` if absent."""
    env = os.environ.get("OWMANIFEST_SHARED")
    # tests/unit/test_x.py -> parents[3]; from tests/conftest.py that is parents[2]
    candidate = Path(env) if env else Path(__file__).resolve().parents[2] / "shared"
    return candidate if candidate.is_dir() else None


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The shared directory; skips the test when it is not available."""
    found = find_shared()
    if found is None:
        pytest.skip("shared test material not found (set OWMANIFEST_SHARED or check out ../shared)")
    return found


@pytest.fixture(autouse=True)
def _isolated_user_dirs(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Never read or write the real per-user trust store and rollback state in tests."""
    base = tmp_path_factory.mktemp("userdirs")
    monkeypatch.setenv("OWMANIFEST_CONFIG_DIR", str(base / "config"))
    monkeypatch.setenv("OWMANIFEST_STATE_DIR", str(base / "state"))
