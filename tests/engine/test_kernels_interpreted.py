"""The Triton kernels' CPU checks (test_kernels_interpreted_checks.py) in a fresh process with
TRITON_INTERPRET=1: Triton chooses its interpreter when it is first imported, which in a pytest
run has happened long before (Transformers imports it)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

CHECKS = Path(__file__).with_name("test_kernels_interpreted_checks.py")


@pytest.mark.skipif(torch.cuda.is_available(), reason="on a GPU, test_fast_gpu.py runs the kernels compiled")
def test_the_triton_kernels_match_the_reference_in_the_interpreter():
    pytest.importorskip("triton")
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(CHECKS)],
                            env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "skipped" not in result.stdout.splitlines()[-1]
