"""Hostile and careless clients of `osslsp engine` (issue 22): real engine processes on loopback.

Each test starts its own engine when it may break one, so a regression cannot hide behind (or
spoil) the shared engine of the other remote tests.
"""

from __future__ import annotations

import asyncio
import json
import socket

import pytest

from tests.remote.conftest import EngineProcess

pytestmark = pytest.mark.asyncio(loop_scope="module")
PROMPT = "def add(a, b):\n    return a"


def _raw_post(port: int, body: dict) -> socket.socket:
    """A request written on a plain socket, so the test decides exactly when the connection closes."""
    data = json.dumps(body).encode()
    connection = socket.create_connection(("127.0.0.1", port))
    connection.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                       b"Content-Type: application/json\r\n"
                       + f"Content-Length: {len(data)}\r\n\r\n".encode() + data)
    return connection


@pytest.fixture(scope="module")
def own_engine():
    """An engine for this module alone: TCP on loopback, no token."""
    process = EngineProcess("--listen", "127.0.0.1:0")
    yield process
    process.stop()


async def test_running_and_queued_requests_that_disconnect_together_do_not_wedge(own_engine):
    port = int(own_engine.url.rsplit(":", 1)[1])
    async with own_engine.session() as http:
        await own_engine.wait_ready(http)
        running = _raw_post(port, {"prompt": PROMPT, "max_tokens": 4000, "stream": True, "temperature": 0})
        assert (await asyncio.to_thread(running.recv, 1)) == b"H", "the first request streams"
        queued = [_raw_post(port, {"prompt": PROMPT, "max_tokens": 5, "temperature": 0, "user": f"c{n}"})
                  for n in range(4)]
        while (await own_engine.metrics(http))["osslsp_queue_depth"] < 5:
            await asyncio.sleep(0.01)
        for connection in [running, *queued]:  # all at once, as five cancelled completions do
            connection.close()
        async with asyncio.timeout(60), http.post(
                own_engine.url + "/v1/completions",
                json={"prompt": PROMPT, "max_tokens": 3, "temperature": 0}) as response:
            answer = await response.json()
        assert answer["usage"]["completion_tokens"] >= 1
        assert (await own_engine.metrics(http))["osslsp_queue_depth"] == 0
        async with http.get(own_engine.url + "/health") as response:
            assert response.status == 200


async def post(engine, http, body, raw: bytes | None = None) -> tuple[int, dict]:
    async with asyncio.timeout(30), http.post(engine.url + "/v1/completions", json=None if raw else body,
                                              data=raw, headers={"Content-Type": "application/json"}) as response:
        return response.status, await response.json()


async def test_oversized_and_absurd_requests_get_a_clear_4xx_at_once(own_engine):
    async with own_engine.session() as http:
        await own_engine.wait_ready(http)
        status, answer = await post(own_engine, http, {"prompt": "x = 1\n" * 500_000, "max_tokens": 1})
        assert status == 413 and "context" in answer["error"]["message"]
        status, answer = await post(own_engine, http, {"prompt": PROMPT, "stop": [f"s{n}" for n in range(100_000)]})
        assert status == 400 and answer["error"]["message"].startswith("stop:")
        status, answer = await post(own_engine, http, {"prompt": PROMPT, "seed": 10**30})
        assert status == 400 and answer["error"]["message"].startswith("seed:")
        status, answer = await post(own_engine, http, None, raw=b"[" * 100_000 + b"]" * 100_000)
        assert status == 400 and "nested" in answer["error"]["message"]
        async with http.get(own_engine.url + "/health") as response:
            assert response.status == 200


async def test_health_shows_the_model_only_with_the_token():
    engine = EngineProcess("--listen", "127.0.0.1:0", "--token", "health-token-0123456789")
    try:
        async with engine.session() as stranger, engine.session("health-token-0123456789") as owner:
            await engine.wait_ready(stranger)
            async with stranger.get(engine.url + "/health") as response:
                assert await response.json() == {"status": "ready"}
            async with owner.get(engine.url + "/health") as response:
                assert (await response.json())["model"] == "tiny"
    finally:
        engine.stop()


async def test_the_engine_keeps_an_audit_log_of_its_clients_requests(own_engine):
    from osslsp.audit import ENGINE_LOG, audit_file, read_records

    async with own_engine.session() as http:
        await own_engine.wait_ready(http)
        status, answer = await post(own_engine, http, {"prompt": PROMPT, "max_tokens": 3, "user": "auditor-7"})
    assert status == 200
    entry = None
    for _ in range(100):  # the record is written by the engine's audit thread, soon after the answer
        entry = next((entry for entry in reversed(read_records(audit_file(True, ENGINE_LOG), 50))
                      if entry["client"] == "auditor-7"), None)
        if entry is not None:
            break
        await asyncio.sleep(0.1)
    assert entry is not None, "no audit record of the request"
    assert entry["kind"] == "completions" and entry["prompt"] == PROMPT
    assert entry["answer"] == answer["choices"][0]["text"] and entry["withheld"] is None
