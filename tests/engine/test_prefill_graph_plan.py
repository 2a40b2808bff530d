"""Which captured prefill graphs a prompt replays (a pure plan), and the padding a replay gives its
piece, checked on the CPU: CUDA graphs cannot run here, so each "graph" is its step run eagerly on
the graph's own buffers, which is what a replay computes (the GPU test compares real replays).
The padded steps go through the PyTorch twins here, and through the Triton kernels in Triton's
interpreter, in a fresh process (Triton picks its interpreter when first imported, long before
these tests in a pytest run)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from osslsp.engine import gpt_oss_fast, kernels_torch, mxfp4, tiny
from osslsp.engine.gpt_oss_fast import (PREFILL_GRAPH_BUCKETS, FastGptOssRunner, _PrefillGraph, plan_prefill,
                                        prefill_graph_buckets)


def test_a_cold_prompt_up_to_a_chunk_is_one_replay_of_the_smallest_bucket_that_holds_it():
    buckets = prefill_graph_buckets(8192, 4096)
    assert buckets == list(PREFILL_GRAPH_BUCKETS) and buckets[-1] == 4096
    assert plan_prefill(1, buckets, 4096) == [(1, 16)]
    assert plan_prefill(17, buckets, 4096) == [(17, 64)]
    assert plan_prefill(2048, buckets, 4096) == [(2048, 2048)]
    assert plan_prefill(2049, buckets, 4096) == [(2049, 2560)]
    assert plan_prefill(4096, buckets, 4096) == [(4096, 4096)]


def test_a_longer_prompt_is_chunks_then_the_bucket_of_the_rest():
    buckets = prefill_graph_buckets(16384, 4096)
    assert plan_prefill(8192, buckets, 4096) == [(4096, 4096), (4096, 4096)]
    assert plan_prefill(8200, buckets, 4096) == [(4096, 4096), (4096, 4096), (8, 16)]
    assert plan_prefill(4500, buckets, 4096) == [(4096, 4096), (404, 512)]


def test_padding_stays_small_past_a_thousand_tokens():
    buckets = prefill_graph_buckets(8192, 4096)
    for n in range(1025, 4097):
        (_, bucket), = plan_prefill(n, buckets, 4096)
        assert bucket - n <= n // 4, n


def test_the_buckets_end_at_the_context_or_the_chunk():
    assert prefill_graph_buckets(512, 4096) == [16, 64, 128, 256, 512]
    assert prefill_graph_buckets(1000, 4096) == [16, 64, 128, 256, 512, 768, 1000]
    assert prefill_graph_buckets(300, 128) == [16, 64, 128]
    assert prefill_graph_buckets(8, 4096) == [8]


def test_sizes_without_a_graph_run_eagerly():
    assert plan_prefill(4500, [], 4096) == [(4096, None), (404, None)]
    assert plan_prefill(4500, [16, 64, 512], 4096) == [(4096, None), (404, 512)]  # 4096's capture failed


class _StepOnBuffers:
    """Stands in for a CUDA graph on the CPU: replay runs the captured step on the same buffers."""

    def __init__(self, runner: FastGptOssRunner, buffers: dict):
        self.runner, self.buffers = runner, buffers

    def replay(self) -> None:
        b = self.buffers
        b["logits"].copy_(self.runner._prefill_step(b["ids"], b["positions"], n_real=b["n_real"]))


def _with_eager_graphs(runner: FastGptOssRunner, buckets: list[int]) -> None:
    vocab = runner.embed.shape[0]
    for bucket in buckets:
        buffers = {"ids": torch.zeros(bucket, dtype=torch.long), "positions": torch.arange(bucket),
                   "n_real": torch.full((1,), bucket), "logits": torch.zeros(1, vocab, dtype=runner.dtype)}
        runner.prefill_graphs.append(_PrefillGraph(bucket, buffers["ids"], buffers["positions"], buffers["n_real"],
                                                   _StepOnBuffers(runner, buffers), buffers["logits"]))


@pytest.fixture()
def model():
    return tiny.build_model(tiny.build_tokenizer()).eval()


def test_padded_pieces_give_the_logits_of_the_model(model, monkeypatch):
    monkeypatch.setattr(gpt_oss_fast, "PREFILL_CHUNK", 16)  # 45 tokens: 16 and 16 replayed, 13 padded to 16
    prompt = torch.randint(0, model.config.vocab_size, (45,), generator=torch.Generator().manual_seed(2)).tolist()
    edited = prompt[:-6] + [3, 4, 5]  # prefix reuse: 3 new tokens padded to 4
    with torch.inference_mode():
        want = [model(torch.tensor([ids])).logits[0, -1].float() for ids in (prompt, edited)]
    runner = FastGptOssRunner(model, 256, kernels=kernels_torch)
    _with_eager_graphs(runner, [4, 16])
    torch.testing.assert_close(runner.prefill(prompt), want[0], rtol=1e-4, atol=1e-4)
    assert runner.prefill_graphs[1].n_real.item() == 13  # the last piece was padded
    torch.testing.assert_close(runner.prefill(edited), want[1], rtol=1e-4, atol=1e-4)
    assert runner.prefill_graphs[0].positions.tolist() == [39, 40, 41, 41]
    assert runner.cached_ids == edited


INTERPRETED = os.environ.get("TRITON_INTERPRET") == "1"


@pytest.mark.skipif(INTERPRETED, reason="this is the process that starts the interpreted one")
@pytest.mark.skipif(torch.cuda.is_available(), reason="on a GPU, test_fast_gpu.py replays the real graphs")
def test_padded_prefill_steps_through_the_triton_kernels_in_the_interpreter():
    pytest.importorskip("triton")
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__, "-k", "triton_gives"]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "2 passed" in result.stdout.splitlines()[-1]


@pytest.mark.skipif(not INTERPRETED, reason="run by the test above, in a process with TRITON_INTERPRET=1")
@pytest.mark.parametrize(("packed", "n_real", "bucket"), [(True, 150, 192), (False, 100, 144)])
def test_a_padded_prefill_through_triton_gives_the_logits_of_the_twins(packed, n_real, bucket, monkeypatch):
    """Packed: the long-prompt path (FP16 scratch by chunks of experts), which the packed GEMMs'
    tiles here leave from 256 pairs on; FP16: the grouped GEMMs' middle tiles. Both sort their
    pairs on the device with the padding's marked."""
    from osslsp.engine import kernels

    monkeypatch.setattr(kernels, "MXFP4_PREFILL_EXPERTS_TILES", ((256, kernels.MXFP4_PREFILL_EXPERTS_TILES[0][1]),))
    tiles = kernels.MXFP4_PREFILL_EXPERTS_TILES if packed else kernels.PREFILL_EXPERTS_TILES
    assert 2 * bucket > tiles[0][0]  # the tiny model routes each token to 2 experts
    model = tiny.build_model(tiny.build_tokenizer()).half().eval()
    runner = FastGptOssRunner(model, 1024, kernels=kernels_torch)
    if packed:  # the runner's layers read packed experts as a loaded checkpoint's
        for layer in runner.layers:
            layer.gate_up, layer.down = mxfp4.quantize(layer.gate_up), mxfp4.quantize(layer.down)
    prompt = torch.randint(0, model.config.vocab_size, (n_real,), generator=torch.Generator().manual_seed(1)).tolist()
    want = runner.prefill(prompt)  # (V,): eager, through the twins
    runner.kernels, runner.cached_ids = kernels, []
    _with_eager_graphs(runner, [bucket])
    got = runner.prefill(prompt)
    assert runner.prefill_graphs[0].n_real.item() == n_real
    assert float((got - want).norm() / want.norm()) < 1e-2
    assert int(got.argmax()) == int(want.argmax())
