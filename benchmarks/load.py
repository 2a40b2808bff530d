"""A team on one engine: N concurrent clients over HTTP against `osslsp engine`, closed loop.

Each client sends a completion request (a `--prompt-tokens` prompt as token ids, `--new-tokens`
new tokens, greedy, streamed) and sends its next as soon as the answer is complete. Two prompt modes:
- `typing`: each client keeps its own document, and each next request extends it by a few tokens,
  as a typist's keystrokes do (the engine reuses that client's cached prefix);
- `fresh`: unrelated prompts every time (prefill-bound: every request prefills its whole prompt).
Per mode and N it prints aggregate tokens/s (tokens streamed / wall time), p50/p95 latency
(request sent to last token), p50 time to first token, and errors. `--trace` starts the engine
with `--trace` and adds, per run, where the time went inside the engine (request phases and the
host time of each batched step's parts, from its /osslsp/trace).

`--max-batch 1,32` runs an engine per value (1: one request at a time, the engine before batching)
on the same model, one after the other. Example on the GPU machine:
    python3 benchmarks/load.py --model random:osslsp/data/gpt-oss-20b --max-batch 1,32 --json out.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field

import aiohttp

KEYSTROKE_TOKENS = 3  # a typing client's next prompt: its document and a few more tokens
ERROR_PAUSE_SECONDS = 1.0


@dataclass
class Run:
    """What the clients of one (mode, N) run saw."""

    latencies: list[float] = field(default_factory=list)
    first_tokens: list[float] = field(default_factory=list)
    tokens: int = 0
    errors: list[str] = field(default_factory=list)


class Engine:
    """An `osslsp engine` process on loopback, and its address."""

    def __init__(self, model: str, max_batch: int, max_context: int, extra: list[str]):
        command = [sys.executable, "-m", "osslsp", "engine", "--model", model, "--listen", "127.0.0.1:0",
                   "--max-batch", str(max_batch), "--max-context", str(max_context), *extra]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        line = self.process.stdout.readline()
        if " on " not in line:
            raise RuntimeError(f"the engine did not start (exit {self.process.wait()}): {line!r}")
        self.url = line.rsplit(" on ", 1)[1].strip()

    async def wait_ready(self, session: aiohttp.ClientSession, timeout: float = 900) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            async with session.get(self.url + "/health") as response:
                body = await response.json()
                if response.status == 200:
                    return body
                if response.status != 503:
                    raise RuntimeError(f"the engine failed: {body}")
            await asyncio.sleep(0.5)
        raise RuntimeError("the engine was not ready in time")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=60)


async def _request(session: aiohttp.ClientSession, url: str, prompt: list[int], new_tokens: int, user: str,
                   run: Run | None) -> None:
    """One streamed completion; its latency, first token and tokens go into `run` (None: warm-up)."""
    body = {"prompt": prompt, "max_tokens": new_tokens, "temperature": 0, "stream": True, "user": user,
            "ignore_eos": True,  # every answer new_tokens long, whatever the random weights say
            "stream_options": {"include_usage": True}}
    sent = time.perf_counter()
    first, tokens = None, 0
    try:
        async with session.post(url + "/v1/completions", json=body) as response:
            if response.status != 200:
                raise RuntimeError(f"HTTP {response.status}: {(await response.text())[:200]}")
            async for line in response.content:
                if not line.startswith(b"data: ") or line.startswith(b"data: [DONE]"):
                    continue
                event = json.loads(line[6:])
                if "error" in event:
                    raise RuntimeError(event["error"].get("message", "error"))
                if event["choices"] and event["choices"][0]["text"]:
                    first = first or time.perf_counter()
                if event.get("usage"):
                    tokens = event["usage"]["completion_tokens"]
    except Exception as error:  # counted, never fatal: a load test reports its errors
        if run is not None:
            run.errors.append(str(error)[:200])
        await asyncio.sleep(ERROR_PAUSE_SECONDS)  # as a client backs off (after a 429, say)
        return
    if run is not None:
        done = time.perf_counter()
        run.latencies.append(done - sent)
        run.first_tokens.append((first or done) - sent)
        run.tokens += tokens


class Client:
    """One simulated user: a document (token ids) and a name the engine keeps its cache under."""

    def __init__(self, mode: str, index: int, args, rng: random.Random):
        self.mode, self.args, self.rng = mode, args, rng
        self.user = f"{mode}-client-{index}"
        self.document = self._tokens(args.prompt_tokens)

    def _tokens(self, count: int) -> list[int]:
        return [self.rng.randrange(100, self.args.vocab) for _ in range(count)]

    def next_prompt(self) -> list[int]:
        if self.mode == "typing":
            self.document = self.document + self._tokens(KEYSTROKE_TOKENS)
        else:
            self.document = self._tokens(self.args.prompt_tokens)
        return self.document

    async def loop(self, session, url: str, stop_at: float, run: Run) -> None:
        """Closed loop until `stop_at`: a request, then the next as soon as it is answered."""
        while time.perf_counter() < stop_at:
            await _request(session, url, self.next_prompt(), self.args.new_tokens, self.user, run)


def _percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def measure(url: str, mode: str, clients: int, args) -> dict:
    """One closed-loop run of `clients` clients for `args.seconds` seconds (after their warm-up)."""
    run = Run()
    rng = random.Random(clients * 7919 + len(mode))
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=600)) as session:
        users = [Client(mode, index, args, rng) for index in range(clients)]
        # Warm-up, not measured: each client's first prompt (in typing mode, the prefix it then extends).
        await asyncio.gather(*(_request(session, url, user.document, args.new_tokens, user.user, None)
                               for user in users))
        if args.trace:
            await _trace(session, url)  # from here on
        started = time.perf_counter()
        await asyncio.gather(*(user.loop(session, url, started + args.seconds, run) for user in users))
        wall = time.perf_counter() - started
        trace = await _trace(session, url) if args.trace else None
    return {
        "mode": mode, "clients": clients, "requests": len(run.latencies), "errors": len(run.errors),
        "tokens_per_second": round(run.tokens / wall, 1),
        "p50_ms": round(_percentile(run.latencies, 0.5) * 1000, 1),
        "p95_ms": round(_percentile(run.latencies, 0.95) * 1000, 1),
        "ttft_p50_ms": round(_percentile(run.first_tokens, 0.5) * 1000, 1),
        "first_error": run.errors[0] if run.errors else "",
        **({"trace": trace} if trace else {}),
    }


async def _trace(session: aiohttp.ClientSession, url: str) -> dict:
    """The engine's trace since the last call (which it then forgets)."""
    async with session.get(url + "/osslsp/trace", params={"reset": "1"}) as response:
        return await response.json()


