"""Typing through the language server (issue 23): what a keystroke costs, seen from the editor.

Starts `osslsp serve` on stdio as an editor does, opens a real file with a stretch of it removed,
and types that stretch back one character at a time, 30-60 ms apart: for each key a didChange,
a `$/cancelRequest` of the previous inline completion if it is still open, and a new
`textDocument/inlineCompletion`. Reported per keystroke, p50/p95:
- prompt build: `Assistant.completion_prompt` (retrieval included), from the server's log;
- queue: from the request leaving the client to the prompt build starting in the server
  (transport, the event loop, the hop to the prompt thread); both sides read CLOCK_MONOTONIC;
- TTFT: the server's own figure (`completion {'ttft_ms': ...}`: from the completion's start, the
  prompt build included, to the first token), for the requests that were not cancelled; and its
  parts: the hops to the prompt thread and back, the work on it (prompt and healing), and
  from the submit to the backend to the first token on the event loop (`ttft_first_token_ms`,
  to compare with the engine's own keystroke TTFT in `osslsp bench`);
- answer: from the request leaving the client to its answer, for the requests not cancelled.

Run on the CPU (SmolLM2; it answers in seconds, so pause where a typist pauses to see answers):
    python benchmarks/typing_through_server.py --model smollm2 --pause-ms 4000
    python benchmarks/typing_through_server.py --model tiny
On a CUDA machine with gpt-oss-20b's full shapes (random FP16 weights):
    python benchmarks/typing_through_server.py --model random:osslsp/data/gpt-oss-20b --device cuda --json typing-gpu.json
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcRequestCancelled
from pygls.lsp.client import LanguageClient

REPO = Path(__file__).resolve().parent.parent
STATUS = "osslsp/status"


@dataclass
class Keystroke:
    """One key typed and the completion asked for after it."""

    sent: float  # monotonic seconds
    answered: float | None = None
    outcome: str = "pending"  # "shown", "empty", "cancelled", "error"
    server: dict = field(default_factory=dict)  # the server's `completion {...}` timings
    prompt: dict = field(default_factory=dict)  # the server's `prompt {...}` log line


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"n": 0}
    ordered = sorted(values)
    return {"n": len(ordered), "p50": round(statistics.median(ordered), 1),
            "p95": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 1),
            "max": round(ordered[-1], 1)}


def stretch(path: Path, after: str, chars: int) -> tuple[str, int, str]:
    """The file without about `chars` characters (whole lines) from the line after the first that
    holds `after`, where the cut starts (offset), and the text to type back."""
    text = path.read_text()
    found = text.find(after)
    if found < 0:
        raise SystemExit(f"{path} has no line with {after!r}")
    start = text.index("\n", found) + 1
    end = text.find("\n", min(start + chars, len(text) - 1))
    end = len(text) if end < 0 else end
    return text[:start] + text[end:], start, text[start:end]


def position_at(text: str, offset: int) -> types.Position:
    """An LSP position (UTF-16 code units) of a string offset."""
    line = text.count("\n", 0, offset)
    column = text[text.rfind("\n", 0, offset) + 1: offset]
    return types.Position(line=line, character=len(column.encode("utf-16-le")) // 2)


class TypingClient:
    """An editor that types: one LSP client over stdio and what the server told it."""

    def __init__(self):
        self.client = LanguageClient("osslsp-typing", "1.0")
        self.logs: list[str] = []
        self.states: asyncio.Queue = asyncio.Queue()
        self.client.feature(types.WINDOW_LOG_MESSAGE)(lambda params: self.logs.append(params.message))
        self.client.feature(types.WINDOW_SHOW_MESSAGE)(lambda params: print("server:", params.message,
                                                                             file=sys.stderr))
        # pygls marks each handler with attributes: plain functions, not bound methods.
        self.client.feature(STATUS)(lambda params: self.states.put_nowait(
            (getattr(params, "state", ""), getattr(params, "message", ""))))

    async def start(self, command: list[str], options: dict, root: Path) -> None:
        await self.client.start_io(*command, cwd=root)  # as an editor starts it: in the workspace
        self._drainer = asyncio.create_task(self._drain(self.client._server.stderr))  # pygls keeps the process
        await self.client.initialize_async(types.InitializeParams(
            capabilities=types.ClientCapabilities(text_document=types.TextDocumentClientCapabilities(
                inline_completion=types.InlineCompletionClientCapabilities())),
            root_uri=root.as_uri(), initialization_options=options))
        self.client.initialized(types.InitializedParams())
        while True:
            state, message = await self.states.get()
            print(f"status: {state} {message}", file=sys.stderr)
            if state == "error":
                raise SystemExit(f"the server could not start its model: {message}")
            if state == "ready":
                return

    @staticmethod
    async def _drain(stream) -> None:
        while await stream.read(1 << 16):
            pass  # a full stderr pipe would stall the server

    def completion_log(self) -> dict:
        """The timings of the newest `completion {...}` log message not taken yet."""
        while self.logs:
            message = self.logs.pop()
            if message.startswith("completion {"):
                self.logs.clear()
                return ast.literal_eval(message[len("completion "):])
        return {}

    async def stop(self) -> None:
        await self.client.shutdown_async(None)
        self.client.exit(None)
        await self.client.stop()


async def type_text(editor: TypingClient, uri: str, document: str, offset: int, typed: str,
                    rng: random.Random, pause_ms: float) -> list[Keystroke]:
    """Type `typed` at `offset`, one key at a time, each followed by an inline completion."""
    client, version = editor.client, 1
    keystrokes: list[Keystroke] = []
    pending: tuple[str, asyncio.Task] | None = None

    async def ask(keystroke: Keystroke, params: types.InlineCompletionParams, msg_id: str) -> None:
        try:
            result = await client.protocol.send_request_async(types.TEXT_DOCUMENT_INLINE_COMPLETION, params, msg_id)
            keystroke.outcome = "shown" if result and result.items else "empty"
            keystroke.server = editor.completion_log()
        except JsonRpcRequestCancelled:
            keystroke.outcome = "cancelled"
        except JsonRpcException as error:
            keystroke.outcome = "error"
            print(f"error: {error}", file=sys.stderr)
        keystroke.answered = time.monotonic()

    for index, character in enumerate(typed):
        at = position_at(document, offset)
        document = document[:offset] + character + document[offset:]
        offset += len(character)
        version += 1
        client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[types.TextDocumentContentChangePartial(range=types.Range(start=at, end=at),
                                                                    text=character)]))
        if pending is not None and not pending[1].done():
            client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id=pending[0]))
        keystroke = Keystroke(sent=time.monotonic())
        keystrokes.append(keystroke)
        params = types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri), position=position_at(document, offset),
            context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Automatic))
        msg_id = f"key-{index}"
        pending = (msg_id, asyncio.create_task(ask(keystroke, params, msg_id)))
        delay = rng.uniform(0.030, 0.060)
        if character == "\n" and pause_ms:
            delay = pause_ms / 1000  # a typist's pause at the end of a line
        await asyncio.sleep(delay)
    if pending is not None:
        await pending[1]
    return keystrokes


def attach_prompt_logs(keystrokes: list[Keystroke], log_file: Path) -> None:
    """Each `prompt {...}` line of the server's log goes to the last keystroke sent before it began."""
    sent = [keystroke.sent for keystroke in keystrokes]
    for line in log_file.read_text(errors="replace").splitlines():
        _, found, rest = line.partition(" osslsp.assistant: prompt ")
        if not found:
            continue
        entry = json.loads(rest)
        index = max((i for i, at in enumerate(sent) if at <= entry["at"]), default=None)
        if index is not None:
            keystrokes[index].prompt = entry


