"""The language server on a GPU, measured from the client's side: `osslsp serve` over stdio,
as an editor runs it, with the model given on the command line (on the GPU machine:
`--model random:osslsp/data/gpt-oss-20b`, the real shapes with random FP16 weights).

Prints the time until the server reports ready, the model's GPU memory, and the latency of
inline completions (request sent to answer received) on a Python file of this repository.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


class Client:
    """A minimal JSON-RPC client over the server's stdio."""

    def __init__(self, command: list[str]):
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=REPO)
        self.responses: dict[object, dict] = {}
        self.notifications: list[dict] = []
        self.arrived = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        stream = self.process.stdout
        while True:
            header = stream.readline()
            if not header:
                return
            if header.lower().startswith(b"content-length"):
                length = int(header.split(b":")[1])
                while stream.readline().strip():
                    pass
                message = json.loads(stream.read(length))
                with self.arrived:
                    if "id" in message and "method" not in message:
                        self.responses[message["id"]] = message
                    elif "id" in message:  # a request from the server: accept it
                        self.send({"jsonrpc": "2.0", "id": message["id"], "result": None})
                    else:
                        self.notifications.append(message)
                    self.arrived.notify_all()

    def send(self, message: dict) -> None:
        body = json.dumps(message).encode()
        self.process.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.process.stdin.flush()

    def request(self, id_: object, method: str, params: dict, timeout: float = 600) -> dict:
        self.send({"jsonrpc": "2.0", "id": id_, "method": method, "params": params})
        with self.arrived:
            self.arrived.wait_for(lambda: id_ in self.responses, timeout)
        return self.responses.pop(id_)

    def wait_state(self, states: set[str], timeout: float) -> dict:
        def found():
            return next((n for n in self.notifications if n.get("method") == "osslsp/status"
                         and n["params"]["state"] in states), None)
        with self.arrived:
            self.arrived.wait_for(found, timeout)
        return found()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="random:osslsp/data/gpt-oss-20b")
    parser.add_argument("--file", default="osslsp/assistant.py")
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--max-gpu-memory", type=float, default=0.0, help="GiB per GPU (splits the model)")
    args = parser.parse_args()

    started = time.perf_counter()
    client = Client([sys.executable, "-m", "osslsp", "serve", "--model", args.model,
                     "--max-gpu-memory", str(args.max_gpu_memory)])
    client.request(1, "initialize", {"capabilities": {}, "rootUri": REPO.as_uri(),
                                     "initializationOptions": {"maxNewTokens": args.max_new_tokens}})
    client.send({"jsonrpc": "2.0", "method": "initialized", "params": {}})
    status = client.wait_state({"ready", "error"}, 600)
    ready_s = time.perf_counter() - started
    print(f"server ready: {status['params']}, {ready_s:.1f} s after start")
    if status["params"]["state"] != "ready":
        return 1
    path = REPO / args.file
    text = path.read_text()
    uri = path.as_uri()
    client.send({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": {
        "uri": uri, "languageId": "python", "version": 1, "text": text}}})
    lines = text.split("\n")
    # Cursors at the ends of non-blank lines through the file's second half.
    targets = [(n, len(line)) for n, line in enumerate(lines) if line.strip()][len(lines) // 2:]
    latencies, shown = [], 0
    for index in range(args.requests):
        line, character = targets[index * 7 % len(targets)]
        began = time.perf_counter()
        answer = client.request(f"c{index}", "textDocument/inlineCompletion", {
            "textDocument": {"uri": uri}, "position": {"line": line, "character": character},
            "context": {"triggerKind": 1}})
        latencies.append((time.perf_counter() - began) * 1000)
        shown += bool(answer.get("result", {}).get("items"))
    status = client.request("s", "workspace/executeCommand", {"command": "osslsp.status", "arguments": []})
    print("status:", json.dumps(status.get("result")))
    warm = latencies[1:]
    print(f"inline completion latency over {len(warm)} requests after the first (ms): "
          f"p50 {statistics.median(warm):.1f}, p95 {sorted(warm)[int(0.95 * (len(warm) - 1))]:.1f}, "
          f"first {latencies[0]:.1f}; {shown}/{len(latencies)} answered with an item")
    client.request("x", "shutdown", {})
    client.process.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