def _trace_lines(trace: dict) -> list[str]:
    """The trace in a few lines: request phases, then step parts (p50 / mean ms)."""
    def cell(name: str, stats: dict) -> str:
        return f"{name} {stats.get('p50_ms', 0):.2f}/{stats.get('mean_ms', 0):.2f}" if stats.get("n") else ""
    requests = "  ".join(cell(name, stats) for name, stats in trace["requests"].items())
    steps = "  ".join(cell(name, stats) for name, stats in trace["steps"].items())
    rows = "  ".join(f"{rows}:{stats['n']}x{stats['mean_ms']:.2f}" for rows, stats in trace["step_by_rows"].items())
    return [f"    requests (p50/mean ms): {requests}", f"    steps (p50/mean ms): {steps}",
            f"    steps by rows (count x mean ms): {rows}"]


async def main_async(args) -> list[dict]:
    results = []
    for max_batch in args.max_batch:
        extra = ["--experts", args.experts] + (["--trace"] if args.trace else []) + (["--audit-log", args.audit_log] if args.audit_log else [])
        engine = Engine(args.model, max_batch, args.max_context, extra) if args.model else None
        url = engine.url if engine else args.url
        try:
            async with aiohttp.ClientSession() as session:
                health = await Engine.wait_ready(engine, session) if engine else {}
            print(f"engine --max-batch {max_batch}: {health.get('device', '')} {health.get('dtype', '')}", flush=True)
            for mode in args.modes:
                for clients in args.clients:
                    row = {"max_batch": max_batch, **await measure(url, mode, clients, args)}
                    results.append(row)
                    print(f"max_batch {max_batch:3} {mode:6} N={clients:3}: {row['tokens_per_second']:8.1f} tok/s  "
                          f"p50 {row['p50_ms']:8.1f} ms  p95 {row['p95_ms']:8.1f} ms  ttft p50 {row['ttft_p50_ms']:7.1f}"
                          f" ms  requests {row['requests']:4}  errors {row['errors']} {row['first_error']}",
                          flush=True)
                    if "trace" in row:
                        print("\n".join(_trace_lines(row["trace"])), flush=True)
        finally:
            if engine:
                engine.stop()
    return results


def _numbers(text: str) -> list[int]:
    return [int(part) for part in text.split(",")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--model", help="start `osslsp engine --model MODEL` for each --max-batch value")
    where.add_argument("--url", help="an engine already running (then --max-batch only labels the rows)")
    parser.add_argument("--max-batch", type=_numbers, default=[32], help="e.g. 1,32 (default: 32)")
    parser.add_argument("--clients", type=_numbers, default=[1, 4, 8, 16, 32])
    parser.add_argument("--modes", type=lambda text: text.split(","), default=["typing", "fresh"])
    parser.add_argument("--prompt-tokens", type=int, default=2048)
    parser.add_argument("--new-tokens", type=int, default=48)
    parser.add_argument("--seconds", type=float, default=10.0, help="measured time per (mode, N)")
    parser.add_argument("--max-context", type=int, default=4096)
    parser.add_argument("--vocab", type=int, default=100000, help="prompt ids are drawn below this (tiny: 700)")
    parser.add_argument("--experts", default="auto", help="the engine's --experts (mxfp4: packed MXFP4 experts)")
    parser.add_argument("--audit-log", default="", metavar="PATH|off", help="the engine's --audit-log (default: its own)")
    parser.add_argument("--trace", action="store_true",
                        help="trace the engine (osslsp engine --trace) and print where the time went")
    parser.add_argument("--json", help="write the rows here")
    args = parser.parse_args()
    results = asyncio.run(main_async(args))
    summary = {"date": time.strftime("%Y-%m-%d"), "args": vars(args), "rows": results}
    if args.json:
        with open(args.json, "w") as out:
            json.dump(summary, out, indent=1)
    for max_batch in args.max_batch:
        rows = [row for row in results if row["max_batch"] == max_batch]
        total = sum(row["errors"] for row in rows)
        print(f"max_batch {max_batch}: {len(rows)} runs, {total} errors, median p50 "
              f"{statistics.median(row['p50_ms'] for row in rows) if rows else float('nan'):.1f} ms")


if __name__ == "__main__":
    main()
