"""Per-user directories (platformdirs), overridable by environment variables for tests/CI."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["config_dir", "state_dir"]


def config_dir() -> Path:
    """Where the trust store lives: ``$OWMANIFEST_CONFIG_DIR`` or the platform's config dir."""
    env = os.environ.get("OWMANIFEST_CONFIG_DIR")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_config_dir("owmanifest", appauthor=False))


def state_dir() -> Path:
    """Where rollback state lives: ``$OWMANIFEST_STATE_DIR`` or the platform's state dir."""
    env = os.environ.get("OWMANIFEST_STATE_DIR")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_state_dir("owmanifest", appauthor=False))
