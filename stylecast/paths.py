"""Where shipped assets live. STYLECAST_ASSETS overrides the default (the repo's assets/)."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def assets_dir() -> Path:
    """The folder of shipped defaults: avatars/, styles/, models/."""
    return Path(os.environ.get("STYLECAST_ASSETS", REPO_ROOT / "assets"))