def report(keystrokes: list[Keystroke]) -> dict:
    answered = [k for k in keystrokes if k.outcome in ("shown", "empty")]
    with_prompt = [k for k in keystrokes if k.prompt]
    return {
        "keystrokes": len(keystrokes),
        "outcomes": {outcome: sum(k.outcome == outcome for k in keystrokes)
                     for outcome in ("shown", "empty", "cancelled", "error", "pending")},
        "prompt_build_ms": percentiles([k.prompt["build_ms"] for k in with_prompt]),
        "retrieval_ms": percentiles([k.prompt["retrieval_ms"] for k in with_prompt]),
        "queue_ms": percentiles([(k.prompt["at"] - k.sent) * 1000 for k in with_prompt]),
        "ttft_ms": percentiles([k.server["ttft_ms"] for k in answered if "ttft_ms" in k.server]),
        # what the TTFT is made of: the hops to the prompt thread and back, the work on it, and
        # from the submit to the engine to the first token on the event loop
        **{f"ttft_{part}": percentiles([k.server[part] for k in answered if part in k.server])
           for part in ("hops_ms", "prompt_ms", "first_token_ms")},
        "answer_ms": percentiles([(k.answered - k.sent) * 1000 for k in answered]),
        "prompt_tokens": percentiles([k.prompt["tokens"] for k in with_prompt]),
    }


