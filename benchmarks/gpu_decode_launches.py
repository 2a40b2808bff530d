"""Decode steps at 2k of the fast runner, in one process: what each way of cutting the step's
launch gaps buys, gpt-oss-20b shapes with random weights, MXFP4 then FP16 experts.

    PYTHONPATH=. python benchmarks/gpu_decode_launches.py [--experts mxfp4,fp16] [--budget 150]

The variants switch, one at a time and together:
- PDL: programmatic dependent launch of the Triton decode kernels (`kernels.PDL`; each kernel
  starts while the one before it finishes, loading or prefetching its weights meanwhile);
- Triton projections: qkv (with its rotary embedding and cache write) and o_proj as Triton GEMVs
  that take part in PDL (`FastGptOssRunner.dense_gemvs`), against cuBLAS's F.linear;
- decode attention's keys in 16 splits of 64-key blocks a kv head, 32 of 32 (the default) or 64 of
  16 (DecodeAttention's n_split, block_n);
- and, as ablations of session 10's fusions: decode attention's combine in its own launch, and
  the next input norm in an add_rmsnorm launch of its own after the experts (FP16 experts always
  have that launch, kernels.DecodeExperts).

Each variant is a fresh capture of the runner's decode graph, timed two ways: "graph" is the
median of graph replays alone (triton.testing.do_bench: the kernels and the gaps between them),
"step" the best of 3 runs of 128 greedy decode_one calls after a 2,048-token prompt (with the host's
argmax and sync, as the server decodes). The first variant runs again last, for drift; every
variant's greedy tokens from another prompt are compared with the first's. A variant that fails
prints its error and the next one runs; variants past --budget seconds are skipped.
"""

from __future__ import annotations

import argparse
import time

import torch
import triton
from triton.testing import do_bench

from gpu_profile import pack_experts  # benchmarks/ is the script's directory: on sys.path

from osslsp.engine import kernels
from osslsp.engine.gpt_oss_fast import FastGptOssRunner
from osslsp.engine.loading import load_model
from osslsp.models import resolve_model

DEFAULT = dict(pdl=True, dense_gemvs=True, combine_in_split=True, next_norm_fused=True, splits=32, keys_a_block=32)
BASELINE = dict(DEFAULT, pdl=False, dense_gemvs=False)  # cuBLAS projections, every launch waiting
VARIANTS = [("cuBLAS projections, no PDL", BASELINE),
            ("PDL", dict(BASELINE, pdl=True)),
            ("PDL + Triton projections (the default)", DEFAULT),
            ("the default, keys in 16 splits of 64-key blocks", dict(DEFAULT, splits=16, keys_a_block=64)),
            ("the default, keys in 64 splits of 16-key blocks", dict(DEFAULT, splits=64, keys_a_block=16)),
            ("the default, combine in its own launch", dict(DEFAULT, combine_in_split=False)),
            ("the default, next norm in its own launch", dict(DEFAULT, next_norm_fused=False)),
            ("cuBLAS projections, no PDL (drift)", BASELINE)]
PROMPT = torch.randint(100, 199_000, (2048,), generator=torch.Generator().manual_seed(0)).tolist()


class UnfusedNextNorm:
    """Decode experts whose next norm is an add_rmsnorm launch of its own."""

    def __init__(self, experts):
        self.experts, self.x_pairs = experts, experts.x_pairs

    def __call__(self, *args, then_norm=None, **kwargs):
        self.experts(*args, **kwargs)
        if then_norm is not None:
            out = args[9]  # (H,), as DecodeExperts.__call__ takes it
            kernels.add_rmsnorm(then_norm.residual[None], out[None], then_norm.weight, then_norm.eps,
                                then_norm.normed[None])


