"""Where osslsp keeps what it builds: models it generates or converts, indexes, explanations."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs


def cache_dir() -> Path:
    """The cache root: $OSSLSP_CACHE_DIR, else the platform's user cache directory."""
    override = os.environ.get("OSSLSP_CACHE_DIR")
    return Path(override) if override else Path(platformdirs.user_cache_dir("osslsp"))


def bundled_data(name: str) -> Path:
    """A folder shipped inside the package (e.g. the gpt-oss-20b config and chat template)."""
    return Path(__file__).parent / "data" / name