async def run(options: argparse.Namespace) -> dict:
    path = (REPO / options.file).resolve()
    document, offset, typed = stretch(path, options.after, options.chars)
    log_file = Path(tempfile.mkdtemp(prefix="osslsp-typing-")) / "server.log"
    command = [sys.executable, "-m", "osslsp", "serve", "--model", options.model, "--device", options.device,
               "--dtype", options.dtype, "--log-file", str(log_file)]
    editor = TypingClient()
    started = time.monotonic()
    await editor.start(command, {"contextTokens": options.budget, "maxNewTokens": options.max_new_tokens},
                       REPO)
    print(f"ready in {time.monotonic() - started:.1f} s; typing {len(typed)} characters into {options.file}",
          file=sys.stderr)
    uri = path.as_uri()
    editor.client.text_document_did_open(types.DidOpenTextDocumentParams(text_document=types.TextDocumentItem(
        uri=uri, language_id="python" if path.suffix == ".py" else "", version=1, text=document)))
    rng = random.Random(options.seed)
    # One completion first, unmeasured: the index's first use, the model's first prefill.
    await editor.client.text_document_inline_completion_async(types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=position_at(document, offset),
        context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Invoked)))
    keystrokes = await type_text(editor, uri, document, offset, typed, rng, options.pause_ms)
    await editor.stop()
    attach_prompt_logs(keystrokes, log_file)
    return {
        "date": date.today().isoformat(), "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"load {os.getloadavg()[0]:.1f}", "python": sys.version.split()[0], "model": options.model,
        "device": options.device, "budget": options.budget, "file": options.file, "after": options.after,
        "pause_ms": options.pause_ms, "server_log": str(log_file), "results": report(keystrokes),
    }


def main() -> int:
    arguments = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    arguments.add_argument("--model", default="smollm2")
    arguments.add_argument("--device", default="auto", choices=("auto", "cuda", "cpu"))
    arguments.add_argument("--dtype", default="float16")
    arguments.add_argument("--budget", type=int, default=2048, help="contextTokens (default: %(default)s)")
    arguments.add_argument("--max-new-tokens", type=int, default=32)
    arguments.add_argument("--file", default="osslsp/index/retrieval.py", help="relative to the repository")
    arguments.add_argument("--after", default="def _window_above(", help="typing starts on the next line")
    arguments.add_argument("--chars", type=int, default=300, help="how much to type (whole lines)")
    arguments.add_argument("--pause-ms", type=float, default=0.0, help="pause after each typed line break")
    arguments.add_argument("--seed", type=int, default=23)
    arguments.add_argument("--json", type=Path, help="also write the results here")
    options = arguments.parse_args()
    result = asyncio.run(run(options))
    print(json.dumps(result, indent=1))
    if options.json:
        options.json.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
