"""Continuous batching in the real engine (the tiny gpt-oss on the CPU, the batched runner through
its PyTorch kernels): a batch computes what each request computes alone, and members leave it
(finished, cancelled, superseded) without changing what the others produce."""

from __future__ import annotations

import threading

import pytest
import torch

from osslsp.engine.batching import PREFILL_CHUNK
from osslsp.engine.engine import Engine
from osslsp.engine.requests import Request
from osslsp.engine.generation import Sampling
from osslsp.models import resolve_model

NEW_TOKENS = 20
MAX_CONTEXT = 512


def _prompts() -> list[list[int]]:
    """Prompts of different lengths (the tiny model's window is 8), two sharing a long prefix."""
    generator = torch.Generator().manual_seed(7)
    prompts = [torch.randint(0, 200, (length,), generator=generator).tolist() for length in (5, 23, 40, 70)]
    return prompts + [prompts[3][:60] + [11, 12, 13]]


@pytest.fixture(scope="module")
def alone() -> list[list[int]]:
    """Each prompt's greedy answer from the engine that serves one request at a time."""
    engine = Engine(resolve_model("tiny"), device="cpu", max_context=MAX_CONTEXT)
    engine.start()
    assert engine.wait_ready(120), engine.error
    assert engine.batch is None
    answers = [list(engine.submit(_request(prompt))) for prompt in _prompts()]
    engine.close()
    engine.join(30)
    return answers


@pytest.fixture(scope="module")
def engine():
    engine = Engine(resolve_model("tiny"), device="cpu", max_context=MAX_CONTEXT, max_batch=4)
    engine.start()
    assert engine.wait_ready(120), engine.error
    assert engine.batch is not None and engine.max_batch == 4
    yield engine
    engine.close()
    engine.join(30)


def _request(prompt: list[int], **fields) -> Request:
    return Request(prompt_ids=prompt, sampling=Sampling(max_new_tokens=NEW_TOKENS), **fields)


def _collect(generation, into: list[int], started: threading.Event | None = None) -> threading.Thread:
    def read() -> None:
        for token in generation:
            into.append(token)
            if started is not None:
                started.set()
    thread = threading.Thread(target=read)
    thread.start()
    return thread


def test_batched_greedy_answers_equal_each_request_alone(engine, alone):
    """Five requests for a batch of four: they join at different steps (the fifth when one leaves),
    with prompts of different lengths prefilled beside running decodes."""
    prompts = _prompts()
    answers = [[] for _ in prompts]
    threads = []
    for index, prompt in enumerate(prompts):
        started = threading.Event()
        threads.append(_collect(engine.submit(_request(prompt)), answers[index], started))
        if index % 2 == 0:
            started.wait(30)  # the next one joins a batch already decoding
    for thread in threads:
        thread.join(60)
    assert answers == alone
    assert all(len(answer) == NEW_TOKENS for answer in answers)
    assert max(engine.batch.steps) >= 4  # passes carried several sequences (and prompt rows)


def test_a_cancelled_member_leaves_and_the_others_finish_unchanged(engine, alone):
    prompts = _prompts()
    answers = [[] for _ in prompts[:3]]
    started = threading.Event()
    generations = [engine.submit(_request(prompt)) for prompt in prompts[:3]]
    threads = [_collect(generation, answers[index], started if index == 1 else None)
               for index, generation in enumerate(generations)]
    started.wait(30)
    generations[1].cancel()
    for thread in threads:
        thread.join(60)
    assert generations[1].finish_reason == "cancelled"
    assert len(answers[1]) < NEW_TOKENS
    assert answers[1] == alone[1][:len(answers[1])]
    assert (answers[0], answers[2]) == (alone[0], alone[2])
    assert engine.running == 0


def test_newest_wins_within_the_batch(engine, alone):
    prompts = _prompts()
    old_answer, new_answer, other_answer = [], [], []
    started = threading.Event()
    other = engine.submit(_request(prompts[0]))
    old = engine.submit(_request(prompts[2], key="doc.py"))
    threads = [_collect(other, other_answer), _collect(old, old_answer, started)]
    started.wait(30)
    new = engine.submit(_request(prompts[3], key="doc.py"))  # a newer keystroke in the same document
    threads.append(_collect(new, new_answer))
    for thread in threads:
        thread.join(60)
    assert old.finish_reason == "cancelled" and len(old_answer) < NEW_TOKENS
    assert (other_answer, new_answer) == (alone[0], alone[3])


def test_a_key_reuses_its_slot_and_prefix(engine, alone):
    """The next request of a cache key finds its prefix in its slot, while another key is served."""
    prompts = _prompts()
    first = list(engine.submit(_request(prompts[3], cache_key="typist")))
    slot = next(slot for slot in engine.batch.slots.slots if slot.key == "typist")
    assert slot.cached_ids == prompts[3] + first[:-1]
    list(engine.submit(_request(prompts[1], cache_key="someone else")))
    assert list(engine.submit(_request(prompts[4], cache_key="typist"))) == alone[4]
    assert slot.key == "typist" and slot.cached_ids[:60] == prompts[4][:60]


def test_interactive_requests_are_admitted_before_background_ones(engine):
    """With the batch's background share full, a completion still joins and finishes first."""
    prompts = _prompts()
    long_jobs = [engine.submit(Request(prompt_ids=prompts[2], sampling=Sampling(max_new_tokens=200)))
                 for _ in range(4)]
    completion = engine.submit(_request(prompts[0], interactive=True))
    assert len(list(completion)) == NEW_TOKENS
    assert sum(not job.finish_reason for job in long_jobs) >= 1  # a long job was still running
    for job in long_jobs:
        job.cancel()
        list(job)


