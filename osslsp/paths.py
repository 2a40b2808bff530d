"""Where osslsp keeps what it builds: models it generates or converts, indexes, explanations."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import platformdirs

# A file in a checkpoint folder that says its weights are random (the tiny model writes it), so
# that the folder named by its path is known as meaningless too, as `tiny` is.
RANDOM_WEIGHTS_MARKER = "osslsp-random-weights"


def cache_dir() -> Path:
    """The cache root: $OSSLSP_CACHE_DIR, else the platform's user cache directory."""
    override = os.environ.get("OSSLSP_CACHE_DIR")
    return Path(override) if override else Path(platformdirs.user_cache_dir("osslsp"))


def bundled_data(name: str) -> Path:
    """A folder shipped inside the package (e.g. the gpt-oss-20b config and chat template)."""
    return Path(__file__).parent / "data" / name


def build_once(directory: Path, done: str, build: Callable[[Path], None]) -> Path:
    """Build a cache folder once. `build` fills a staging folder that is then renamed into place,
    so a process never sees half a folder and two processes building at once are both fine.
    The folder counts as built when it holds the file `done`."""
    if (directory / done).exists():
        return directory
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}-", dir=directory.parent))
    try:
        build(staging)
        staging.chmod(0o755)
        try:
            staging.rename(directory)
        except OSError:  # another process finished first
            if not (directory / done).exists():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return directory
