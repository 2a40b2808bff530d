"""`osslsp engine` on loopback TCP with a token, driven over HTTP as an OpenAI client would drive it."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time

import pytest
import pytest_asyncio

from tests.remote.conftest import ENGINE_TINY, TOKEN

pytestmark = pytest.mark.asyncio(loop_scope="module")
PROMPT = "def add(a, b):\n    return a"


@pytest_asyncio.fixture(loop_scope="module")
async def http(engine):
    async with engine.session(TOKEN) as session:
        await engine.wait_ready(session)
        yield session


async def complete(engine, http, **body) -> dict:
    async with http.post(engine.url + "/v1/completions", json={"temperature": 0, **body}) as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def stream_events(engine, http, path: str = "/v1/completions", **body) -> list[str]:
    """The raw `data` fields of a streamed answer, checked to be well-formed server-sent events."""
    async with http.post(engine.url + path, json={"temperature": 0, "stream": True, **body}) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        raw = (await response.read()).decode()
    events = raw.split("\n\n")
    assert events[-1] == "", "the stream ends with a complete event"
    assert all(event.startswith("data: ") and "\n" not in event for event in events[:-1])
    return [event[len("data: "):] for event in events[:-1]]


async def test_a_missing_or_wrong_token_gets_401(engine, http):
    for token in (None, "wrong-token"):
        async with engine.session(token) as stranger:
            for method, path in (("POST", "/v1/completions"), ("GET", "/v1/models"), ("GET", "/metrics")):
                async with stranger.request(method, engine.url + path, json={"prompt": "x"}) as response:
                    assert response.status == 401, (token, path)
                    assert response.headers["WWW-Authenticate"] == "Bearer"
                    assert "token" in (await response.json())["error"]["message"]
            async with stranger.get(engine.url + "/health") as response:
                assert response.status == 200  # says only that the model is up


async def test_listening_off_loopback_needs_a_token():
    refused = subprocess.run(ENGINE_TINY + ["--listen", "0.0.0.0:0"], capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2
    assert "--token" in refused.stderr


async def test_models_lists_the_one_model(engine, http):
    async with http.get(engine.url + "/v1/models") as response:
        models = await response.json()
    assert [model["id"] for model in models["data"]] == ["tiny"]


async def test_streaming_parses_as_the_openai_api_defines_it(engine, http):
    events = await stream_events(engine, http, prompt=PROMPT, max_tokens=12,
                                 stream_options={"include_usage": True})
    assert events[-1] == "[DONE]"
    chunks = [json.loads(event) for event in events[:-1]]
    *text_chunks, usage_chunk = chunks
    assert {chunk["id"] for chunk in chunks} == {chunks[0]["id"]}
    assert all(chunk["object"] == "text_completion" and chunk["model"] == "tiny" for chunk in chunks)
    assert all(len(chunk["choices"]) == 1 and chunk["choices"][0]["index"] == 0 for chunk in text_chunks)
    reasons = [chunk["choices"][0]["finish_reason"] for chunk in text_chunks]
    assert reasons[-1] == "length" and set(reasons[:-1]) == {None}
    assert usage_chunk["choices"] == [] and usage_chunk["usage"]["completion_tokens"] == 12
    whole = await complete(engine, http, prompt=PROMPT, max_tokens=12)
    assert "".join(chunk["choices"][0]["text"] for chunk in text_chunks) == whole["choices"][0]["text"]
    assert whole["usage"]["completion_tokens"] == 12


async def test_prompt_as_token_ids_gives_the_same_answer(engine, http):
    async with http.post(engine.url + "/tokenize", json={"prompt": PROMPT}) as response:
        ids = (await response.json())["tokens"]
    as_text = await complete(engine, http, prompt=PROMPT, max_tokens=8)
    as_ids = await complete(engine, http, prompt=ids, max_tokens=8)
    assert as_ids["usage"]["prompt_tokens"] == as_text["usage"]["prompt_tokens"] == len(ids)
    assert as_ids["choices"][0]["text"] == as_text["choices"][0]["text"]


async def test_stop_string_ends_the_text_before_it(engine, http):
    full = (await complete(engine, http, prompt=PROMPT, max_tokens=16))["choices"][0]["text"]
    stop = full[len(full) // 2: len(full) // 2 + 2]
    expected = full[: full.index(stop)]
    stopped = await complete(engine, http, prompt=PROMPT, max_tokens=16, stop=[stop])
    assert stopped["choices"][0]["text"] == expected
    assert stopped["choices"][0]["finish_reason"] == "stop"
    events = await stream_events(engine, http, prompt=PROMPT, max_tokens=16, stop=stop)
    streamed = "".join(json.loads(event)["choices"][0]["text"] for event in events[:-1])
    assert streamed == expected


async def test_chat_completions_answer_in_the_chat_shapes(engine, http):
    body = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 6, "temperature": 0}
    async with http.post(engine.url + "/v1/chat/completions", json=body) as response:
        answer = await response.json()
    assert answer["object"] == "chat.completion"
    assert answer["choices"][0]["message"]["role"] == "assistant"
    assert answer["usage"]["completion_tokens"] == 6
    events = await stream_events(engine, http, "/v1/chat/completions", **body)
    chunks = [json.loads(event) for event in events[:-1]]
    assert all(chunk["object"] == "chat.completion.chunk" for chunk in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"


async def test_bad_request_gets_400_with_the_reason(engine, http):
    async with http.post(engine.url + "/v1/completions", json={"max_tokens": 4}) as response:
        assert response.status == 400
        assert "prompt" in (await response.json())["error"]["message"]
    async with http.post(engine.url + "/v1/completions", data=b"{not json") as response:
        assert response.status == 400


async def test_clients_take_turns(engine, http):
    """Client a has three requests in before client b sends one: b's is served second, not fourth."""
    finished: list[str] = []

    async def request(name: str, client: str, tokens: int = 20) -> None:
        await complete(engine, http, prompt=PROMPT, max_tokens=tokens, user=client)
        finished.append(name)

    first = [asyncio.create_task(request("a0", "a", tokens=400))]
    first += [asyncio.create_task(request(f"a{n}", "a")) for n in (1, 2)]
    while (await engine.metrics(http))["osslsp_queue_depth"] < 3:
        await asyncio.sleep(0.01)
    await asyncio.gather(request("b", "b"), *first)
    assert finished == ["a0", "b", "a1", "a2"]


