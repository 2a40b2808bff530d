"""The fast gpt-oss runner's steps on the CPU, driven through the plain-PyTorch kernels.

The Triton kernels compute the same functions (checked on the GPU in test_fast_gpu.py and
benchmarks/gpu_kernels.py); here the runner's own logic is checked against Transformers: weight
layout in place, static cache, sliding windows, sinks, routing, prefix reuse.
"""

from __future__ import annotations

import pytest
import torch

from osslsp.engine import gpt_oss_fast, kernels_torch, tiny
from osslsp.engine.generation import Sampling, generate
from osslsp.engine.gpt_oss_fast import FastGptOssRunner, make_runner, unsupported_reason
from osslsp.engine.runner import TransformersRunner

PROMPT_LENGTH = 40  # the tiny model's window is 8: the prompt crosses it many times
NEW_TOKENS = 24


@pytest.fixture(scope="module")
def tokenizer():
    return tiny.build_tokenizer()


@pytest.fixture()
def model(tokenizer):
    return tiny.build_model(tokenizer).eval()  # a fresh one: the runner re-lays its weights out


@pytest.fixture()
def prompt(model) -> list[int]:
    generator = torch.Generator().manual_seed(1)
    return torch.randint(0, model.config.vocab_size, (PROMPT_LENGTH,), generator=generator).tolist()


def _hf_last_logits(model, ids: list[int]) -> torch.Tensor:
    with torch.inference_mode():
        return model(torch.tensor([ids])).logits[0, -1]


def test_make_runner_falls_back_to_the_generic_runner_without_cuda(model):
    if torch.cuda.is_available():
        pytest.skip("this checks the CPU fallback")
    assert unsupported_reason(model) == "no CUDA GPU"
    assert isinstance(make_runner(model, 256), TransformersRunner)


def test_greedy_tokens_are_those_of_generate(model, prompt):
    with torch.inference_mode():
        expected = model.generate(torch.tensor([prompt]), max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS,
                                  do_sample=False)[0, PROMPT_LENGTH:].tolist()
    runner = FastGptOssRunner(model, 256, kernels=kernels_torch)
    produced = list(generate(runner, prompt, Sampling(max_new_tokens=NEW_TOKENS), frozenset(), lambda: False))
    assert produced == expected


def test_prefix_reuse_gives_the_logits_of_a_full_prefill(model, prompt):
    runner = FastGptOssRunner(model, 256, kernels=kernels_torch)
    runner.prefill(prompt)
    edited = prompt[:-5] + [3, 4, 5]
    reused = runner.prefill(edited)
    assert runner.cached_ids == edited
    torch.testing.assert_close(reused, _hf_last_logits(model, edited).float(), rtol=1e-4, atol=1e-4)


def test_the_model_forward_is_unchanged_by_the_new_weight_layout(model, prompt):
    before = _hf_last_logits(model, prompt)
    parameters_before = sum(p.numel() for p in model.parameters())
    FastGptOssRunner(model, 256, kernels=kernels_torch)
    assert model.model.layers[0].mlp.experts.gate_up_proj.shape[1:] == (2 * 64, 64)  # (E, out, in)
    assert sum(p.numel() for p in model.parameters()) == parameters_before
    torch.testing.assert_close(_hf_last_logits(model, prompt), before, rtol=1e-4, atol=1e-4)


def test_a_prompt_longer_than_the_context_is_a_clear_error(model):
    runner = FastGptOssRunner(model, 96, kernels=kernels_torch)
    with pytest.raises(ValueError, match="longer than the context of 96"):
        runner.prefill(list(range(97)))
    runner.prefill(list(range(96)))
    with pytest.raises(ValueError, match="context of 96 tokens is full"):
        runner.decode_one(5)


def test_a_prompt_longer_than_a_prefill_chunk_gives_the_logits_of_the_model(model, prompt, monkeypatch):
    monkeypatch.setattr(gpt_oss_fast, "PREFILL_CHUNK", 16)  # 40 tokens: chunks of 16, 16 and 8
    runner = FastGptOssRunner(model, 256, kernels=kernels_torch)
    logits = runner.prefill(prompt)
    assert runner.cached_ids == prompt
    torch.testing.assert_close(logits, _hf_last_logits(model, prompt).float(), rtol=1e-4, atol=1e-4)


def test_a_request_served_between_two_greedy_tokens_changes_no_token(model, prompt):
    """The engine serves an interactive request from should_stop() in the middle of a generation:
    the runner's greedy stream ends there, and the generation goes on from a prefill of what it
    produced, with the tokens it would have produced alone."""
    runner = FastGptOssRunner(model, 256, kernels=kernels_torch)
    alone = list(generate(runner, prompt, Sampling(max_new_tokens=NEW_TOKENS), frozenset(), lambda: False))
    served = []

    def serve_another_request() -> bool:
        if len(served) in (3, 9):
            runner.prefill(prompt[::-1])  # another prompt takes the cache
        served.append(None)
        return False

    interrupted = list(generate(runner, prompt, Sampling(max_new_tokens=NEW_TOKENS), frozenset(),
                                serve_another_request))
    assert interrupted == alone


def test_the_greedy_stream_ends_when_the_runner_runs_anything_else(model, prompt):
    runner = FastGptOssRunner(model, 256, kernels=kernels_torch)
    first = int(runner.prefill(prompt).argmax())
    stream = runner.greedy_tokens(first, NEW_TOKENS)
    picked = [next(stream), next(stream)]
    assert runner.cached_ids == prompt + [first, picked[0]]
    runner.prefill(prompt)
    assert list(stream) == []


def test_the_greedy_stream_stops_after_the_tokens_asked_for(model, prompt):
    """generate() asks for what is left of max_new_tokens: no step is computed past it."""
    runner = FastGptOssRunner(model, 256, kernels=kernels_torch)
    first = int(runner.prefill(prompt).argmax())
    assert len(list(runner.greedy_tokens(first, 3))) == 3
    assert len(runner.cached_ids) == PROMPT_LENGTH + 3
    runner.cached_ids = []
    assert len(list(generate(runner, prompt, Sampling(max_new_tokens=4), frozenset(), lambda: False))) == 4
    assert len(runner.cached_ids) == PROMPT_LENGTH + 3  # the 4th token is yielded, never fed back
