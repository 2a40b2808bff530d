"""What generating through the local engine costs over generating in-process (target: under 2 ms
added at p50).

Run: python benchmarks/engine_hop.py [--model tiny] [--iterations 60] [--prompt-tokens 512]
     [--new-tokens 16]; on a GPU: --model random:osslsp/data/gpt-oss-20b --dtype bfloat16.
The same prompt (code, cut to --prompt-tokens) is completed greedily, alternately by the model in
this process (`LocalBackend`) and by `osslsp engine` on a Unix socket (`RemoteBackend`, as
`engine = "shared"` uses it), so both do the same work on the same card and drift hits both
alike. --sequential runs all remote rounds first and stops the engine before loading the model
here, for a model that fits the card only once. Reports time to first text and to the last text
(p50, p90) and the difference at p50.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from osslsp.backends import GenerationSettings, LocalBackend
from osslsp.models import ModelSource, offline, resolve_model
from osslsp.prompts.modeltext import ModelText
from osslsp.backends.remote import Endpoint, RemoteBackend

MAX_CONTEXT = 8192  # `osslsp engine`'s default
SOURCE = Path(__file__).resolve().parent.parent / "osslsp" / "assistant.py"


def model_text(source: ModelSource) -> ModelText:
    """The tokenizer (tiny's for random weights), without the language server's imports."""
    if source.kind in ("tiny", "random"):
        from osslsp.engine.tiny import ensure_tiny

        ensure_tiny(source.text_dir)
    return ModelText(source.text_dir)


def quiet(state: str, message: str) -> None:
    if state == "error":
        raise SystemExit(f"engine_hop: {message}")


async def one_completion(backend, prompt_text: str, prompt_ids: list[int], new_tokens: int) -> tuple[float, float, str]:
    """Seconds to the first (non-empty) text, seconds to the last, and the text."""
    started = time.perf_counter()
    first, text = None, ""
    stream = backend.stream(prompt_text, prompt_ids, frozenset(),
                            GenerationSettings(max_new_tokens=new_tokens, temperature=0.0), None, None)
    async for delta in stream:
        first = first or (time.perf_counter() if delta else None)
        text += delta
    finished = time.perf_counter()
    return (first or finished) - started, finished - started, text


def start_engine(args: argparse.Namespace, socket: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "osslsp.cli.engine", "engine", "--model", args.model, "--dtype", args.dtype,
               "--device", args.device, "--listen", f"unix:{socket}"]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def measure(args: argparse.Namespace) -> dict[str, dict[str, float]]:
    source = resolve_model(args.model)
    text = model_text(source)
    ids = text.encode(SOURCE.read_text() * 8)[: args.prompt_tokens]
    prompt_text = text.decode(ids)
    prompt_ids = text.encode(prompt_text)
    socket = Path(tempfile.mkdtemp(prefix="hop-")) / "engine.sock"
    engine = start_engine(args, socket)
    remote = RemoteBackend(Endpoint("http://localhost", socket), source.spec, lambda: text, quiet)
    remote.send_ids = True  # as with engine = "shared"
    local: LocalBackend | None = None
    times: dict[str, list[tuple[float, float]]] = {"in-process": [], "engine": []}
    outputs: dict[str, str] = {}

    async def run(name: str, backend, record: bool = True) -> None:
        ttft, total, output = await one_completion(backend, prompt_text, prompt_ids, args.new_tokens)
        outputs.setdefault(name, output)
        if record:
            times[name].append((ttft, total))

    try:
        while not socket.exists():  # the engine imports torch before it listens
            if engine.poll() is not None:
                raise SystemExit("engine_hop: the engine did not start")
            await asyncio.sleep(0.2)
        remote.start()
        await remote.wait_ready()
        for _ in range(args.warmup):
            await run("engine", remote, record=False)
        if args.sequential:
            for _ in range(args.iterations):
                await run("engine", remote)
            engine.terminate()
            engine.wait()
        local = LocalBackend(source, lambda: text, args.dtype, args.device, 0.0, MAX_CONTEXT, quiet)
        local.start()
        await local.wait_ready()
        for _ in range(args.warmup):
            await run("in-process", local, record=False)
        for _ in range(args.iterations):
            await run("in-process", local)
            if not args.sequential:
                await run("engine", remote)
    finally:
        remote.close()
        if local is not None:
            local.close()
        engine.terminate()
        engine.wait()
    if outputs["in-process"] != outputs["engine"]:
        print("warning: the two outputs differ, so the work differs", file=sys.stderr)
    report = {}
    for name, pairs in times.items():
        ttfts, totals = [pair[0] * 1000 for pair in pairs], [pair[1] * 1000 for pair in pairs]
        report[name] = {"ttft_p50_ms": statistics.median(ttfts), "ttft_p90_ms": percentile(ttfts, 0.9),
                        "total_p50_ms": statistics.median(totals), "total_p90_ms": percentile(totals, 0.9)}
    report["added"] = {key: report["engine"][key] - report["in-process"][key]
                       for key in ("ttft_p50_ms", "total_p50_ms")}
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--dtype", default="float16")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--iterations", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--prompt-tokens", type=int, default=512)
    parser.add_argument("--new-tokens", type=int, default=16)
    parser.add_argument("--sequential", action="store_true",
                        help="all engine rounds first, then the engine stops and the model loads here")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    offline()
    report = asyncio.run(measure(args))
    if args.json:
        print(json.dumps(report))
        return
    print(f"model {args.model}, {args.prompt_tokens}-token prompt, {args.new_tokens} new tokens, "
          f"{args.iterations} rounds each")
    print(f"{'':12} {'ttft p50':>9} {'ttft p90':>9} {'total p50':>10} {'total p90':>10}  (ms)")
    for name in ("in-process", "engine"):
        row = report[name]
        print(f"{name:12} {row['ttft_p50_ms']:9.2f} {row['ttft_p90_ms']:9.2f} "
              f"{row['total_p50_ms']:10.2f} {row['total_p90_ms']:10.2f}")
    added = report["added"]
    print(f"{'added':12} {added['ttft_p50_ms']:9.2f} {'':9} {added['total_p50_ms']:10.2f}")


if __name__ == "__main__":
    main()
