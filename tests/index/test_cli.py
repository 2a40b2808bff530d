"""`osslsp index`, run as a user runs it: it builds the index under the cache folder setting with
the command's own policy (worker processes for a large workspace), then describes it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from osslsp.index.refresh import PARALLEL_MIN_FILES

FILES = PARALLEL_MIN_FILES + 6  # enough for worker processes


def _osslsp_index(*args: str, cache: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "osslsp", "index", *args], capture_output=True,
                          text=True, timeout=300, env={**os.environ, "OSSLSP_CACHE_DIR": str(cache)})


def test_index_builds_then_describes_the_index_under_the_cache_folder(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    for number in range(FILES):
        (root / f"module_{number}.py").write_text(f"def scaled_{number}(value):\n    return 1\n")
    built = _osslsp_index(str(root), cache=tmp_path / "cache")
    assert built.returncode == 0, built.stderr
    assert f"files: {FILES}\ndefinitions: {FILES}\nlanguages: python {FILES}\n" in built.stdout
    assert f"index: {tmp_path / 'cache' / 'index'}" in built.stdout
    described = _osslsp_index(str(root), "--stats", cache=tmp_path / "cache")
    assert described.returncode == 0 and f"files: {FILES}\n" in described.stdout


def test_index_of_a_missing_folder_says_so(tmp_path: Path) -> None:
    result = _osslsp_index(str(tmp_path / "missing"), cache=tmp_path / "cache")
    assert result.returncode == 2 and "is not a directory" in result.stderr
