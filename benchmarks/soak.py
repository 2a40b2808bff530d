"""A bounded fuzz and soak run against a real language server and a real engine, loopback only.

    python benchmarks/soak.py [--messages 7000] [--http 3000] [--keystrokes 1000] [--seed 22]

1. Hostile JSON-RPC on the language server's stdin (`osslsp serve --model tiny`): malformed JSON,
   wrong params, ids of every type, unknown methods, deep nesting, huge strings, bad positions.
   Every request must get an answer (a result or an error object).
2. A typing storm: one character a keystroke into an open document, each with an inline
   completion request and a `$/cancelRequest` of the previous one. Every request must be answered.
3. Hostile HTTP to `osslsp engine --model tiny` on 127.0.0.1: bad JSON, wrong types, absurd
   numbers, huge stop lists, deep nesting. Every answer must be a 4xx with an OpenAI error object;
   `/health` must stay 200.
The resident memory of both processes is read from /proc before and after. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import select
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

SERVE = [sys.executable, "-m", "osslsp", "serve", "--model", "tiny"]
ENGINE = [sys.executable, "-m", "osslsp.cli.engine", "engine", "--model", "tiny", "--listen", "127.0.0.1:0"]
ANSWER_SECONDS = 60.0


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Stdio:
    """The language server over its pipes, read with a deadline."""

    def __init__(self, root: Path):
        self.process = subprocess.Popen(SERVE, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL, cwd=root)
        self.buffer = b""
        self.answers: dict[object, dict] = {}

    def send_bytes(self, body: bytes) -> None:
        self.process.stdin.write(f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        self.process.stdin.flush()

    def send(self, message: dict) -> None:
        self.send_bytes(json.dumps(message).encode())

    def _read_one(self, deadline: float) -> dict:
        while True:
            header, found, rest = self.buffer.partition(b"\r\n\r\n")
            if found:
                length = int(header.split(b"Content-Length:")[1].split(b"\r\n")[0])
                if len(rest) >= length:
                    self.buffer = rest[length:]
                    return json.loads(rest[:length])
            ready, _, _ = select.select([self.process.stdout], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                raise TimeoutError("the language server stopped answering")
            chunk = os.read(self.process.stdout.fileno(), 1 << 16)
            if not chunk:
                raise EOFError("the language server exited")
            self.buffer += chunk

    def drain(self) -> None:
        """Read what has arrived, without waiting for more (answers kept by id)."""
        while b"\r\n\r\n" in self.buffer or select.select([self.process.stdout], [], [], 0)[0]:
            self._keep(self._read_one(time.monotonic() + ANSWER_SECONDS))

    def _keep(self, message: dict) -> None:
        if "method" not in message:  # server notifications and requests are dropped
            self.answers[json.dumps(message.get("id"))] = message

    def wait_for(self, ids: list) -> None:
        deadline = time.monotonic() + ANSWER_SECONDS
        while any(json.dumps(i) not in self.answers for i in ids):
            self._keep(self._read_one(deadline))


def hostile_messages(count: int, rng: random.Random, uri: str) -> list[tuple[bytes, object | None]]:
    """(body, id whose answer is due, or None when no answer is owed or it is answered with id null)."""
    made = []
    for number in range(count):
        request_id = 100_000 + number
        choice = rng.randrange(10)
        if choice == 0:
            made.append((b'{"jsonrpc": "2.0", "id": 1, "method": ' + os.urandom(8).hex().encode(), None))
        elif choice == 1:
            made.append((json.dumps({"jsonrpc": "2.0", "id": request_id, "method": "textDocument/hover",
                                     "params": {"textDocument": {"uri": rng.choice([5, None, [], uri])},
                                                "position": {"line": rng.randint(-5, 5)}}}).encode(), request_id))
        elif choice == 2:
            made.append((json.dumps({"jsonrpc": "2.0", "id": rng.choice([{"a": 1}, [1], 1.5, True]),
                                     "method": "shutdown"}).encode(), None))
        elif choice == 3:
            made.append((json.dumps({"jsonrpc": "2.0", "id": request_id, "method": f"nope/{number}"}).encode(),
                         request_id))
        elif choice == 4:
            depth = rng.choice([10, 1000, 50_000])
            made.append((b'{"jsonrpc": "2.0", "method": "x", "params": ' + b"[" * depth + b"]" * depth + b"}", None))
        elif choice == 5:
            made.append((json.dumps({"jsonrpc": "2.0", "id": request_id, "method": "textDocument/inlineCompletion",
                                     "params": {"textDocument": {"uri": uri},
                                                "position": {"line": rng.randint(0, 10**9), "character": 3},
                                                "context": {"triggerKind": 1}}}).encode(), request_id))
        elif choice == 6:
            made.append((json.dumps({"jsonrpc": "2.0", "method": "textDocument/didChange", "params": {
                "textDocument": {"uri": "file:///not/open.py", "version": number},
                "contentChanges": [{"text": "x" * rng.randint(0, 100_000)}]}}).encode(), None))
        elif choice == 7:
            made.append((json.dumps({"jsonrpc": "2.0", "id": request_id, "method": "workspace/executeCommand",
                                     "params": {"command": "osslsp.nope", "arguments": [{"a": [1] * 100}]}}).encode(),
                         request_id))
        elif choice == 8:
            made.append((os.urandom(rng.randint(1, 64)), None))
        else:
            made.append((json.dumps({"jsonrpc": "2.0", "id": request_id, "method": "textDocument/completion",
                                     "params": {"textDocument": {"uri": uri},
                                                "position": {"line": 0, "character": -1}}}).encode(), request_id))
    return made


def lsp_soak(messages: int, keystrokes: int, rng: random.Random) -> dict:
    root = Path(tempfile.mkdtemp(prefix="osslsp-soak-"))
    (root / "app.py").write_text("def add(a, b):\n    return a + b\n")
    uri = (root / "app.py").as_uri()
    server = Stdio(root)
    server.send({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                 "params": {"processId": None, "rootUri": root.as_uri(), "capabilities": {}}})
    server.wait_for([1])
    server.send({"jsonrpc": "2.0", "method": "initialized", "params": {}})
    server.send({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": {
        "uri": uri, "languageId": "python", "version": 1, "text": "def add(a, b):\n    return a + b\n"}}})
    server.send({"jsonrpc": "2.0", "id": 3, "method": "textDocument/inlineCompletion", "params": {
        "textDocument": {"uri": uri}, "position": {"line": 1, "character": 4}, "context": {"triggerKind": 1}}})
    server.wait_for([3])  # answered once the model is loaded: memory is measured in the steady state
    memory_before = rss_mib(server.process.pid)
    started = time.monotonic()
    owed = []
    for body, request_id in hostile_messages(messages, rng, uri):
        server.send_bytes(body)
        if request_id is not None:
            owed.append(request_id)
        server.drain()  # always: a server blocked on a full stdout stops reading its stdin
    server.wait_for(owed)
    hostile_seconds = time.monotonic() - started
    text, version, typed = "def add(a, b):\n    return a + b\n\ndef mul(a, b):\n    ", 1, []
    started = time.monotonic()
    for stroke in range(keystrokes):
        version += 1
        text += rng.choice("abcdefghij (),.")
        server.send({"jsonrpc": "2.0", "method": "textDocument/didChange", "params": {
            "textDocument": {"uri": uri, "version": version}, "contentChanges": [{"text": text}]}})
        request_id = 500_000 + stroke
        if typed:
            server.send({"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": typed[-1]}})
        line = text.count("\n")
        server.send({"jsonrpc": "2.0", "id": request_id, "method": "textDocument/inlineCompletion", "params": {
            "textDocument": {"uri": uri}, "position": {"line": line, "character": len(text.rsplit("\n", 1)[1])},
            "context": {"triggerKind": 2}}})
        typed.append(request_id)
        server.drain()
    server.wait_for(typed)
    storm_seconds = time.monotonic() - started
    memory_after = rss_mib(server.process.pid)
    answered = [server.answers[json.dumps(i)] for i in typed]
    server.send({"jsonrpc": "2.0", "id": 2, "method": "shutdown"})
    server.wait_for([2])
    server.send({"jsonrpc": "2.0", "method": "exit"})
    exit_code = server.process.wait(timeout=60)
    return {
        "lsp_hostile_messages": messages, "lsp_requests_owed": len(owed), "lsp_hostile_seconds": round(hostile_seconds, 1),
        "keystrokes": keystrokes, "keystroke_requests_answered": len(answered),
        "keystrokes_cancelled": sum(1 for a in answered if a.get("error", {}).get("code") == -32800),
        "keystrokes_completed": sum(1 for a in answered if "result" in a),
        "keystroke_errors": sorted({a["error"]["message"][:80] for a in answered
                                    if "error" in a and a["error"]["code"] != -32800}),
        "storm_seconds": round(storm_seconds, 1), "lsp_rss_mib_before": round(memory_before, 1),
        "lsp_rss_mib_after": round(memory_after, 1), "lsp_exit_code": exit_code,
    }


def hostile_bodies(count: int, rng: random.Random) -> list[bytes]:
    made = []
    for _ in range(count):
        choice = rng.randrange(7)
        if choice == 0:
            made.append(os.urandom(rng.randint(1, 200)))
        elif choice == 1:
            made.append(json.dumps({"prompt": rng.choice([5, None, [], [-1], [10**12], {"a": 1}])}).encode())
        elif choice == 2:
            made.append(json.dumps({"prompt": "x", "seed": rng.choice([10**30, -10**30, "1", 1.5])}).encode())
        elif choice == 3:
            made.append(json.dumps({"prompt": "x", "stop": [str(n) for n in range(rng.randint(17, 20_000))]}).encode())
        elif choice == 4:
            depth = rng.choice([1000, 100_000])
            made.append(b"[" * depth + b"]" * depth)
        elif choice == 5:
            made.append(json.dumps({"prompt": "x", "max_tokens": rng.choice([0, -1, 10**9, "9"])}).encode())
        else:
            made.append(json.dumps({"prompt": "x" * 300_000}).encode())
    return made


async def http_soak(count: int, rng: random.Random) -> dict:
    engine = subprocess.Popen(ENGINE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        url = engine.stdout.readline().rsplit(" on ", 1)[1].strip()
        async with aiohttp.ClientSession() as http:
            for _ in range(600):  # up to a minute for the model to load
                async with http.get(url + "/health") as response:
                    if response.status == 200:
                        break
                await asyncio.sleep(0.1)
            memory_before = rss_mib(engine.pid)
            started, statuses, not_openai = time.monotonic(), {}, 0
            for body in hostile_bodies(count, rng):
                async with http.post(url + "/v1/completions", data=body,
                                     headers={"Content-Type": "application/json"}) as response:
                    statuses[response.status] = statuses.get(response.status, 0) + 1
                    try:
                        not_openai += "error" not in await response.json()
                    except (ValueError, aiohttp.ContentTypeError):
                        not_openai += 1
            seconds = time.monotonic() - started
            async with http.get(url + "/health") as response:
                health = response.status
            memory_after = rss_mib(engine.pid)
    finally:
        engine.terminate()
        engine.wait(timeout=60)
    return {"http_hostile_requests": count, "http_statuses": statuses, "http_not_openai_errors": not_openai,
            "http_seconds": round(seconds, 1), "health_after": health,
            "engine_rss_mib_before": round(memory_before, 1), "engine_rss_mib_after": round(memory_after, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=7000)
    parser.add_argument("--http", type=int, default=3000)
    parser.add_argument("--keystrokes", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=22)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    result = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cpus": os.cpu_count()}
    result.update(lsp_soak(args.messages, args.keystrokes, rng))
    result.update(asyncio.run(http_soak(args.http, rng)))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
