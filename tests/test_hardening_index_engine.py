"""Hardening (issue 22), the engine's end: `osslsp engine` stopped by SIGTERM while it generates
exits cleanly. A real engine process with the tiny model on loopback."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from osslsp.engine.engine import Engine
from osslsp.engine.requests import Request
from osslsp.models import resolve_model
from osslsp.sampling import Sampling

ENGINE = [sys.executable, "-m", "osslsp.cli.engine", "engine", "--model", "tiny", "--listen",
          "127.0.0.1:0", "--audit-log", "off"]
RUNS = 4  # the abort came at about one stop in four
READY_SECONDS = 120.0


def _wait_ready(url: str) -> None:
    deadline = time.monotonic() + READY_SECONDS
    while True:
        try:
            with urllib.request.urlopen(url + "/health", timeout=5) as response:
                if response.status == 200:
                    return
        except urllib.error.HTTPError as error:
            assert error.code == 503, error
        assert time.monotonic() < deadline, "the engine never got ready"
        time.sleep(0.1)


def _post(port: int, stream: bool) -> socket.socket:
    """A long completion, sent on a plain socket (the test decides when it closes)."""
    body = json.dumps({"model": "tiny", "prompt": "def f(x):", "max_tokens": 4000,
                       "stream": stream}).encode()
    connection = socket.create_connection(("127.0.0.1", port), timeout=60)
    connection.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                       b"Content-Type: application/json\r\n"
                       + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    return connection


def _generating(port: int) -> list[socket.socket]:
    """A streamed completion under way (its first token has come: the engine thread is inside the
    model) and two more waiting for the engine."""
    streamed = _post(port, stream=True)
    received = b""
    while b"data:" not in received:
        chunk = streamed.recv(4096)
        assert chunk, received
        received += chunk
    return [streamed, _post(port, stream=False), _post(port, stream=False)]


@pytest.mark.parametrize("run", range(RUNS))
def test_sigterm_while_generating_exits_cleanly(tmp_path: Path, run: int) -> None:
    stderr_path = tmp_path / "stderr"
    with stderr_path.open("w") as stderr:
        engine = subprocess.Popen(ENGINE, stdout=subprocess.PIPE, stderr=stderr, text=True)
    try:
        line = engine.stdout.readline()
        assert " on " in line, stderr_path.read_text()
        url = line.rsplit(" on ", 1)[1].strip()
        _wait_ready(url)
        connections = _generating(int(url.rsplit(":", 1)[1]))
        engine.send_signal(signal.SIGTERM)
        code = engine.wait(timeout=60)
        for connection in connections:
            connection.close()
    finally:
        if engine.poll() is None:
            engine.kill()
            engine.wait()
    errors = stderr_path.read_text()
    assert "terminate called" not in errors
    assert code == 0, errors[-2000:]


def test_close_stops_the_running_generation_and_serves_none_left_waiting(tiny_dir) -> None:
    """What the SIGTERM path relies on: after `close` the engine thread ends at once (it went on
    with a generation that had no document key, and with those waiting, for minutes)."""
    engine = Engine(resolve_model("tiny"), device="cpu")
    engine.start()
    assert engine.wait_ready(120), engine.error
    endless = Request(list(range(10, 60)), Sampling(max_new_tokens=100_000), stop_ids=frozenset())
    running = engine.submit(endless)
    waiting = [engine.submit(endless) for _ in range(2)]
    next(iter(running))  # inside the model
    engine.close()
    engine.join(timeout=30)
    assert not engine._thread.is_alive()
    list(running)
    assert running.finish_reason == "cancelled"
    for generation in waiting:
        assert list(generation) == [] and generation.finish_reason == "cancelled"
