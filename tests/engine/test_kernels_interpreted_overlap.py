"""The FP16-scratch path for long prompts on packed experts with its unpacking overlapped
(kernels.DEQUANTIZED_EXPERTS_OVERLAP), on the CPU through Triton's interpreter: the same results as
the sequential path, bit for bit, for every chunk size and unpack grid. On the CPU there is no side
stream (every launch runs to its end in order), so what is checked here is the double buffering:
which experts each chunk's GEMMs get, from which buffer, and the bounded unpack grid; the streams
and events are checked on a GPU (test_fast_gpu.py). Triton picks its interpreter when it is first
imported, so the checks run in a fresh process with TRITON_INTERPRET=1 (the first test)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
import torch

INTERPRETED = os.environ.get("TRITON_INTERPRET") == "1"
HIDDEN, INTERMEDIATE, EXPERTS = 96, 64, 8


@pytest.mark.skipif(INTERPRETED or torch.cuda.is_available(),
                    reason="the checks themselves run here; on a GPU, test_fast_gpu.py runs them compiled")
def test_the_overlapped_unpacking_matches_in_the_interpreter():
    pytest.importorskip("triton")
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__],
                            env={**os.environ, "TRITON_INTERPRET": "1"}, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert re.match(r"\d+ passed, 1 skipped in ", result.stdout.splitlines()[-1])  # this test's own skip there


def _experts():
    """Packed gate_up (E, 2I, H) and down (E, H, I) with float16 biases."""
    from osslsp.engine import mxfp4

    generator = torch.Generator().manual_seed(1)
    gate_up = mxfp4.quantize(torch.randn(EXPERTS, 2 * INTERMEDIATE, HIDDEN, generator=generator) * 0.05)
    down = mxfp4.quantize(torch.randn(EXPERTS, HIDDEN, INTERMEDIATE, generator=generator) * 0.05)
    biases = [(torch.randn(EXPERTS, n, generator=generator) * 0.05).half() for n in (2 * INTERMEDIATE, HIDDEN)]
    return gate_up, biases[0], down, biases[1]


def _routed(n_tokens: int):
    """x (n, H), top-4 expert ids (n, 4) among experts 0..6 (expert 7 gets no pair), weights (n, 4)."""
    generator = torch.Generator().manual_seed(9)
    x = torch.randn(n_tokens, HIDDEN, generator=generator).half()
    logits = torch.randn(n_tokens, EXPERTS, generator=generator)
    logits[:, 7] = float("-inf")
    top_values, top_ids = logits.topk(4, dim=-1)
    return x, top_ids, torch.softmax(top_values, -1).half()


@pytest.mark.skipif(not INTERPRETED, reason="needs TRITON_INTERPRET=1 (run by the test above)")
@pytest.mark.parametrize("programs", [1, 2, 3, 1000])
def test_a_bounded_unpack_grid_writes_every_byte(programs):
    """Each program loops over its share of the 4,096-byte blocks (more programs than blocks too)."""
    from osslsp.engine import kernels

    gate_up = _experts()[0]  # 3 experts of 128 x 96 inputs: 18,432 bytes, 4.5 blocks
    full = torch.empty(3, 2 * INTERMEDIATE, HIDDEN, dtype=torch.float16)
    kernels.dequantize_mxfp4(gate_up, 2, 3, full)
    bounded = torch.full_like(full, float("nan"))
    kernels.dequantize_mxfp4(gate_up, 2, 3, bounded, programs)
    assert torch.equal(bounded, full)


@pytest.mark.skipif(not INTERPRETED, reason="needs TRITON_INTERPRET=1 (run by the test above)")
@pytest.mark.parametrize(("chunk", "unpack_sms"), [(3, None), (2, 0.5), (4, 1.0), (8, None)])
def test_the_overlapped_chunks_give_the_sequential_result(chunk, unpack_sms, monkeypatch):
    """Chunks of 3 (two buffers, a short last chunk), 2 (each buffer used twice), 4 and all 8 (one
    chunk, the second buffer unused), the unpack on its full grid or a bounded one."""
    from osslsp.engine import kernels, kernels_torch

    monkeypatch.setattr(kernels, "UNPACK_PROGRAMS_AN_SM", 2)
    args = (*_routed(24), *_experts(), 7.0, 1.702)  # 96 pairs: past the one-program alignment
    sequential = kernels._prefill_experts_dequantized(*args, n_real=None)
    monkeypatch.setattr(kernels, "DEQUANTIZED_EXPERTS_OVERLAP", kernels.UnpackOverlap(chunk, unpack_sms))
    overlapped = kernels._prefill_experts_dequantized(*args, n_real=None)
    assert torch.equal(overlapped, sequential)
    want = kernels_torch.prefill_experts(*args)
    assert float((overlapped.float() - want.float()).norm() / want.float().norm()) < 5e-3


@pytest.mark.skipif(not INTERPRETED, reason="needs TRITON_INTERPRET=1 (run by the test above)")
def test_the_overlapped_chunks_give_padding_tokens_the_last_real_row(monkeypatch):
    from osslsp.engine import kernels

    x, top_ids, top_weights = _routed(24)
    n_real = 20
    top_ids[n_real:], top_weights[n_real:], x[n_real:] = top_ids[n_real - 1], top_weights[n_real - 1], x[n_real - 1]
    args = (x, top_ids, top_weights, *_experts(), 7.0, 1.702)
    sequential = kernels._prefill_experts_dequantized(*args, n_real=torch.tensor([n_real]))
    monkeypatch.setattr(kernels, "DEQUANTIZED_EXPERTS_OVERLAP", kernels.UnpackOverlap(3))
    overlapped = kernels._prefill_experts_dequantized(*args, n_real=torch.tensor([n_real]))
    assert torch.equal(overlapped, sequential)
    assert torch.equal(overlapped[n_real:], overlapped[n_real - 1:n_real].expand(24 - n_real, -1))
