"""Time one layer's experts at a long prefill with MXFP4 experts (gpt-oss-20b shapes, 32 packed
experts, top-4), in one process: the FP16-scratch path with per-chunk masks (4 chunks of 8
experts, 5 small torch launches each on top of 2 unpacks and 2 grouped GEMMs) against the same
path with the chunk's first expert given to the GEMMs (the default). Results checked equal.

    PYTHONPATH=. python benchmarks/gpu_prefill_experts.py [--tokens 512,2048,8192]

Two times a call: "eager" (triton.testing.do_bench: launches from Python, as a cold prefill runs
them, so a slow host shows) and "graph" (do_bench_cudagraph: the kernels alone). Routing is random
top-4 of 32 (about 256 pairs an expert at 2,048 tokens), the weights random N(0, 0.02).
"""

from __future__ import annotations

import argparse

import torch
from triton.testing import do_bench, do_bench_cudagraph

from osslsp.engine import kernels, mxfp4

H, I, E, K = 2880, 2880, 32, 4
SWIGLU = (7.0, 1.702)  # gpt-oss's limit and alpha
DEVICE = torch.device("cuda")


def dequantized_with_chunk_masks(x, expert_ids, expert_weights, gate_up, gate_up_bias, down, down_bias,
                                 limit: float, alpha: float) -> torch.Tensor:
    """_prefill_experts_dequantized before the first-expert argument: each chunk's blocks picked by
    torch ops on the block experts."""
    n_pairs = expert_ids.numel()
    config = next(tiles for most, tiles in kernels.PREFILL_EXPERTS_TILES if n_pairs <= most)
    sorted_pairs, block_expert = kernels._align_pairs_by_expert(expert_ids, E, config[0])
    act = torch.empty(sorted_pairs.shape[0], I, dtype=x.dtype, device=x.device)
    pair_out = torch.empty(n_pairs, H, dtype=x.dtype, device=x.device)
    chunk = kernels.DEQUANTIZED_EXPERTS_CHUNK
    gate_up_chunk = torch.empty(chunk, 2 * I, H, dtype=x.dtype, device=x.device)
    down_chunk = torch.empty(chunk, H, I, dtype=x.dtype, device=x.device)
    for first in range(0, E, chunk):
        in_chunk = (block_expert >= first) & (block_expert < first + chunk)
        chunk_block_expert = torch.where(in_chunk, block_expert - first, chunk)
        kernels._grouped_gemms(x, expert_weights, kernels.dequantize_mxfp4(gate_up, first, chunk, gate_up_chunk),
                               gate_up_bias[first:first + chunk],
                               kernels.dequantize_mxfp4(down, first, chunk, down_chunk),
                               down_bias[first:first + chunk], sorted_pairs, chunk_block_expert, act, pair_out,
                               limit, alpha, config)
    return kernels._sum_pairs(pair_out, x.shape[0], None)


def relative_error(got: torch.Tensor, want: torch.Tensor) -> float:
    return float((got.float() - want.float()).norm() / want.float().norm())


def timed(call) -> str:
    """'eager X ms, graph Y ms' of call()."""
    eager = do_bench(call, warmup=5, rep=50)
    try:
        graph = f"{do_bench_cudagraph(call, rep=50):.3f} ms"
    except RuntimeError as error:  # a path that cannot be captured still gets its eager time
        graph = f"not capturable ({str(error)[:60]})"
    return f"eager {eager:.3f} ms, graph {graph}"


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
    for n_tokens in (int(n) for n in args.tokens.split(",")):
        x = torch.randn(n_tokens, H, device=DEVICE, generator=generator).half()
        values, ids = torch.randn(n_tokens, E, device=DEVICE, generator=generator).topk(K, dim=-1)
        routed = (x, ids, torch.softmax(values, -1).half())
        want = kernels._prefill_experts_dequantized(*routed, *weights, *SWIGLU, n_real=None)
        masked = dequantized_with_chunk_masks(*routed, *weights, *SWIGLU)
        print(f"{n_tokens} tokens ({n_tokens * K} pairs): dequantized, chunk masks: "
              f"{timed(lambda: dequantized_with_chunk_masks(*routed, *weights, *SWIGLU))} "
              f"(err {relative_error(masked, want):.1e})", flush=True)
        print(f"{n_tokens} tokens: dequantized, first expert given (default): "
              f"{timed(lambda: kernels._prefill_experts_dequantized(*routed, *weights, *SWIGLU, n_real=None))}",
              flush=True)


if __name__ == "__main__":
    main()
