"""Time one layer's experts at a long prefill with MXFP4 experts (gpt-oss-20b shapes, 32 packed
experts, top-4), in one process: the FP16-scratch path as on main (per-chunk masks: 4 chunks of 8
experts, 5 small torch launches each on top of 2 unpacks and 2 grouped GEMMs), the same path with
the chunk's first expert given to the GEMMs (this branch's default), and the unpacking wide-block
GEMMs (no scratch, 2 launches) for a few tile configurations, with and without skipping sub-blocks
of padding. Each result is checked against the FP16-scratch path's.

    PYTHONPATH=. python benchmarks/gpu_prefill_experts.py [--tokens 512,2048,8192] [--tiles S,M,N,K,W,ST ...]

Two times a call: "eager" (triton.testing.do_bench: launches from Python, as a cold prefill runs
them, so a slow host shows) and "graph" (do_bench_cudagraph: the kernels alone). Routing is random
top-4 of 32 (about 256 pairs an expert at 2,048 tokens), the weights random N(0, 0.02).
"""

from __future__ import annotations

import argparse

import torch
from triton.runtime.errors import OutOfResources
from triton.testing import do_bench, do_bench_cudagraph

from osslsp.engine import kernels, mxfp4

H, I, E, K = 2880, 2880, 32, 4
SWIGLU = (7.0, 1.702)  # gpt-oss's limit and alpha
DEVICE = torch.device("cuda")
WIDE_TILES = [(4, 64, 64, 64, 8, 3), (2, 128, 64, 64, 8, 3), (4, 64, 64, 32, 8, 3), (2, 64, 128, 64, 8, 3),
              (1, 128, 128, 64, 8, 3), (4, 64, 128, 64, 8, 3), (2, 128, 128, 64, 8, 3)]


def dequantized_with_chunk_masks(x, expert_ids, expert_weights, gate_up, gate_up_bias, down, down_bias,
                                 limit: float, alpha: float) -> torch.Tensor:
    """_prefill_experts_dequantized as on main: each chunk's blocks picked by torch ops on the
    block experts (the baseline the first-expert argument removes)."""
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
    parser.add_argument("--tiles", nargs="*", default=None, help="wide tiles, S,M,N,K,W,ST each")
    args = parser.parse_args()
    tiles_list = [tuple(int(v) for v in t.split(",")) for t in args.tiles] if args.tiles else WIDE_TILES
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
        main_path = dequantized_with_chunk_masks(*routed, *weights, *SWIGLU)
        print(f"{n_tokens} tokens ({n_tokens * K} pairs): dequantized, chunk masks (main): "
              f"{timed(lambda: dequantized_with_chunk_masks(*routed, *weights, *SWIGLU))} "
              f"(err {relative_error(main_path, want):.1e})", flush=True)
        print(f"{n_tokens} tokens: dequantized, first expert given (this branch): "
              f"{timed(lambda: kernels._prefill_experts_dequantized(*routed, *weights, *SWIGLU, n_real=None))}",
              flush=True)
        for skip in (False, True):
            kernels.MXFP4_WIDE_SKIP_EMPTY = skip
            for tiles in tiles_list:
                try:
                    got = kernels.prefill_experts(*routed, *weights, *SWIGLU, config=tiles)
                    line = timed(lambda: kernels.prefill_experts(*routed, *weights, *SWIGLU, config=tiles))
                    line += f" (err {relative_error(got, want):.1e})"
                except OutOfResources as error:  # a tile past the SM's shared memory or registers: the next one
                    line = f"failed: {type(error).__name__}: {str(error)[:100]}"
                print(f"{n_tokens} tokens: wide {tiles} skip_empty={skip}: {line}", flush=True)
        kernels.MXFP4_WIDE_SKIP_EMPTY = False


if __name__ == "__main__":
    main()