def test_a_prompt_that_fills_the_cache_is_a_clear_error_and_the_batch_goes_on(engine, alone):
    from osslsp.engine.engine import EngineError

    too_long = engine.submit(_request(list(range(MAX_CONTEXT))))
    fine = engine.submit(_request(_prompts()[0]))
    with pytest.raises(EngineError, match="cache holds 512"):
        list(too_long)
    assert list(fine) == alone[0]


def test_long_prompts_prefill_in_chunks_between_decode_steps(engine, alone):
    """With a chunk of 16 tokens, the 23-, 40- and 70-token prompts join over several steps while
    the 5-token one decodes; answers are unchanged."""
    engine.batch.prefill_chunk = 16
    try:
        prompts = _prompts()[:4]
        answers = [[] for _ in prompts]
        started = threading.Event()
        threads = [_collect(engine.submit(_request(prompts[0])), answers[0], started)]
        started.wait(30)
        threads += [_collect(engine.submit(_request(prompt)), answers[index])
                    for index, prompt in enumerate(prompts[1:], start=1)]
        for thread in threads:
            thread.join(60)
    finally:
        engine.batch.prefill_chunk = PREFILL_CHUNK
    assert answers == alone[:4]


def test_a_failed_step_fails_its_requests_clearly_and_the_engine_serves_on(engine, alone):
    """A fault in a batched pass (as a GPU error would raise) ends the requests in it with the
    message; their slots are emptied, and the next requests get the answers they get alone."""
    from osslsp.engine.engine import EngineError

    runner = engine.batch.runner
    real_step = runner.step

    def failing_step(rows):
        runner.step = real_step  # once
        raise RuntimeError("CUDA error: an illegal memory access was encountered")

    runner.step = failing_step
    try:
        with pytest.raises(EngineError, match="illegal memory access"):
            list(engine.submit(_request(_prompts()[0])))
    finally:
        runner.step = real_step
    assert [list(engine.submit(_request(prompt))) for prompt in _prompts()[:2]] == alone[:2]


def test_short_remainders_that_find_no_room_wait_for_a_step_instead_of_a_pass_of_their_own():
    """Four 12-token prompts joining at once need 48 rows where a step has 20 (4 slots + 16): the
    ones that do not fit ride in later steps; none is prefilled in a pass of its own (which every
    running sequence would wait for). Each answer equals that prompt's answer alone."""
    from osslsp.engine.batched_runner import make_batched_runner
    from osslsp.engine.batching import BatchScheduler
    from osslsp.engine.loading import load_model
    from osslsp.engine.requests import Generation

    loaded = load_model(resolve_model("tiny"), device="cpu", max_context=MAX_CONTEXT)
    runner = make_batched_runner(loaded.model, MAX_CONTEXT, 4)
    prefills = []
    prefill = runner.prefill
    runner.prefill = lambda *args: prefills.append(args) or prefill(*args)
    scheduler = BatchScheduler(runner, loaded.stop_ids, 4, lambda generation, reason, error: ("done", reason),
                               lambda events: None)
    generator = torch.Generator().manual_seed(3)
    prompts = [torch.randint(0, 200, (12,), generator=generator).tolist() for _ in range(4)]

    def run(group: list[list[int]]) -> list[list[int]]:
        sequences = []
        for prompt in group:
            scheduler.admit(Generation(_request(prompt, ignore_eos=True)), NEW_TOKENS)
            sequences.append(scheduler.running[-1])
        while scheduler.running:
            scheduler.step()
        return [sequence.produced for sequence in sequences]

    together = run(prompts)
    assert prefills == [] and max(scheduler.steps) <= runner.max_rows
    assert [len(answer) for answer in together] == [NEW_TOKENS] * 4
    assert together == [run([prompt])[0] for prompt in prompts]


def test_rows_padding_a_step_read_no_experts_of_their_own(monkeypatch):
    """A step of 3 rows run as a captured size of 4 (as a CUDA graph runs it): the experts are told
    on the device that 3 rows are real (so the kernels give the padding row no expert blocks), and
    the 3 rows' logits are those of the 3-row step."""
    from types import SimpleNamespace

    from osslsp.engine import kernels_torch
    from osslsp.engine.batched_runner import make_batched_runner
    from osslsp.engine.loading import load_model

    loaded = load_model(resolve_model("tiny"), device="cpu", max_context=MAX_CONTEXT)
    runner = make_batched_runner(loaded.model, MAX_CONTEXT, 4)
    routed = []

    def prefill_experts(x, expert_ids, *args, **kwargs):
        routed.append(kwargs["n_real"].clone())
        return kernels_torch.prefill_experts(x, expert_ids, *args, **kwargs)

    runner.kernels = SimpleNamespace(**{**vars(kernels_torch), "prefill_experts": prefill_experts})
    rows = [(0, 0, 11), (0, 1, 12), (1, 0, 13)]  # (slot, position, token)
    exact, _ = runner.step(rows)
    exact = exact.clone()
    routed.clear()
    with torch.inference_mode():  # as `step` runs it, with the rows a graph of 4 would read
        runner.rows[:, :4] = torch.tensor([[11, 12, 13, 0], [0, 1, 0, 0], [0, 0, 1, runner.scratch_slot],
                                           [1, 1, 1, 0]])
        padded = runner._step(4)
    torch.testing.assert_close(padded[:3], exact)
    assert routed and all(n_real.tolist() == [3] for n_real in routed)
