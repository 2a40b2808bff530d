"""Which captured prefill graphs a prompt replays (a pure plan), and the padding a replay gives its
piece, checked on the CPU: CUDA graphs cannot run here, so each "graph" is its step run eagerly on
the graph's own buffers, which is what a replay computes (the GPU test compares real replays)."""

from __future__ import annotations

import pytest
import torch

from osslsp.engine import gpt_oss_fast, kernels_torch, tiny
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
