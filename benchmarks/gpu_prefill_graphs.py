"""Cold TTFT of long prompts: the captured prefill graphs against the eager steps, one process.

    PYTHONPATH=. timeout 170 python benchmarks/gpu_prefill_graphs.py [--lengths 512,2048,8192] [--cap-gib 16]

Random weights with gpt-oss-20b's config, experts packed in memory in the released MXFP4 layout
(as benchmarks/gpu_profile.py does), one FastGptOssRunner with an 8k context. Prints the set-up
(ready time, of which the prefill graphs' capture, and the memory then), then one line a variant
and prompt length: the median wall time from the token ids to the argmax of the logits on the
host, the graphs' logits against the eager ones, and the memory after it (peaks since the line
before). The graphs run first, so the memory printed after their 8k prompt is the graph path's
alone. A variant that raises prints its error and the script goes on.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from gpu_profile import pack_experts  # benchmarks/ is the script's directory: on sys.path

from osslsp.engine.gpt_oss_fast import FastGptOssRunner
from osslsp.engine.loading import cap_gpu_memory, load_model
from osslsp.models import resolve_model

GIB = 2**30


def memory() -> str:
    return (f"allocated {torch.cuda.memory_allocated() / GIB:.2f} GiB, "
            f"reserved {torch.cuda.memory_reserved() / GIB:.2f} GiB "
            f"(peaks since the last line: allocated {torch.cuda.max_memory_allocated() / GIB:.2f}, "
            f"reserved {torch.cuda.max_memory_reserved() / GIB:.2f})")


def build_runner(model, max_context: int) -> tuple[FastGptOssRunner, float, float]:
    """The runner, its ready time (s) and the part of it spent capturing prefill graphs (s)."""
    capture = FastGptOssRunner._capture_prefill_graphs
    spent = {}

    def timed_capture(runner: FastGptOssRunner) -> None:
        started = time.perf_counter()
        capture(runner)
        spent["capture"] = time.perf_counter() - started

    FastGptOssRunner._capture_prefill_graphs = timed_capture
    try:
        started = time.perf_counter()
        runner = FastGptOssRunner(model, max_context)
        return runner, time.perf_counter() - started, spent.get("capture", 0.0)
    finally:
        FastGptOssRunner._capture_prefill_graphs = capture


def cold_ttft(runner: FastGptOssRunner, prompt: list[int], repeats: int) -> tuple[list[float], torch.Tensor]:
    """Wall times (ms) of cold prefills of `prompt`, to the argmax on the host; the last logits (V,)."""
    times = []
    for _ in range(repeats):
        runner.cached_ids = []
        torch.cuda.synchronize()
        started = time.perf_counter()
        logits = runner.prefill(prompt)
        int(logits.argmax())
        times.append((time.perf_counter() - started) * 1000)
    return times, logits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", default="512,2048,8192")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--cap-gib", type=float, default=0.0, help="simulate a smaller card (0: no cap)")
    parser.add_argument("--budget-s", type=float, default=140.0, help="start no variant after this many seconds")
    args = parser.parse_args()
    lengths = [int(length) for length in args.lengths.split(",")]
    started = time.perf_counter()
    model = load_model(resolve_model("random:osslsp/data/gpt-oss-20b"), "float16", "cuda").model
    pack_experts(model)
    if args.cap_gib:
        cap_gpu_memory(args.cap_gib)
    torch.cuda.reset_peak_memory_stats()
    runner, ready, capture = build_runner(model, max(lengths) + 64)
    graphs = runner.prefill_graphs
    now = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    set_up = time.perf_counter() - started
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}, {now}; set-up {set_up:.1f} s", flush=True)
    print(f"ready {ready:.2f} s, of which {capture:.2f} s capturing {len(graphs)} prefill graphs "
          f"({[graph.bucket for graph in graphs]}); after set-up: {memory()}", flush=True)
    torch.cuda.reset_peak_memory_stats()
    generator = torch.Generator().manual_seed(0)
    prompts = {n: torch.randint(100, 199_000, (n,), generator=generator).tolist() for n in lengths}
    graph_logits = {}
    for variant in ("graphs", "eager"):
        runner.prefill_graphs = graphs if variant == "graphs" else []
        for n in lengths:
            if time.perf_counter() - started > args.budget_s:
                print(f"{variant} cold TTFT {n}: not run, past the budget of {args.budget_s:.0f} s", flush=True)
                continue
            try:
                cold_ttft(runner, prompts[n], 1)  # Triton and cuBLAS see this length once before timing
                times, logits = cold_ttft(runner, prompts[n], args.repeats)
                check = ""
                if variant == "graphs":
                    graph_logits[n] = logits
                elif n in graph_logits:
                    error = float((graph_logits[n] - logits).norm() / logits.norm())
                    same = int(graph_logits[n].argmax()) == int(logits.argmax())
                    check = f"; graphs' logits vs these: {error:.1e} relative, same argmax {same}"
                print(f"{variant} cold TTFT {n}: {statistics.median(times):.2f} ms median, {min(times):.2f} min "
                      f"of {args.repeats}{check}; {memory()}", flush=True)
                torch.cuda.reset_peak_memory_stats()
            except Exception as error:  # noqa: BLE001 - one variant's failure must not hide the others
                print(f"{variant} cold TTFT {n}: {type(error).__name__}: {error}", flush=True)
                torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
