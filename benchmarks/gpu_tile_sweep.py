"""Tile sweep for two hot kernels of gpt-oss-20b (issue 17), in one process, each candidate checked
against the current default's output:

1. The FP16 grouped GEMMs of a 2,048-token prompt (kernels._grouped_gemms; tiles (BLOCK_M, BLOCK_N,
   BLOCK_K, num_warps, num_stages) as prefill_experts(config=) takes them, the default
   PREFILL_EXPERTS_TILES' last row): 8,192 (token, expert) pairs, random top-4 of 32 experts, FP16
   experts (E, 2I, H) and (E, H, I). gate/up and down are timed apart, in TFLOP/s of the pairs' work
   (padding rows not counted); the default and the best also as the MXFP4 long-prompt path runs
   them (8 experts' weights a launch; packed experts past kernels.MXFP4_PREFILL_EXPERTS_TILES'
   last row, 8,192 pairs).
2. The packed decode GEMVs (kernels.DecodeExpertsMxfp4's gate_up_block and down_block: units a
   program, blocks a step, num_warps): one token's 4 experts a layer, 24 layers' packed weights in
   one replay (1.3 GB: a layer's 53 MB would otherwise sit in the 50 MB L2), the down GEMV writing
   the next norm as the decode step does; us a layer and TB/s of packed bytes read.

    PYTHONPATH=. python3 benchmarks/gpu_tile_sweep.py           # a GPU: <= 150 s, compiles included
    PYTHONPATH=. python3 benchmarks/gpu_tile_sweep.py --smoke   # the CPU: interpreter, tiny shapes, no timing

Times are CUDA graph replays (triton.testing.do_bench_cudagraph). The candidates are compiled first
by --jobs worker processes, each running its candidates once on inputs of the real shapes, which
leaves the binaries in Triton's on-disk cache for this process. Candidates still untimed when
--budget seconds have passed are listed as such; a candidate that raises prints its error and the
sweep goes on. The last lines give the best of each kernel, its ratio to the default (> 1: faster)
and the constant to change.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import functools
import inspect
import multiprocessing
import os
import subprocess
import sys
import time
from dataclasses import dataclass

import torch
import triton
from triton.testing import do_bench_cudagraph

from osslsp.engine import kernels, mxfp4
from osslsp.engine.kernels_torch import NextNorm


@dataclass(frozen=True)
class Shapes:
    hidden: int
    intermediate: int
    experts: int
    top_k: int
    tokens: int  # of the prompt (part 1)
    layers: int  # whose packed weights one replay reads (part 2)


GPT_OSS_20B = Shapes(2880, 2880, 32, 4, 2048, 24)
TINY = Shapes(96, 64, 4, 2, 40, 1)  # --smoke: rows of 3 and 2 blocks (partial steps); the interpreter is slow
SWIGLU = (7.0, 1.702)  # gpt-oss's limit and alpha
EPS = 1e-5
TOLERANCE = 1e-2  # relative difference to the default's output (summation order, fp16 rounding)
CHECKED_LAYERS = 2  # decode layers whose outputs are compared with the default's

GEMM_DEFAULT = kernels.PREFILL_EXPERTS_TILES[-1][1]
# Hopper tiles not swept before: benchmarks/gpu_kernels.py timed (128, 128, 64, 8, 4), (128, 64, 64,
# 4, 4), (64, 128, 64, 4, 4), (128, 128, 32, 8, 4), (128, 256, 64, 8, 3) and (64, 256, 64, 8, 3)
# against the default (ENGINE_NOTES.md). The gate/up kernel holds two accumulators (gate and up):
# compiled for sm_90 by Triton 3.6 the default takes 251 registers there (one program an SM), a
# (128 or 64) x 64 x 8-warp tile 127 (two programs an SM where shared memory allows: the 2-3 stage
# ones below), BLOCK_N 256 at BLOCK_M 128 spills (it is there for the down GEMM, 205 registers).
# BLOCK_M 64 pads each expert's ~256 pairs less (~11% of the rows against ~20% at 128, ~33% at 256).
# All fit the H200's 227 KB of shared memory.
GEMM_CANDIDATES = [GEMM_DEFAULT, (128, 64, 64, 8, 3), (128, 64, 32, 8, 4), (64, 128, 32, 8, 4),
                   (64, 128, 64, 4, 3), (64, 128, 64, 4, 5), (64, 128, 64, 8, 4), (64, 256, 32, 8, 4),
                   (64, 256, 32, 8, 5), (128, 64, 64, 8, 4), (128, 64, 128, 8, 3), (128, 128, 32, 8, 5),
                   (128, 256, 32, 8, 4), (256, 64, 64, 8, 3)]


def _constructor_default(name: str) -> tuple[int, int, int]:
    return inspect.signature(kernels.DecodeExpertsMxfp4.__init__).parameters[name].default


def gemv_tiles(rows_a_unit: int, units: tuple[int, ...]) -> list[tuple[int, int, int]]:
    """Every (units a program, blocks a step, num_warps) whose tile of rows_a_unit x units rows by
    4 x blocks 32-bit words gives each thread 4 to 16 words a step: at least one 128-bit load, at
    most four (the steps are unrolled, so all of a program's loads are in flight at once)."""
    return [(m, g, w) for m in units for g in (16, 32, 64, 128) for w in (1, 2, 4, 8)
            if 4 <= rows_a_unit * m * 4 * g // (32 * w) <= 16]


GATE_UP_DEFAULT = _constructor_default("gate_up_block")
DOWN_DEFAULT = _constructor_default("down_block")
# The default first; units a program all divide 2880 (the kernels do not mask rows).
GATE_UP_CANDIDATES = [GATE_UP_DEFAULT] + [t for t in gemv_tiles(2, (2, 4, 8, 16, 32)) if t != GATE_UP_DEFAULT]
DOWN_CANDIDATES = [DOWN_DEFAULT] + [t for t in gemv_tiles(1, (1, 2, 4, 8, 16)) if t != DOWN_DEFAULT]
FULL_CANDIDATES = {"gemm": GEMM_CANDIDATES, "gate_up": GATE_UP_CANDIDATES, "down": DOWN_CANDIDATES}
SMOKE_CANDIDATES = {"gemm": [GEMM_DEFAULT, (64, 64, 32, 4, 3)], "gate_up": [GATE_UP_DEFAULT, (4, 16, 2)],
                    "down": [DOWN_DEFAULT, (2, 16, 2)]}


# -- inputs ----------------------------------------------------------------------------------------


@dataclass
class Prompt:
    """A prompt's experts: x (n, H), top-k ids and weights (n, K), FP16 experts and biases."""

    x: torch.Tensor
    ids: torch.Tensor
    weights: torch.Tensor
    gate_up: torch.Tensor  # (E, 2I, H), gate and up rows interleaved
    gate_up_bias: torch.Tensor  # (E, 2I)
    down: torch.Tensor  # (E, H, I)
    down_bias: torch.Tensor  # (E, H)

    def experts(self, first: int, count: int) -> tuple[torch.Tensor, ...]:
        """gate_up, gate_up_bias, down, down_bias of experts first .. first + count - 1."""
        return tuple(w[first:first + count] for w in (self.gate_up, self.gate_up_bias, self.down, self.down_bias))


def _normal(size: tuple[int, ...], scale: float, device: torch.device, generator: torch.Generator) -> torch.Tensor:
    return torch.randn(size, device=device, generator=generator, dtype=torch.float16).mul_(scale)


def prompt_inputs(shapes: Shapes, device: torch.device) -> Prompt:
    """Random N(0, 0.02) FP16 experts and a random top-k routing of shapes.tokens tokens."""
    generator = torch.Generator(device).manual_seed(0)
    hidden, inter, experts = shapes.hidden, shapes.intermediate, shapes.experts
    values, ids = torch.randn(shapes.tokens, experts, device=device, generator=generator).topk(shapes.top_k, dim=-1)
    return Prompt(_normal((shapes.tokens, hidden), 1.0, device, generator), ids, torch.softmax(values, -1).half(),
                  _normal((experts, 2 * inter, hidden), 0.02, device, generator),
                  _normal((experts, 2 * inter), 0.02, device, generator),
                  _normal((experts, hidden, inter), 0.02, device, generator),
                  _normal((experts, hidden), 0.02, device, generator))


@dataclass
class Layer:
    """One decode layer's packed experts and the token's top-k choice of them."""

    gate_up: mxfp4.Mxfp4Weight  # (E, 2I, H) packed
    gate_up_bias: torch.Tensor  # (E, 2I)
    down: mxfp4.Mxfp4Weight  # (E, H, I) packed
    down_bias: torch.Tensor  # (E, H)
    ids: torch.Tensor  # (K,) int64, as the router writes them
    weights: torch.Tensor  # (K,) float16


def packed_experts(experts: int, rows: int, cols: int, device: torch.device,
                   generator: torch.Generator) -> mxfp4.Mxfp4Weight:
    """Random N(0, 0.02) weights (experts, rows, cols) packed by mxfp4.quantize, one expert at a
    time (a whole layer at once takes ~8 GB of float32 temporaries)."""
    parts = [mxfp4.quantize(torch.randn(1, rows, cols, device=device, generator=generator) * 0.02)
             for _ in range(experts)]
    return mxfp4.Mxfp4Weight(torch.cat([p.blocks for p in parts]), torch.cat([p.scales for p in parts]))


def decode_layers(shapes: Shapes, n_layers: int, device: torch.device) -> list[Layer]:
    """n_layers layers of packed experts and biases, each in its own memory (copies of the first
    layer's values), each with its own top-k ids and weights in tensors of their own (16-byte
    aligned, as the router's are: the kernels are specialized on alignment)."""
    generator = torch.Generator(device).manual_seed(1)
    choice = torch.Generator().manual_seed(1)
    hidden, inter, experts = shapes.hidden, shapes.intermediate, shapes.experts
    gate_up = packed_experts(experts, 2 * inter, hidden, device, generator)
    down = packed_experts(experts, hidden, inter, device, generator)
    gate_up_bias = _normal((experts, 2 * inter), 0.02, device, generator)
    down_bias = _normal((experts, hidden), 0.02, device, generator)
    layers = []
    for index in range(n_layers):
        own = (lambda w: w) if index == 0 else (lambda w: mxfp4.Mxfp4Weight(w.blocks.clone(), w.scales.clone()))
        own_bias = (lambda b: b) if index == 0 else torch.clone
        ids = torch.randperm(experts, generator=choice)[:shapes.top_k].to(device)
        weights = torch.softmax(torch.randn(shapes.top_k, generator=choice), 0).half().to(device)
        layers.append(Layer(own(gate_up), own_bias(gate_up_bias), own(down), own_bias(down_bias), ids, weights))
    return layers


@dataclass
class Token:
    """One decode token's vectors (H,): x, the experts' output, and the next norm's residual,
    weight and output (the down GEMV's last program adds out to residual and norms it)."""

    x: torch.Tensor
    out: torch.Tensor
    residual: torch.Tensor
    norm_weight: torch.Tensor
    normed: torch.Tensor
    residual_start: torch.Tensor

    def next_norm(self) -> NextNorm:
        return NextNorm(self.residual, self.norm_weight, EPS, self.normed)


def decode_token(shapes: Shapes, device: torch.device) -> Token:
    generator = torch.Generator(device).manual_seed(2)
    residual = _normal((shapes.hidden,), 1.0, device, generator)
    return Token(_normal((shapes.hidden,), 1.0, device, generator), torch.zeros_like(residual), residual.clone(),
                 _normal((shapes.hidden,), 0.1, device, generator).add_(1.0), torch.zeros_like(residual), residual)


def decoder(shapes: Shapes, device: torch.device, token: Token, gate_up_block=GATE_UP_DEFAULT,
            down_block=DOWN_DEFAULT) -> kernels.DecodeExpertsMxfp4:
    """The packed decode GEMVs with these tiles, x's word pairs written."""
    decode = kernels.DecodeExpertsMxfp4(shapes.hidden, shapes.intermediate, shapes.top_k, torch.float16, device,
                                        gate_up_block=gate_up_block, down_block=down_block)
    kernels.word_pairs(token.x, decode.x_pairs)
    return decode


# -- the launches timed ----------------------------------------------------------------------------


def run_prefill(prompt: Prompt, tiles) -> torch.Tensor:
    """prefill_experts with these grouped-GEMM tiles -> (n, H)."""
    return kernels.prefill_experts(prompt.x, prompt.ids, prompt.weights, *prompt.experts(0, prompt.gate_up.shape[0]),
                                   *SWIGLU, config=tiles)


@dataclass
class Grouped:
    """prefill_experts' buffers for one BLOCK_M: sorted pairs (P,), block experts (P / BLOCK_M,),
    act (P, I), pair_out (S, H)."""

    sorted_pairs: torch.Tensor
    block_expert: torch.Tensor
    act: torch.Tensor
    pair_out: torch.Tensor


def grouped(prompt: Prompt, block_m: int) -> Grouped:
    sorted_pairs, block_expert = kernels._align_pairs_by_expert(prompt.ids, prompt.gate_up.shape[0], block_m)
    act = torch.empty(sorted_pairs.shape[0], prompt.down.shape[2], dtype=torch.float16, device=prompt.x.device)
    pair_out = torch.empty(prompt.ids.numel(), prompt.x.shape[1], dtype=torch.float16, device=prompt.x.device)
    return Grouped(sorted_pairs, block_expert, act, pair_out)


def run_gemms(prompt: Prompt, tiles, buffers: Grouped, chunk: int | None = None) -> None:
    """The grouped GEMMs alone (no alignment, no sum): all experts in one launch each, or `chunk`
    experts' weights a launch as the MXFP4 long-prompt path runs them (_prefill_experts_dequantized,
    its unpacking to FP16 scratch left out: the FP16 weights are sliced here)."""
    experts = prompt.gate_up.shape[0]
    chunk = chunk or experts
    for first in range(0, experts, chunk):
        gate_up, gate_up_bias, down, down_bias = prompt.experts(first, chunk)
        kernels._grouped_gemms(prompt.x, prompt.weights, gate_up, gate_up_bias, down, down_bias,
                               buffers.sorted_pairs, buffers.block_expert, buffers.act, buffers.pair_out, *SWIGLU,
                               tiles, first_expert=first)


class _NoLaunch:
    """Stands for a Triton kernel left out of a timed sequence: kernel[grid](...) launches nothing."""

    def __getitem__(self, grid):
        return lambda *args, **kwargs: None


@contextlib.contextmanager
def launching_only(kept: str):
    """Within: kernels._grouped_gemms launches only its FP16 `kept` GEMM ("gate_up" or "down")."""
    left_out = "_expert_down_gemm_kernel" if kept == "gate_up" else "_expert_gate_up_gemm_kernel"
    kernel = getattr(kernels, left_out)
    setattr(kernels, left_out, _NoLaunch())
    try:
        yield
    finally:
        setattr(kernels, left_out, kernel)


def run_gate_up(decode: kernels.DecodeExpertsMxfp4, layers: list[Layer]) -> None:
    for layer in layers:  # x is read from decode.x_pairs
        decode.gate_up(None, layer.gate_up, layer.gate_up_bias, layer.ids, *SWIGLU)


def run_down(decode: kernels.DecodeExpertsMxfp4, layers: list[Layer], token: Token) -> None:
    for layer in layers:
        decode.down(layer.down, layer.down_bias, layer.ids, layer.weights, token.out, token.next_norm())


def run_decode(decode: kernels.DecodeExpertsMxfp4, layers: list[Layer], token: Token) -> None:
    """Both GEMVs and the next norm, layer after layer, as the decode step calls them."""
    for layer in layers:
        decode(token.x, layer.gate_up, layer.gate_up_bias, layer.down, layer.down_bias, layer.ids, layer.weights,
               *SWIGLU, token.out, x_pairs_ready=True, then_norm=token.next_norm())


# -- compiling in worker processes -------------------------------------------------------------------


_WORKER_INPUTS: dict[str, object] = {}


def _device(smoke: bool) -> torch.device:
    return torch.device("cpu" if smoke else "cuda")


def use_plain_word_dots() -> None:
    """Triton's interpreter runs no inline PTX: the word unpack and dot become the same arithmetic
    in plain Triton, the CPU checks' versions (tests/engine/test_kernels_interpreted_checks.py)."""
    from tests.engine.test_kernels_interpreted_checks import _plain_fma8, _plain_unpack8
    kernels._unpack8, kernels._fma8 = _plain_unpack8, _plain_fma8


def _worker_start(smoke: bool) -> None:
    if smoke:
        use_plain_word_dots()


def precompile(job: tuple[str, tuple[int, ...], bool]) -> str:
    """Pool worker: compile one candidate (part, tiles) by running it once on inputs of the real
    shapes, so that its binary is in Triton's on-disk cache under the key this process's launch
    computes. Returns the error, or "" (the parent times the candidate and prints any error again)."""
    part, tiles, smoke = job
    shapes, device = (TINY if smoke else GPT_OSS_20B), _device(smoke)
    try:
        if part == "gemm":
            if "prompt" not in _WORKER_INPUTS:
                _WORKER_INPUTS["prompt"] = prompt_inputs(shapes, device)
            run_prefill(_WORKER_INPUTS["prompt"], tiles)
        else:
            if "layers" not in _WORKER_INPUTS:
                _WORKER_INPUTS["layers"] = decode_layers(shapes, 1, device)
            layers = _WORKER_INPUTS["layers"]
            token = decode_token(shapes, device)
            if part == "gate_up":
                run_gate_up(decoder(shapes, device, token, gate_up_block=tiles), layers)
            else:
                run_down(decoder(shapes, device, token, down_block=tiles), layers, token)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return ""
    except Exception as error:  # noqa: BLE001 - reported by the parent's own attempt
        return f"{type(error).__name__}: {str(error)[:100]}"


def start_precompiling(candidates: dict[str, list], workers: int, smoke: bool):
    """A spawn pool compiling every non-default candidate, or None with no workers."""
    defaults = {"gemm": GEMM_DEFAULT, "gate_up": GATE_UP_DEFAULT, "down": DOWN_DEFAULT}
    jobs = [(part, tiles, smoke) for part, tiles_list in candidates.items() for tiles in tiles_list
            if tiles != defaults[part]]
    if workers <= 0 or not jobs:
        return None
    try:
        pool = multiprocessing.get_context("spawn").Pool(workers, initializer=_worker_start, initargs=(smoke,))
    except OSError as error:  # no processes to be had: every candidate compiles when it is first timed
        print(f"no compiling processes ({error}): candidates compile as they are timed", flush=True)
        return None
    return pool, pool.map_async(precompile, jobs, chunksize=1), len(jobs), workers, time.monotonic()


def finish_precompiling(started, budget: Budget) -> None:
    """Wait for the pool (at most until half the budget is spent), then stop it."""
    if started is None:
        return
    pool, result, n_jobs, workers, since = started
    try:
        errors = result.get(timeout=max(1.0, budget.left() - budget.seconds / 2))
        failed = sum(bool(error) for error in errors)
        print(f"compiled {n_jobs} candidates in {time.monotonic() - since:.1f} s in {workers} processes"
              + (f" ({failed} failed: their errors follow)" if failed else ""), flush=True)
    except multiprocessing.TimeoutError:
        print(f"compiling in {workers} processes stopped after {time.monotonic() - since:.1f} s: the rest "
              f"compile here", flush=True)
    finally:
        pool.terminate()
        pool.join()


# -- timing and checking -----------------------------------------------------------------------------


class Budget:
    """Seconds left of the run's allowance."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        return self.end - time.monotonic()

    def spent(self, name: str) -> bool:
        """Whether the time is up (then says that `name` is not timed)."""
        if self.left() >= 0:
            return False
        print(f"{name}: not timed (time budget)", flush=True)
        return True


def graph_ms(call, rep_ms: int | None) -> float | None:
    """ms of call() in CUDA graph replays; with no rep_ms (the smoke run) call() runs once, untimed."""
    if rep_ms is None:
        call()
        return None
    return do_bench_cudagraph(call, rep=rep_ms)


def relative_error(got: torch.Tensor, want: torch.Tensor) -> float:
    return float((got.float() - want.float()).norm() / want.float().norm())


@dataclass
class Result:
    tiles: tuple[int, ...]
    ms: float | None  # what the best is picked on
    error: float


def _tag(tiles, default) -> str:
    return f"{tiles} [default]" if tiles == default else f"{tiles}"


def _checked(error: float) -> str:
    return f"err {error:.1e}" + ("" if error < TOLERANCE else f" FAILED (> {TOLERANCE:g})")


def fastest(results: list[Result]) -> Result | None:
    """The fastest timed result within the tolerance."""
    return min((r for r in results if r.ms is not None and r.error < TOLERANCE), key=lambda r: r.ms, default=None)


def best_line(name: str, results: list[Result], default, unit: str, scale: float, adopt: str) -> str:
    """The fastest checked result against the default's time."""
    baseline = next((r for r in results if r.tiles == default and r.error < TOLERANCE), None)
    best = fastest(results)
    if best is None or baseline is None:
        return f"BEST {name}: nothing timed against the default"
    return (f"BEST {name}: {best.tiles} {best.ms * scale:.1f} {unit} against the default {default} "
            f"{baseline.ms * scale:.1f} {unit}: {baseline.ms / best.ms:.3f}x"
            + (f" -> {adopt.format(best.tiles)}" if best.tiles != default else " (keep the default)"))


def measured(name: str, measure) -> tuple | None:
    """measure() -> (relative error, ms...), or None once its failure is printed: a tile that
    fails is a result, and the sweep goes on."""
    try:
        return measure()
    except Exception as error:  # noqa: BLE001
        print(f"{name}: failed: {type(error).__name__}: {str(error)[:120]}", flush=True)
        return None


def measure_gemm(prompt: Prompt, tiles, want: torch.Tensor, rep_ms: int | None) -> tuple:
    """(error against want, gate/up ms, down ms) of these grouped-GEMM tiles."""
    error = relative_error(run_prefill(prompt, tiles), want)
    buffers = grouped(prompt, tiles[0])
    run_gemms(prompt, tiles, buffers)  # act, which the down GEMM timed alone reads
    with launching_only("gate_up"):
        gate_up_ms = graph_ms(lambda: run_gemms(prompt, tiles, buffers), rep_ms)
    with launching_only("down"):
        down_ms = graph_ms(lambda: run_gemms(prompt, tiles, buffers), rep_ms)
    return error, gate_up_ms, down_ms


def sweep_gemms(prompt: Prompt, shapes: Shapes, candidates: list, rep_ms: int | None, budget: Budget) -> list[str]:
    """Part 1: a line a candidate as it is timed; returns the summary lines."""
    want = run_prefill(prompt, GEMM_DEFAULT)
    pairs = prompt.ids.numel()
    gate_up_flop = 2 * pairs * shapes.hidden * 2 * shapes.intermediate
    down_flop = 2 * pairs * shapes.intermediate * shapes.hidden
    both, gate_ups, downs, failures = [], [], [], 0
    for tiles in candidates:
        name = f"gemm {_tag(tiles, GEMM_DEFAULT)}"
        outcome = None if budget.spent(name) else measured(name, lambda: measure_gemm(prompt, tiles, want, rep_ms))
        if outcome is None:
            failures += budget.left() >= 0
            continue
        error, gate_up_ms, down_ms = outcome
        failures += error >= TOLERANCE
        line = f"{name}: "
        if rep_ms is not None:
            both.append(Result(tiles, gate_up_ms + down_ms, error))
            gate_ups.append(Result(tiles, gate_up_ms, error))
            downs.append(Result(tiles, down_ms, error))
            line += (f"gate/up {gate_up_ms:.3f} ms ({gate_up_flop / gate_up_ms / 1e9:.0f} TFLOP/s), "
                     f"down {down_ms:.3f} ms ({down_flop / down_ms / 1e9:.0f} TFLOP/s), "
                     f"sum {gate_up_ms + down_ms:.3f} ms; ")
        print(line + _checked(error), flush=True)
    summary = [best_line("gemm, one tile for both (2k prompt)", both, GEMM_DEFAULT, "ms", 1,
                         "kernels.PREFILL_EXPERTS_TILES' last row = (1 << 62, {})"),
               best_line("gemm gate/up alone", gate_ups, GEMM_DEFAULT, "ms", 1,
                         "a gate/up tile of its own (PREFILL_EXPERTS_TILES holds one tile for both): {}"),
               best_line("gemm down alone", downs, GEMM_DEFAULT, "ms", 1,
                         "a down tile of its own (PREFILL_EXPERTS_TILES holds one tile for both): {}")]
    summary += chunked_gemms(prompt, both, rep_ms, budget)
    return summary + [f"gemm failures: {failures}"] * bool(failures)


def chunked_gemms(prompt: Prompt, both: list[Result], rep_ms: int | None, budget: Budget) -> list[str]:
    """The default and the best tile as the MXFP4 long-prompt path launches them."""
    chunk = kernels.DEQUANTIZED_EXPERTS_CHUNK
    best = fastest(both)
    times = {}
    for tiles in dict.fromkeys([GEMM_DEFAULT] + ([best.tiles] if best else [])):
        name = f"gemm {tiles} in chunks of {chunk} experts"
        buffers = grouped(prompt, tiles[0])
        outcome = None if budget.spent(name) else measured(
            name, lambda: (graph_ms(lambda: run_gemms(prompt, tiles, buffers, chunk), rep_ms),))
        if outcome is None:
            return [f"{name}: not timed"]
        times[tiles] = outcome[0]
    if rep_ms is None:
        return []
    line = f"gemm in chunks of {chunk} experts (the MXFP4 long-prompt path's launches, its unpacking left out):"
    for tiles, ms in times.items():
        line += f" {tiles} {ms:.3f} ms ({times[GEMM_DEFAULT] / ms:.3f}x);"
    return [line]


def measure_gate_up(decode: kernels.DecodeExpertsMxfp4, layers: list[Layer], want_act: list[torch.Tensor],
                    rep_ms: int | None) -> tuple:
    """(largest error of the act pairs against want_act's layers, ms of all layers)."""
    error = 0.0
    for layer, act in zip(layers, want_act):
        run_gate_up(decode, [layer])
        error = max(error, relative_error(decode.act_pairs.view(torch.float16), act.view(torch.float16)))
    return error, graph_ms(lambda: run_gate_up(decode, layers), rep_ms)


def measure_down(decode: kernels.DecodeExpertsMxfp4, layers: list[Layer], token: Token, want: list[tuple],
                 rep_ms: int | None) -> tuple:
    """(largest error of the output and the next norm against want's (act, out, normed) a layer,
    ms of all layers)."""
    error = 0.0
    for layer, (act, out, normed) in zip(layers, want):
        decode.act_pairs.copy_(act)
        token.residual.copy_(token.residual_start)
        run_down(decode, [layer], token)
        error = max(error, relative_error(token.out, out), relative_error(token.normed, normed))
    return error, graph_ms(lambda: run_down(decode, layers, token), rep_ms)


def sweep_gemvs(layers: list[Layer], token: Token, shapes: Shapes, device: torch.device,
                candidates: dict[str, list], rep_ms: int | None, budget: Budget) -> list[str]:
    """Part 2: a line a candidate as it is timed; returns the summary lines."""
    default = decoder(shapes, device, token)
    want = []  # (act pairs, out, normed) of the default, a checked layer
    for layer in layers[:CHECKED_LAYERS]:
        run_gate_up(default, [layer])
        token.residual.copy_(token.residual_start)
        run_down(default, [layer], token)
        want.append((default.act_pairs.clone(), token.out.clone(), token.normed.clone()))
    want_act = [act for act, _, _ in want]
    top_k, experts = shapes.top_k, shapes.experts
    moved = {"gate_up": top_k * layers[0].gate_up.nbytes() / experts, "down": top_k * layers[0].down.nbytes() / experts}
    results, failures = {"gate_up": [], "down": []}, 0
    for part, part_default in (("gate_up", GATE_UP_DEFAULT), ("down", DOWN_DEFAULT)):
        for tiles in candidates[part]:
            name = f"{part} gemv {_tag(tiles, part_default)}"
            if part == "gate_up":
                decode = decoder(shapes, device, token, gate_up_block=tiles)
                measure = functools.partial(measure_gate_up, decode, layers, want_act, rep_ms)
            else:
                decode = decoder(shapes, device, token, down_block=tiles)
                measure = functools.partial(measure_down, decode, layers, token, want, rep_ms)
            outcome = None if budget.spent(name) else measured(name, measure)
            if outcome is None:
                failures += budget.left() >= 0
                continue
            error, ms = outcome
            failures += error >= TOLERANCE
            line = f"{name}: "
            if ms is not None:
                per_layer = ms / len(layers)
                results[part].append(Result(tiles, per_layer, error))
                line += f"{per_layer * 1000:.1f} us a layer, {moved[part] / per_layer / 1e9:.2f} TB/s; "
            print(line + _checked(error), flush=True)
    summary = [best_line("gate/up gemv", results["gate_up"], GATE_UP_DEFAULT, "us", 1000,
                         "DecodeExpertsMxfp4.__init__'s gate_up_block default = {}"),
               best_line("down gemv (with the next norm)", results["down"], DOWN_DEFAULT, "us", 1000,
                         "DecodeExpertsMxfp4.__init__'s down_block default = {}")]
    summary += both_gemvs(shapes, device, layers, token, results, rep_ms, budget)
    return summary + [f"gemv failures: {failures}"] * bool(failures)


def both_gemvs(shapes: Shapes, device: torch.device, layers: list[Layer], token: Token, results: dict,
               rep_ms: int | None, budget: Budget) -> list[str]:
    """A layer's whole packed experts (gate/up, down, next norm) with the default tiles and with the
    two bests, timed together, the defaults again last (drift)."""
    best = {part: fastest(part_results) for part, part_results in results.items()}
    if rep_ms is None or None in best.values():
        return []
    line = "decode experts a layer (gate/up + down + next norm):"
    best_tiles = (best["gate_up"].tiles, best["down"].tiles)
    for label, tiles in (("defaults", (GATE_UP_DEFAULT, DOWN_DEFAULT)), ("bests", best_tiles),
                         ("defaults again", (GATE_UP_DEFAULT, DOWN_DEFAULT))):
        name = f"decode experts {tiles}"
        decode = decoder(shapes, device, token, *tiles)
        outcome = None if budget.spent(name) else measured(
            name, lambda: (graph_ms(lambda: run_decode(decode, layers, token), rep_ms),))
        line += f" {label} {tiles[0]} + {tiles[1]} " + ("not timed;" if outcome is None else
                                                         f"{outcome[0] / len(layers) * 1000:.1f} us;")
    return [line]


# -- main ------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true",
                        help="the CPU: Triton's interpreter, tiny shapes, one candidate a kernel, no timing")
    parser.add_argument("--budget", type=float, default=125.0,
                        help="seconds (from the start of main) after which no candidate is started")
    parser.add_argument("--jobs", type=int, default=max(0, min(12, (os.cpu_count() or 2) - 2)),
                        help="worker processes compiling the candidates first (0: compile as they are timed; "
                             "--smoke takes 1)")
    parser.add_argument("--rep-ms", type=int, default=15, help="do_bench_cudagraph's rep")
    parser.add_argument("--parts", default="gemm,gemv", help="gemm, gemv or both")
    args = parser.parse_args()
    if args.smoke and os.environ.get("TRITON_INTERPRET") != "1":  # Triton picks its interpreter at import
        sys.exit(subprocess.run([sys.executable, *sys.argv], env={**os.environ, "TRITON_INTERPRET": "1"}).returncode)
    budget = Budget(args.budget)
    shapes, device = (TINY if args.smoke else GPT_OSS_20B), _device(args.smoke)
    parts = args.parts.split(",")
    wanted = {"gemm": "gemm" in parts, "gate_up": "gemv" in parts, "down": "gemv" in parts}
    candidates = {part: tiles for part, tiles in (SMOKE_CANDIDATES if args.smoke else FULL_CANDIDATES).items()
                  if wanted[part]}
    if args.smoke:
        use_plain_word_dots()
    rep_ms = None if args.smoke else args.rep_ms
    print(f"{torch.cuda.get_device_name() if device.type == 'cuda' else 'CPU (Triton interpreter)'}, "
          f"torch {torch.__version__}, triton {triton.__version__}, "
          f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; {shapes}", flush=True)
    started = start_precompiling(candidates, 1 if args.smoke else args.jobs, args.smoke)
    summary = []
    try:  # inputs built and the defaults compiled here while the workers compile the rest
        if "gemm" in parts:
            prompt = prompt_inputs(shapes, device)
            run_prefill(prompt, GEMM_DEFAULT)
            run_gemms(prompt, GEMM_DEFAULT, grouped(prompt, GEMM_DEFAULT[0]), kernels.DEQUANTIZED_EXPERTS_CHUNK)
        if "gemv" in parts:
            layers, token = decode_layers(shapes, shapes.layers, device), decode_token(shapes, device)
            run_decode(decoder(shapes, device, token), layers, token)
        finish_precompiling(started, budget)
        started = None
        if "gemm" in parts:
            summary += sweep_gemms(prompt, shapes, candidates["gemm"], rep_ms, budget)
        if "gemv" in parts:
            summary += sweep_gemvs(layers, token, shapes, device, candidates, rep_ms, budget)
    finally:
        finish_precompiling(started, budget)
    print("\n".join(summary), flush=True)
    print(f"done in {budget.seconds - budget.left():.0f} s", flush=True)
    if args.smoke and any("fail" in line.lower() for line in summary):
        sys.exit(1)


if __name__ == "__main__":
    main()
