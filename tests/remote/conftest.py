"""Engines for the remote tests: real `osslsp engine --model tiny` processes, on loopback only.

Every process of the run shares one private runtime directory (sockets of shared engines) and a
short idle timeout, so that a shared engine started by a test goes away soon after it.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest

from osslsp.models import tiny_dir
from osslsp.remote.metrics import parse_metrics

# Set before any server process starts (and short: a Unix socket path holds ~100 bytes).
RUNTIME = Path(tempfile.mkdtemp(prefix="osr-", dir="/tmp"))
os.environ["OSSLSP_RUNTIME_DIR"] = str(RUNTIME)
os.environ["OSSLSP_ENGINE_IDLE_TIMEOUT"] = "2"

ENGINE_TINY = [sys.executable, "-m", "osslsp.cli.engine", "engine", "--model", "tiny"]
# The tiny checkpoint named by its folder (the `tiny_dir` fixture builds it): a language server
# that only reads its tokenizer then starts without torch, as it would with a real checkpoint.
SERVE_TINY_FOLDER = [sys.executable, "-m", "osslsp", "serve", "--model", str(tiny_dir())]
TOKEN = "test-token-0123456789"


class EngineProcess:
    """An engine subprocess and the address it announced on stdout."""

    def __init__(self, *args: str):
        self.process = subprocess.Popen(ENGINE_TINY + list(args), stdout=subprocess.PIPE, text=True)
        line = self.process.stdout.readline()
        if " on " not in line:
            self.process.kill()
            raise RuntimeError(f"the engine did not start (exit {self.process.wait()}): {line!r}")
        self.address = line.rsplit(" on ", 1)[1].strip()
        self.url = "http://localhost" if self.address.startswith("unix:") else self.address

    @asynccontextmanager
    async def session(self, token: str | None = None):
        """An HTTP client for this engine (Unix socket or TCP), with a bearer token if given."""
        connector = (aiohttp.UnixConnector(path=self.address[5:]) if self.address.startswith("unix:")
                     else aiohttp.TCPConnector())
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
            yield session

    async def wait_ready(self, session: aiohttp.ClientSession) -> None:
        while True:
            async with session.get(self.url + "/health") as response:
                if response.status == 200:
                    return
                assert response.status == 503, await response.text()
            await asyncio.sleep(0.1)

    async def metrics(self, session: aiohttp.ClientSession) -> dict[str, float]:
        async with session.get(self.url + "/metrics") as response:
            assert response.status == 200
            return parse_metrics(await response.text())

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


@pytest.fixture(scope="session")
def engine():
    """One engine for the run's HTTP tests: TCP on loopback, any free port, a bearer token."""
    process = EngineProcess("--listen", "127.0.0.1:0", "--token", TOKEN)
    yield process
    process.stop()
