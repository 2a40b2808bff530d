"""The engine thread with the tiny model on the CPU: streaming, cancel, supersede, errors."""

from __future__ import annotations

import dataclasses
import threading

import pytest
import torch

from osslsp.engine.engine import Engine, EngineError
from osslsp.engine.requests import Request
from osslsp.engine.generation import NonFiniteLogits, generate
from osslsp.engine.runner import TransformersRunner
from osslsp.models import resolve_model
from osslsp.sampling import Sampling

PROMPT = list(range(10, 60))


@pytest.fixture(scope="module")
def engine(tiny_dir):
    engine = Engine(resolve_model("tiny"), device="cpu")
    engine.start()
    assert engine.wait_ready(120), engine.error
    yield engine
    engine.close()


def endless(max_new_tokens: int = 100_000) -> Request:
    """A request the tiny model would follow for a long time: no stop ids of its own count."""
    return Request(PROMPT, Sampling(max_new_tokens=max_new_tokens), stop_ids=frozenset())


def test_greedy_stream_is_the_direct_generation(engine):
    request = Request(PROMPT, Sampling(max_new_tokens=16))
    streamed = list(engine.submit(request))
    runner = TransformersRunner(engine.loaded.model)
    direct = list(generate(runner, PROMPT, request.sampling, engine.loaded.stop_ids, lambda: False))
    assert streamed == direct and streamed


def test_cancel_stops_the_generation_at_the_next_step(engine):
    generation = engine.submit(endless())
    received, emitted_by_then = [], 0
    for token in generation:
        received.append(token)
        if len(received) == 3:
            generation.cancel()
            # Tokens the engine emitted while this loop was still reading (a loaded machine can
            # lag the engine by several steps) are already on their way.
            emitted_by_then = len(received) + generation._events.qsize()
    # The stop flag is read before and after each step: at most one more token is made.
    assert 3 <= len(received) <= emitted_by_then + 1
    assert generation.finish_reason == "cancelled"


def test_a_newer_request_for_the_same_document_supersedes_the_older(engine):
    older = engine.submit(Request(PROMPT, Sampling(max_new_tokens=100_000), key="doc", stop_ids=frozenset()))
    first = next(iter(older))  # the older one is running
    newer = engine.submit(Request(PROMPT, Sampling(max_new_tokens=4), key="doc"))
    rest = list(older)
    assert older.finish_reason == "cancelled" and len(rest) < 100_000
    assert first is not None and list(newer)


def test_stop_when_ends_the_generation(engine):
    generation = engine.submit(Request(PROMPT, Sampling(max_new_tokens=1000), stop_ids=frozenset(),
                                       stop_when=lambda ids: len(ids) >= 5))
    assert len(list(generation)) == 5 and generation.finish_reason == "stop"


def test_non_finite_logits_fail_with_advice():
    with pytest.raises(NonFiniteLogits, match="bfloat16"):
        from osslsp.engine.generation import sample

        sample(torch.tensor([0.0, float("nan")]), Sampling(), None)


def test_a_request_failing_inside_the_engine_reports_and_the_engine_serves_on(engine):
    broken = engine.submit(Request([engine.loaded.model.config.vocab_size + 5], Sampling(max_new_tokens=2)))
    with pytest.raises(EngineError):
        list(broken)
    assert len(list(engine.submit(Request(PROMPT, Sampling(max_new_tokens=3))))) > 0


def test_a_missing_model_fails_every_request_with_the_reason(tmp_path):
    from osslsp.models import ModelSource

    source = ModelSource("missing", "checkpoint", tmp_path, tmp_path)
    engine = Engine(source, device="cpu")
    states = []
    done = threading.Event()
    engine._on_state = lambda state, message: (states.append(state), state == "error" and done.set())
    engine.start()
    assert done.wait(60)
    with pytest.raises(EngineError, match="could not load"):
        list(engine.submit(Request(PROMPT)))
    assert states == ["loading", "error"]
    engine.close()


def test_a_request_cancelled_while_queued_is_never_prefilled(engine):
    blocker = engine.submit(endless())
    first = next(iter(blocker))
    victim = engine.submit(Request(list(range(100, 140)), Sampling(max_new_tokens=8)))
    victim.cancel()
    blocker.cancel()
    assert first is not None and list(victim) == [] and victim.finish_reason == "cancelled"
    assert engine.runner.cached_ids[: len(PROMPT)] == PROMPT  # the victim's prompt never ran


def test_an_answer_is_clipped_to_the_cache_and_a_prompt_too_long_is_refused(tiny_dir):
    engine = Engine(resolve_model("tiny"), device="cpu", max_context=len(PROMPT) + 3)
    engine.start()
    assert engine.wait_ready(120)
    assert len(list(engine.submit(endless()))) <= 3
    with pytest.raises(EngineError, match="contextTokens"):
        list(engine.submit(Request(PROMPT * 2, Sampling(max_new_tokens=2))))
    engine.close()
    with pytest.raises(EngineError, match="unloaded"):
        list(engine.submit(Request(PROMPT)))
    engine.join(30)
    assert engine.loaded is None


def test_ignore_eos_keeps_only_the_requests_own_stops():
    request = Request([1, 2], stop_ids=frozenset({7}))
    assert request.stops(frozenset({2})) == {2, 7}
    assert dataclasses.replace(request, ignore_eos=True).stops(frozenset({2})) == {7}