def step_ms(runner, steps: int = 128, repeats: int = 3) -> float:
    """Best ms a token over `repeats` runs of `steps` greedy decode steps after PROMPT."""
    best = float("inf")
    for _ in range(repeats):
        runner.cached_ids = []
        token = int(runner.prefill(PROMPT).argmax())
        torch.cuda.synchronize()
        started = time.perf_counter()
        for _ in range(steps):
            token = int(runner.decode_one(token).argmax())
        best = min(best, (time.perf_counter() - started) * 1000 / steps)
    return best


def graph_ms(runner) -> float:
    """Median ms of one replay of the decode graph at position 2,048 + 1 (the replays rewrite the
    same cache slot)."""
    runner.cached_ids = []
    runner.decode_one(int(runner.prefill(PROMPT).argmax()))
    return do_bench(runner.graph.replay, warmup=50, rep=500, return_mode="median")


def greedy_tokens(runner) -> list[int]:
    runner.cached_ids = []
    tokens = [int(runner.prefill(list(range(1000, 1500))).argmax())]
    for _ in range(32):
        tokens.append(int(runner.decode_one(tokens[-1]).argmax()))
    return tokens


def steps(experts: str, started: float, budget: float) -> None:
    """Every variant's decode step with `experts` ("mxfp4" or "fp16") experts."""
    if time.perf_counter() - started > budget:
        print(f"{experts}: skipped (past the {budget:.0f} s budget)", flush=True)
        return
    model = load_model(resolve_model("random:osslsp/data/gpt-oss-20b"), "float16", "cuda").model
    if experts == "mxfp4":
        pack_experts(model)
    runner = FastGptOssRunner(model, 4096)
    device = runner.device  # the key of the runner's per-device launch objects
    fused_experts = runner.decode_experts[device]
    print(f"{experts}: runner ready at {time.perf_counter() - started:.0f} s", flush=True)
    first_tokens = None
    for name, variant in VARIANTS:
        if time.perf_counter() - started > budget:
            print(f"{experts} decode step at 2k, {name}: skipped (past the {budget:.0f} s budget)", flush=True)
            continue
        try:
            kernels.PDL, runner.dense_gemvs = variant["pdl"], variant["dense_gemvs"]
            runner.decode_attention[device] = kernels.DecodeAttention(
                runner.n_q, runner.n_kv, runner.head_dim, device, variant["combine_in_split"], variant["splits"],
                variant["keys_a_block"])
            runner.decode_experts[device] = (fused_experts if variant["next_norm_fused"]
                                             else UnfusedNextNorm(fused_experts))
            runner.graph = None  # the previous capture's memory goes back before the next
            runner._capture_decode_graph()
            graph, step = graph_ms(runner), step_ms(runner)
            tokens = greedy_tokens(runner)
            first_tokens = first_tokens or tokens
            same = sum(a == b for a, b in zip(tokens, first_tokens))
            print(f"{experts} decode step at 2k, {name}: graph {graph:.3f} ms, step {step:.3f} ms "
                  f"({1000 / step:.1f} tok/s); greedy tokens equal to the first variant's: {same}/{len(tokens)} "
                  f"[{time.perf_counter() - started:.0f} s]", flush=True)
        except Exception as error:  # noqa: BLE001 - one broken variant must not hide the others
            print(f"{experts} decode step at 2k, {name}: failed: {type(error).__name__}: {str(error)[:200]}",
                  flush=True)
    kernels.PDL = kernels._pdl_supported()
    del runner, model, fused_experts
    torch.cuda.empty_cache()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experts", default="mxfp4,fp16", help="comma-separated: mxfp4, fp16")
    parser.add_argument("--budget", type=float, default=150.0, help="seconds; later variants are skipped")
    options = parser.parse_args()
    started = time.perf_counter()
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}, triton {triton.__version__}, "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", flush=True)
    for experts in options.experts.split(","):
        try:
            steps(experts, started, options.budget)
        except Exception as error:  # noqa: BLE001 - the other experts' lines still come
            print(f"{experts}: failed: {type(error).__name__}: {str(error)[:200]}", flush=True)
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
