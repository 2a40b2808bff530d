"""Time one layer's packed MXFP4 experts at a long prefill (gpt-oss-20b shapes, 32 experts, top-4):
the default path (past 1,024 pairs: experts unpacked to FP16 scratch 8 at a time, then the FP16
grouped GEMMs) against the transposed packed GEMMs (the unpacked weight tile as the MMA's first
operand, kernels.MXFP4_LONG_PROMPT_TILES) at a sweep of tiles; and, as the bar, the same layer
with FP16 experts at 2,048 tokens.

    PYTHONPATH=. python benchmarks/gpu_prefill_experts.py [--tokens 512,2048,8192]

Times are CUDA-graph replays (do_bench_cudagraph: the kernels alone). Each candidate's output is
checked against the default's first (relative error); one that fails, or fails to compile or run,
prints why and the sweep goes on. Routing is random top-4 of 32 (about 256 pairs an expert at
2,048 tokens), the weights random N(0, 0.02). Tiles: (BLOCK_M pairs, BLOCK_N weight rows, BLOCK_K,
num_warps, num_stages); registers for sm_90 of each (no spills): benchmarks/sm90_registers.py.
"""

from __future__ import annotations

import argparse

import torch
from triton.testing import do_bench_cudagraph

from osslsp.engine import kernels, mxfp4

H, I, E, K = 2880, 2880, 32, 4
SWIGLU = (7.0, 1.702)  # gpt-oss's limit and alpha
DEVICE = torch.device("cuda")
MAX_ERROR = 1e-2  # both paths round the activations to FP16 once; a wrong tile is off by far more
TILES = (  # (BLOCK_M, BLOCK_N, BLOCK_K, num_warps, num_stages)
    (64, 64, 64, 4, 3), (64, 64, 128, 4, 3), (64, 128, 64, 4, 3), (64, 128, 128, 8, 3), (128, 64, 64, 4, 3),
    (128, 128, 64, 8, 3), (128, 128, 128, 8, 2), (128, 128, 64, 4, 4), (64, 128, 64, 8, 4), (128, 64, 128, 4, 2),
)


def relative_error(got: torch.Tensor, want: torch.Tensor) -> float:
    return float((got.float() - want.float()).norm() / want.float().norm())


def graph_ms(call) -> float:
    return do_bench_cudagraph(call, rep=50)


def experts_with_tiles(tiles, routed, weights):
    """prefill_experts with kernels.MXFP4_LONG_PROMPT_TILES = tiles (None: the default path)."""
    kernels.MXFP4_LONG_PROMPT_TILES = tiles
    try:
        return kernels.prefill_experts(*routed, *weights, *SWIGLU)
    finally:
        kernels.MXFP4_LONG_PROMPT_TILES = None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", default="512,2048,8192")
    args = parser.parse_args()
    generator = torch.Generator(DEVICE).manual_seed(0)
    gate_up = mxfp4.quantize(torch.randn(E, 2 * I, H, device=DEVICE, generator=generator) * 0.02)
    down = mxfp4.quantize(torch.randn(E, H, I, device=DEVICE, generator=generator) * 0.02)
    gate_up_bias = (torch.randn(E, 2 * I, device=DEVICE, generator=generator) * 0.02).half()
    down_bias = (torch.randn(E, H, device=DEVICE, generator=generator) * 0.02).half()
    weights = (gate_up, gate_up_bias, down, down_bias)
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}, triton {kernels.triton.__version__}",
          flush=True)
    best = {}
    for n_tokens in (int(n) for n in args.tokens.split(",")):
        x = torch.randn(n_tokens, H, device=DEVICE, generator=generator).half()
        values, ids = torch.randn(n_tokens, E, device=DEVICE, generator=generator).topk(K, dim=-1)
        routed = (x, ids, torch.softmax(values, -1).half())
        want = experts_with_tiles(None, routed, weights)
        default = graph_ms(lambda: experts_with_tiles(None, routed, weights))
        print(f"{n_tokens} tokens ({n_tokens * K} pairs): default {default:.3f} ms", flush=True)
        if n_tokens == 2048:
            fp16 = (mxfp4.dequantize(gate_up, torch.float16), gate_up_bias, mxfp4.dequantize(down, torch.float16),
                    down_bias)
            error = relative_error(kernels.prefill_experts(*routed, *fp16, *SWIGLU), want)
            print(f"  FP16 experts (the bar): {graph_ms(lambda: kernels.prefill_experts(*routed, *fp16, *SWIGLU)):.3f}"
                  f" ms (err {error:.1e})", flush=True)
            del fp16
            old = (64, 64, 128, 4, 3)  # the unpacking GEMMs with the weights second (MXFP4_PREFILL_EXPERTS_TILES)
            print(f"  packed, weights second {old}: "
                  f"{graph_ms(lambda: kernels.prefill_experts(*routed, *weights, *SWIGLU, config=old)):.3f} ms",
                  flush=True)
        for tiles in TILES:
            try:
                error = relative_error(experts_with_tiles(tiles, routed, weights), want)
                if not error < MAX_ERROR:
                    print(f"  weights first {tiles}: WRONG, err {error:.1e}", flush=True)
                    continue
                ms = graph_ms(lambda: experts_with_tiles(tiles, routed, weights))
            except Exception as failure:  # noqa: BLE001 (out of resources, compile errors: the sweep goes on)
                print(f"  weights first {tiles}: FAILED {type(failure).__name__}: {str(failure)[:120]}", flush=True)
                continue
            print(f"  weights first {tiles}: {ms:.3f} ms ({ms / default:.2f} x default, err {error:.1e})", flush=True)
            if n_tokens not in best or ms < best[n_tokens][1]:
                best[n_tokens] = (tiles, ms, default)
    for n_tokens, (tiles, ms, default) in best.items():
        print(f"best at {n_tokens} tokens: {tiles} {ms:.3f} ms, {ms / default:.2f} x default ({default:.3f} ms)")


if __name__ == "__main__":
    main()
