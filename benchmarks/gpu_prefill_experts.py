"""Time one layer's packed MXFP4 experts at prefills (gpt-oss-20b shapes, 32 experts, top-4), to
place the boundary of kernels.MXFP4_PREFILL_EXPERTS_TILES: at each length the default path (the
table's row for its pairs, past its last row the FP16 scratch), the weights-first packed GEMMs (the
unpacked weight tile as the MMA's first operand) at a sweep of tiles, and the FP16 scratch path
(experts unpacked to FP16 8 at a time, then the FP16 grouped GEMMs); and, as the bar, the same
layer with FP16 experts at 2,048 tokens.

    PYTHONPATH=. python benchmarks/gpu_prefill_experts.py [--tokens 512,2048,8192]

Times are CUDA-graph replays (do_bench_cudagraph: the kernels alone). Each candidate's output is
checked against the scratch path's (relative error); one that fails, or fails to compile or run,
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


def default_path(n_pairs: int) -> str:
    """What prefill_experts runs for n_pairs packed pairs by default."""
    row = next((tiles for most, tiles in kernels.MXFP4_PREFILL_EXPERTS_TILES if n_pairs <= most), None)
    return "FP16 scratch" if row is None else f"weights first {row}"


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
        want = kernels._prefill_experts_dequantized(*routed, *weights, *SWIGLU, n_real=None)
        scratch = graph_ms(lambda: kernels._prefill_experts_dequantized(*routed, *weights, *SWIGLU, n_real=None))
        error = relative_error(kernels.prefill_experts(*routed, *weights, *SWIGLU), want)
        default = graph_ms(lambda: kernels.prefill_experts(*routed, *weights, *SWIGLU))
        print(f"{n_tokens} tokens ({n_tokens * K} pairs): default ({default_path(n_tokens * K)}) {default:.3f} ms "
              f"(err {error:.1e}), FP16 scratch {scratch:.3f} ms", flush=True)
        if n_tokens == 2048:
            fp16 = (mxfp4.dequantize(gate_up, torch.float16), gate_up_bias, mxfp4.dequantize(down, torch.float16),
                    down_bias)
            error = relative_error(kernels.prefill_experts(*routed, *fp16, *SWIGLU), want)
            print(f"  FP16 experts (the bar): {graph_ms(lambda: kernels.prefill_experts(*routed, *fp16, *SWIGLU)):.3f}"
                  f" ms (err {error:.1e})", flush=True)
            del fp16
        for tiles in TILES:
            try:
                error = relative_error(kernels.prefill_experts(*routed, *weights, *SWIGLU, config=tiles), want)
                if not error < MAX_ERROR:
                    print(f"  weights first {tiles}: WRONG, err {error:.1e}", flush=True)
                    continue
                ms = graph_ms(lambda: kernels.prefill_experts(*routed, *weights, *SWIGLU, config=tiles))
            except Exception as failure:  # noqa: BLE001 (out of resources, compile errors: the sweep goes on)
                print(f"  weights first {tiles}: FAILED {type(failure).__name__}: {str(failure)[:120]}", flush=True)
                continue
            print(f"  weights first {tiles}: {ms:.3f} ms ({ms / default:.2f} x default, {ms / scratch:.2f} x scratch, "
                  f"err {error:.1e})", flush=True)
            if n_tokens not in best or ms < best[n_tokens][1]:
                best[n_tokens] = (tiles, ms, default, scratch)
    for n_tokens, (tiles, ms, default, scratch) in best.items():
        print(f"best weights first at {n_tokens} tokens: {tiles} {ms:.3f} ms, {ms / default:.2f} x default "
              f"({default_path(n_tokens * K)}, {default:.3f} ms), {ms / scratch:.2f} x FP16 scratch "
              f"({scratch:.3f} ms)")


if __name__ == "__main__":
    main()
