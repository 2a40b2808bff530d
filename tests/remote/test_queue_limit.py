"""A batching `osslsp engine` (the tiny model, batches of two) under more requests than it takes:
the batch runs two at once, /metrics says so, and past the queue's limit a request gets 429 with
Retry-After over real HTTP, while the requests already in are served."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.remote.conftest import EngineProcess

pytestmark = pytest.mark.asyncio(loop_scope="module")
PROMPT = "def add(a, b):\n    return a"
MAX_BATCH = 2
MAX_WAITING = 6


@pytest.fixture(scope="module")
def batching_engine():
    process = EngineProcess("--listen", "127.0.0.1:0", "--max-batch", str(MAX_BATCH), "--max-waiting", str(MAX_WAITING))
    yield process
    process.stop()


async def _complete(engine, http, tokens: int, user: str) -> tuple[int, dict, dict]:
    # Past end-of-text: how long the random tiny model's answers run must not decide the test.
    body = {"prompt": PROMPT, "max_tokens": tokens, "temperature": 0, "user": user, "ignore_eos": True}
    async with http.post(engine.url + "/v1/completions", json=body) as response:
        return response.status, dict(response.headers), await response.json()


async def _wait_for(engine, http, name: str, value: float, timeout: float = 60) -> dict[str, float]:
    deadline = time.monotonic() + timeout
    while (metrics := await engine.metrics(http))[name] != value:
        assert time.monotonic() < deadline, f"{name} never became {value}: {metrics}"
        await asyncio.sleep(0.02)
    return metrics


async def test_completions_pass_long_jobs_and_a_full_queue_answers_429(batching_engine):
    """Long answers (background) hold their share of the batch and wait beyond it; an inline
    completion still runs beside them; past the queue's limit the next request gets 429."""
    engine = batching_engine
    limit = MAX_WAITING
    async with engine.session() as http:
        await engine.wait_ready(http)
        status, _, alone = await _complete(engine, http, 8, "alone")
        assert status == 200
        long_jobs = [asyncio.create_task(_complete(engine, http, 3000, f"chat{n}")) for n in range(limit + 1)]
        metrics = await _wait_for(engine, http, "osslsp_queue_waiting", limit)  # one runs, the rest wait
        assert metrics["osslsp_batch_capacity"] == MAX_BATCH and metrics["osslsp_batch_size"] == 1

        status, headers, body = await _complete(engine, http, 8, "one too many")
        assert status == 429
        assert int(headers["Retry-After"]) >= 1
        assert body["error"]["type"] == "rate_limit_exceeded" and "busy" in body["error"]["message"]

        long_jobs.pop().cancel()  # a client gives up: room for one request again
        await _wait_for(engine, http, "osslsp_queue_waiting", limit - 1)
        status, _, body = await _complete(engine, http, 8, "typist")
        assert status == 200 and body["choices"][0] == alone["choices"][0]
        metrics = await engine.metrics(http)
        assert metrics["osslsp_generation_tokens_per_second"] > 0
        assert metrics["osslsp_batch_size"] == 1  # the first long job still runs

        for job in long_jobs:
            job.cancel()
        await _wait_for(engine, http, "osslsp_queue_depth", 0)
        assert (await engine.metrics(http))["osslsp_batch_size"] == 0
