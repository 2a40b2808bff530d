"""The remote backend serves from an OpenAI-compatible server that has no /health (llama.cpp's,
a plain OpenAI server): issue 18's readiness. The server here is a real aiohttp server on loopback
that implements only /v1/models and a streamed /v1/completions."""

from __future__ import annotations

import json

import pytest
from aiohttp import web

from osslsp.backends import GenerationSettings
from osslsp.backends.remote import Endpoint, RemoteBackend

pytestmark = pytest.mark.asyncio
ANSWER = ["return", " a", " + b"]


async def models(request: web.Request) -> web.Response:
    return web.json_response({"object": "list", "data": [{"id": "served-model", "object": "model"}]})


async def completions(request: web.Request) -> web.StreamResponse:
    body = await request.json()
    assert body["model"] == "served-model" and body["stream"] is True
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    for piece in ANSWER:
        chunk = {"object": "text_completion", "choices": [{"index": 0, "text": piece, "finish_reason": None}]}
        await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
    await response.write(b"data: [DONE]\n\n")
    return response


async def test_a_server_without_health_serves(tiny_text):
    app = web.Application()
    app.add_routes([web.get("/v1/models", models), web.post("/v1/completions", completions)])
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    states = []
    backend = RemoteBackend(Endpoint.parse(f"http://127.0.0.1:{port}"), "asked-model", lambda: tiny_text,
                            lambda state, message: states.append((state, message)))
    try:
        await backend.wait_ready()
        assert backend.state == "ready", states
        stream = backend.stream("def add(a, b):\n    ", tiny_text.encode("x"), frozenset(), GenerationSettings(),
                                key=None, stop_when=None)
        assert [delta async for delta in stream] == ANSWER
    finally:
        backend.close()
        await runner.cleanup()