async def test_closing_one_stream_does_not_disturb_another(engine, http):
    alone = await complete(engine, http, prompt=PROMPT, max_tokens=30, user="b")
    before = await engine.metrics(http)

    async def closed_early() -> None:
        body = {"prompt": PROMPT, "max_tokens": 3000, "stream": True, "user": "a", "temperature": 0}
        async with http.post(engine.url + "/v1/completions", json=body) as response:
            for _ in range(3):
                await response.content.readline()
            response.close()

    other = asyncio.create_task(complete(engine, http, prompt=PROMPT, max_tokens=30, user="b"))
    await closed_early()
    together = await asyncio.wait_for(other, timeout=20)
    assert together["choices"][0] == alone["choices"][0]
    after = await engine.metrics(http)
    cancelled = 'osslsp_requests_total{endpoint="completions",finish_reason="cancelled"}'
    assert after.get(cancelled, 0) == before.get(cancelled, 0) + 1


KILLED_CLIENT = """
import asyncio, sys, aiohttp
async def main():
    async with aiohttp.ClientSession(headers={"Authorization": "Bearer " + sys.argv[2]}) as session:
        body = {"prompt": "x = 1", "max_tokens": 4000, "stream": True, "temperature": 0}
        async with session.post(sys.argv[1] + "/v1/completions", json=body) as response:
            await response.content.readline()
            print("streaming", flush=True)
            await asyncio.sleep(600)
asyncio.run(main())
"""


async def test_a_killed_clients_generation_stops(engine, http):
    before = await engine.metrics(http)
    client = subprocess.Popen([sys.executable, "-c", KILLED_CLIENT, engine.url, TOKEN],
                              stdout=subprocess.PIPE, text=True)
    assert await asyncio.to_thread(client.stdout.readline) == "streaming\n"
    client.send_signal(signal.SIGKILL)
    client.wait()
    killed_at = time.monotonic()
    cancelled = 'osslsp_requests_total{endpoint="completions",finish_reason="cancelled"}'
    while (now := await engine.metrics(http)).get(cancelled, 0) == before.get(cancelled, 0):
        # 4000 tokens would take the tiny model half a minute on a CPU.
        assert time.monotonic() - killed_at < 5, "the generation went on after its client died"
        await asyncio.sleep(0.05)
    assert now["osslsp_queue_depth"] == 0


async def test_metrics_count_the_requests_made(engine, http):
    before = await engine.metrics(http)
    for _ in range(3):
        await complete(engine, http, prompt=PROMPT, max_tokens=2)
    after = await engine.metrics(http)
    finished = 'osslsp_requests_total{endpoint="completions",finish_reason="length"}'
    assert after[finished] - before.get(finished, 0) == 3
    for histogram in ("osslsp_time_to_first_token_seconds", "osslsp_request_latency_seconds"):
        assert after[f"{histogram}_count"] - before[f"{histogram}_count"] == 3
    assert after["osslsp_generation_tokens_total"] - before["osslsp_generation_tokens_total"] == 6
    assert after["osslsp_queue_depth"] == 0
