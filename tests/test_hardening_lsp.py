"""The language server against hostile and careless clients, spoken to in raw JSON-RPC over its
real stdin and a real TCP socket (issue 22; issue 19's undeserializable params)."""

from __future__ import annotations

import json
import os
import select
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

SERVE = [sys.executable, "-m", "osslsp", "serve", "--model", "tiny"]
INITIALIZE = {"processId": None, "rootUri": None, "capabilities": {}}


def frame(message: dict | bytes) -> bytes:
    body = message if isinstance(message, bytes) else json.dumps(message).encode()
    return f"Content-Length: {len(body)}\r\n\r\n".encode() + body


class Frames:
    """Reads LSP frames from a byte stream (a pipe or a socket), bounded by a deadline."""

    def __init__(self, fileno: int):
        self._fileno = fileno
        self._buffer = b""

    def _fill(self, deadline: float) -> None:
        ready, _, _ = select.select([self._fileno], [], [], max(0.0, deadline - time.monotonic()))
        assert ready, "no answer in time"
        chunk = os.read(self._fileno, 65536)
        assert chunk, "the server closed the stream"
        self._buffer += chunk

    def next(self, timeout: float = 30) -> dict:
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in self._buffer:
            self._fill(deadline)
        header, _, rest = self._buffer.partition(b"\r\n\r\n")
        length = int(header.split(b"Content-Length:")[1].split(b"\r\n")[0])
        while len(rest) < length:
            self._fill(deadline)
            header, _, rest = self._buffer.partition(b"\r\n\r\n")
        self._buffer = rest[length:]
        return json.loads(rest[:length])

    def answer(self, request_id, timeout: float = 30) -> dict:
        """The response to one request (notifications and server requests on the way skipped)."""
        while True:
            message = self.next(timeout)
            if "method" not in message and message.get("id") == request_id:
                return message


class StdioServer:
    def __init__(self, *args: str):
        self.process = subprocess.Popen(SERVE + list(args), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL)
        self.frames = Frames(self.process.stdout.fileno())

    def send(self, message: dict | bytes) -> None:
        self.process.stdin.write(frame(message))
        self.process.stdin.flush()

    def request(self, request_id, method: str, params=None) -> dict:
        self.send({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})
        return self.frames.answer(request_id)

    def close(self) -> int:
        if self.process.poll() is None:
            self.process.kill()
        return self.process.wait(timeout=30)


@pytest.fixture
def server():
    started = StdioServer()
    assert "capabilities" in started.request(1, "initialize", INITIALIZE)["result"]
    yield started
    started.close()


def test_undeserializable_params_get_invalid_params_and_the_server_goes_on(server):
    server.send({"jsonrpc": "2.0", "method": "initialized", "params": {}})
    answer = server.request(2, "textDocument/hover", {"textDocument": {"uri": 5}, "position": {"line": -1}})
    assert answer["error"]["code"] == -32602
    assert "result" in server.request(3, "shutdown")


def test_a_selected_completion_range_sent_as_an_array_is_taken_as_a_range(server, tmp_path):
    uri = (tmp_path / "a.py").as_uri()
    server.send({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": {
        "uri": uri, "languageId": "python", "version": 1, "text": "import os\nos.pa"}}})
    position = {"line": 1, "character": 5}
    answer = server.request(2, "textDocument/inlineCompletion", {
        "textDocument": {"uri": uri}, "position": position,
        "context": {"triggerKind": 1, "selectedCompletionInfo": {
            "range": [{"line": 1, "character": 3}, position], "text": "path"}}})
    assert "error" not in answer or answer["error"]["code"] not in (-32602, -32603), answer


def test_malformed_json_gets_a_parse_error_answer(server):
    server.send(b'{"jsonrpc": "2.0", "id": 7, "method": ')
    answer = server.frames.answer(None)
    assert answer["error"]["code"] == -32700
    assert "result" in server.request(3, "shutdown")


def test_an_object_as_request_id_gets_invalid_request(server):
    server.send({"jsonrpc": "2.0", "id": {"x": 1}, "method": "shutdown"})
    answer = server.frames.answer(None)
    assert answer["error"]["code"] == -32600


def test_requests_after_shutdown_get_invalid_request_and_exit_says_how_it_ended(server):
    assert "result" in server.request(2, "shutdown")
    assert server.request(3, "textDocument/hover", {"textDocument": {"uri": "file:///a.py"},
                                                    "position": {"line": 0, "character": 0}})["error"]["code"] == -32600
    server.send({"jsonrpc": "2.0", "method": "exit"})
    assert server.process.wait(timeout=30) == 0


def test_exit_without_shutdown_exits_1():
    started = StdioServer()
    try:
        started.request(1, "initialize", INITIALIZE)
        started.send({"jsonrpc": "2.0", "method": "exit"})
        assert started.process.wait(timeout=30) == 1
    finally:
        started.close()


# --- TCP: a token, checked before any message is processed ------------------------------------

def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class TcpServer:
    def __init__(self, *args: str, env: dict | None = None):
        self.port = free_port()
        self.process = subprocess.Popen(SERVE + ["--tcp", f"127.0.0.1:{self.port}", *args], stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                        env={**os.environ, **(env or {})})
        ready, _, _ = select.select([self.process.stderr], [], [], 60)
        self.announcement = self.process.stderr.readline() if ready else ""  # printed once it listens

    def connect(self) -> tuple[socket.socket, Frames]:
        connection = socket.create_connection(("127.0.0.1", self.port), timeout=60)
        return connection, Frames(connection.fileno())

    def initialize(self, options) -> dict:
        """The answer to an initialize sent first on a new connection with these options."""
        connection, frames = self.connect()
        with connection:
            connection.sendall(frame({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                                      "params": {**INITIALIZE, "initializationOptions": options}}))
            answer = frames.answer(1)
            if "error" in answer:
                assert connection.recv(100) == b"", "the connection is closed after the refusal"
            return answer

    def stop(self) -> None:
        self.process.kill()
        self.process.wait(timeout=30)


def test_tcp_refuses_a_connection_without_the_token(tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("correct-horse-battery-staple\n")
    server = TcpServer("--token-file", str(token_file))
    try:
        for options in (None, {"token": "wrong"}):
            answer = server.initialize(options)
            assert answer["error"]["code"] == -32600 and "token" in answer["error"]["message"]
        connection, frames = server.connect()
        with connection:  # anything but initialize first is refused too
            connection.sendall(frame({"jsonrpc": "2.0", "id": 1, "method": "shutdown"}))
            assert frames.answer(1)["error"]["code"] == -32600
        assert "capabilities" in server.initialize({"token": "correct-horse-battery-staple"})["result"]
    finally:
        server.stop()


def test_tcp_without_a_token_makes_one_in_a_private_file(tmp_path):
    runtime = tmp_path / "runtime"
    server = TcpServer(env={"OSSLSP_RUNTIME_DIR": str(runtime), "OSSLSP_TOKEN": ""})
    try:
        token_file = Path(server.announcement.split("token in ")[1].split()[0])
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        assert "capabilities" in server.initialize({"token": token_file.read_text().strip()})["result"]
    finally:
        server.stop()


def test_tcp_off_loopback_needs_a_token():
    result = subprocess.run(SERVE + ["--tcp", "0.0.0.0:0"], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "OSSLSP_TOKEN": ""})
    assert result.returncode == 2 and "token" in result.stderr
