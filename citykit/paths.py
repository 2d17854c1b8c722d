"""Where citykit keeps things on the user's machine. Nothing is written into the source tree."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """Built tools and other re-creatable data: $CITYKIT_CACHE_DIR or ~/.cache/citykit."""
    return Path(os.environ.get("CITYKIT_CACHE_DIR") or Path.home() / ".cache" / "citykit")


def state_dir() -> Path:
    """Cluster state, Pulumi state and keys: $CITYKIT_STATE_DIR or ~/.local/state/citykit."""
    return Path(os.environ.get("CITYKIT_STATE_DIR") or Path.home() / ".local" / "state" / "citykit")
