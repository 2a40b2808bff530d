"""The VS Code extension builds, and its own tests pass (unit tests, and a contract test against
`osslsp serve --model tiny` when `osslsp` is on PATH)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.conftest import REPO

EXTENSION = REPO / "editors" / "vscode"


@pytest.mark.skipif(shutil.which("npm") is None, reason="needs Node.js 20+ and npm")
def test_extension_compiles_and_its_tests_pass(tiny_dir):
    for step in (["npm", "ci", "--no-audit", "--no-fund"], ["npm", "run", "compile"], ["npm", "test"]):
        result = subprocess.run(step, cwd=EXTENSION, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, f"{' '.join(step)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
