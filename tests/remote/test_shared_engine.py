"""`engine = "shared"`: language servers of several windows share one engine on a Unix socket."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest
from pytest_lsp import ClientServerConfig

from osslsp.remote.metrics import parse_metrics
from tests.remote.conftest import RUNTIME, SERVE_TINY_FOLDER
from tests.remote.test_remote_lsp import initialize_params
from tests.test_server import inline_params, open_document, wait_until_ready

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def engine_metrics(socket: str) -> dict[str, float]:
    async with aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=socket)) as session:
        async with session.get("http://localhost/metrics") as response:
            return parse_metrics(await response.text())


async def test_two_language_servers_share_one_engine_that_leaves_when_they_do(tiny_dir):
    servers = [await ClientServerConfig(server_command=SERVE_TINY_FOLDER).start() for _ in range(2)]
    try:
        for server in servers:
            await server.initialize_session(initialize_params("shared", ""))
        statuses = await asyncio.gather(*(wait_until_ready(server) for server in servers))
        assert [status.state for status in statuses] == ["ready", "ready"], statuses
        sockets = list(RUNTIME.glob("engine-*.sock"))
        assert len(sockets) == 1, "both windows use the same engine"
        assert sockets[0].stat().st_mode & 0o777 == 0o600
        assert RUNTIME.stat().st_mode & 0o777 == 0o700

        async def complete(server, name: str):
            uri = open_document(server, name, 'def add(a, b):\n    """Return the sum."""\n    return a\n')
            return await server.text_document_inline_completion_async(inline_params(uri, 2, 12))

        results = await asyncio.gather(complete(servers[0], "one.py"), complete(servers[1], "two.py"))
        assert all(result.items for result in results)
        metrics = await engine_metrics(str(sockets[0]))
        assert metrics["osslsp_attached_clients"] == 2
        served = [value for key, value in metrics.items()
                  if key.startswith('osslsp_requests_total{endpoint="completions"')]
        assert sum(served) == 2
    finally:
        for server in servers:
            await server.shutdown_session()
    left = time.monotonic()
    while sockets[0].exists():  # the idle timeout is 2 s in these tests
        assert time.monotonic() - left < 20, "the shared engine stayed after its last window left"
        await asyncio.sleep(0.2)


async def test_a_bad_engine_setting_is_a_clear_error(tiny_dir):
    server = await ClientServerConfig(server_command=SERVE_TINY_FOLDER).start()
    try:
        await server.initialize_session(initialize_params("gpu-box:8000", ""))
        status = await wait_until_ready(server)
    finally:
        await server.shutdown_session()
    assert status.state == "error" and "http(s)://host:port" in status.message
