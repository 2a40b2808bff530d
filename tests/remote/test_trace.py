"""The engine's trace (`osslsp engine --trace`, GET /osslsp/trace): where a request's time went,
over real HTTP against a batching engine; and nothing of it when the engine is not traced."""

from __future__ import annotations

import pytest

from osslsp.engine import engine as engine_module
from osslsp.engine.engine import Engine
from osslsp.engine.requests import Request
from osslsp.engine.tracing import REQUEST_MARKS, STEP_PARTS
from osslsp.models import resolve_model
from osslsp.sampling import Sampling
from tests.remote.conftest import EngineProcess

PROMPT = "def add(a, b):\n    return a"


@pytest.fixture(scope="module")
def traced_engine():
    process = EngineProcess("--listen", "127.0.0.1:0", "--max-batch", "4", "--trace")
    yield process
    process.stop()


async def test_a_traced_engine_shows_every_phase_of_a_streamed_request(traced_engine):
    async with traced_engine.session() as http:
        await traced_engine.wait_ready(http)
        body = {"prompt": PROMPT, "max_tokens": 6, "temperature": 0, "stream": True, "ignore_eos": True,
                "user": "tracer"}
        async with http.post(traced_engine.url + "/v1/completions", json=body) as response:
            assert response.status == 200
            await response.read()
        async with http.get(traced_engine.url + "/osslsp/trace", params={"reset": "1"}) as response:
            assert response.status == 200
            trace = await response.json()
        async with http.get(traced_engine.url + "/osslsp/trace") as response:
            emptied = await response.json()
    phases = trace["requests"]
    marks = {mark for phase in phases if "->" in phase for mark in phase.split("->")}
    # Every mark passed (but `first_written`: the random tiny model's first tokens may show no text).
    assert marks >= set(REQUEST_MARKS) - {"first_written"}, phases
    assert all(stats["n"] == 1 for stats in phases.values())
    assert phases["total"]["p50_ms"] >= phases["admitted->first_token"]["p50_ms"] > 0
    # Six tokens, six steps; the last one's timings are added just after its answer went out.
    assert set(trace["steps"]) == {*STEP_PARTS, "step"} and trace["steps"]["step"]["n"] >= 5
    assert emptied["requests"] == {} and emptied["steps"]["step"]["n"] <= 1  # (that last step, at most)


async def test_an_engine_not_traced_answers_404():
    process = EngineProcess("--listen", "127.0.0.1:0")
    try:
        async with process.session() as http:
            await process.wait_ready(http)
            async with http.get(process.url + "/osslsp/trace") as response:
                assert response.status == 404
                assert "--trace" in (await response.json())["error"]["message"]
    finally:
        process.stop()


def test_an_engine_not_traced_records_nothing(monkeypatch):
    """Off, no step is timed and no request carries marks (each probe is one `is None` test)."""
    def no_laps(*args):
        raise AssertionError("a step was timed in an engine not traced")

    monkeypatch.setattr(engine_module, "StepLaps", no_laps)
    engine = Engine(resolve_model("tiny"), device="cpu", max_context=256, max_batch=2)
    engine.start()
    try:
        assert engine.wait_ready(120), engine.error
        generation = engine.submit(Request(prompt_ids=[5, 6, 7, 8], sampling=Sampling(max_new_tokens=4),
                                           ignore_eos=True))
        assert len(list(generation)) == 4
        assert generation.marks is None and engine.batch.trace is None
    finally:
        engine.close()
        engine.join(30)
