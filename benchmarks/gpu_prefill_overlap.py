"""Time one layer's experts at a long prefill on MXFP4 experts (gpt-oss-20b shapes: 32 packed
experts, top-4, random routing), the FP16-scratch path (kernels._prefill_experts_dequantized) with
its unpacking in sequence with the grouped GEMMs against the same path with each chunk unpacked on a
side stream while the chunk before's GEMMs run (kernels.UnpackOverlap: chunk size, unpack grid
bounded to a share of the SMs, side-stream priority), in one process. Every variant's result is
checked equal (bit for bit) to the sequential path's with chunks as large, eagerly and replayed
from a CUDA graph; the first line a size says whether chunks of 4 and 8 agree too.

    PYTHONPATH=. python3 benchmarks/gpu_prefill_overlap.py [--tokens 2048,8192] [--budget 110]

One line a variant: "graph" (triton.testing.do_bench_cudagraph: the kernels alone, as a cold
prefill replayed from a CUDA graph runs them) and "eager" (do_bench: launched from Python). First,
for scale, the unpacking alone (all 32 experts, by the grid it would get) and the GEMMs alone (the
ideal overlap is the larger of the two). A variant that raises prints its error and the script goes
on; past --budget seconds the remaining variants are skipped.
"""

from __future__ import annotations

import argparse
import time

import torch
from triton.testing import do_bench, do_bench_cudagraph

from osslsp.engine import kernels, mxfp4

H, I, E, K = 2880, 2880, 32, 4
SWIGLU = (7.0, 1.702)  # gpt-oss's limit and alpha
DEVICE = torch.device("cuda")
Overlap = kernels.UnpackOverlap
VARIANTS = [Overlap(4), Overlap(4, 1.0), Overlap(4, 0.5), Overlap(4, 0.25),
            Overlap(8), Overlap(8, 1.0), Overlap(8, 0.5), Overlap(8, 0.25),
            Overlap(4, None, -1), Overlap(4, 0.5, -1), Overlap(8, 0.5, -1)]


def layer_weights(generator: torch.Generator):
    """One layer's experts, random N(0, 0.02): packed gate_up (E, 2I, H), its float16 bias (E, 2I),
    packed down (E, H, I), its bias (E, H)."""
    gate_up, down = (mxfp4.quantize(torch.randn(E, rows, inputs, device=DEVICE, generator=generator) * 0.02)
                     for rows, inputs in ((2 * I, H), (H, I)))
    gate_up_bias, down_bias = ((torch.randn(E, rows, device=DEVICE, generator=generator) * 0.02).half()
                               for rows in (2 * I, H))
    return gate_up, gate_up_bias, down, down_bias


def experts_layer(call, overlap: kernels.UnpackOverlap | None, chunk: int = 8):
    """call() with the scratch path set to overlap (None: in sequence, `chunk` experts at a time)."""
    defaults = kernels.DEQUANTIZED_EXPERTS_OVERLAP, kernels.DEQUANTIZED_EXPERTS_CHUNK
    kernels.DEQUANTIZED_EXPERTS_OVERLAP, kernels.DEQUANTIZED_EXPERTS_CHUNK = overlap, chunk
    try:
        return call()
    finally:
        kernels.DEQUANTIZED_EXPERTS_OVERLAP, kernels.DEQUANTIZED_EXPERTS_CHUNK = defaults


def graph_result(call) -> torch.Tensor:
    """call()'s output replayed from a CUDA graph (captured after a warm-up on a side stream)."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        call()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = call()
    out.zero_()
    graph.replay()
    torch.cuda.synchronize()
    return out.clone()


def timed(call, check) -> str:
    """'graph X ms (check), eager Y ms (check)' of call(), check(out) telling whether its result (run
    eagerly, then replayed from a graph) is right; what raises ends the line with its error."""
    line = ""
    try:
        eager_check = check(call())
        line = f"eager {do_bench(call, warmup=5, rep=60):.3f} ms ({eager_check})"
        graph_check = check(graph_result(call))
        line = f"graph {do_bench_cudagraph(call, rep=60):.3f} ms ({graph_check}), {line}"
    except Exception as error:  # noqa: BLE001 - the next variant still runs
        line += f" failed: {type(error).__name__}: {str(error)[:200]}"
    return line


def checked(want: torch.Tensor | None):
    """A check of a result against want: 'equal' or how far; with no want, 'not checked'."""
    def check(got) -> str:
        if want is None:
            return "not checked"
        if torch.equal(got, want):
            return "equal"
        return f"DIFFERENT, max abs {float((got.float() - want.float()).abs().max()):.2e}"
    return check


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", default="2048,8192")
    parser.add_argument("--budget", type=float, default=110.0, help="seconds; later variants are skipped")
    args = parser.parse_args()
    started = time.monotonic()
    generator = torch.Generator(DEVICE).manual_seed(0)
    weights = layer_weights(generator)
    gate_up, gate_up_bias, down, down_bias = weights
    sms = torch.cuda.get_device_properties(DEVICE).multi_processor_count
    print(f"{torch.cuda.get_device_name()} ({sms} SMs), torch {torch.__version__}, "
          f"triton {kernels.triton.__version__}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", flush=True)
    scratch = (torch.empty(E, 2 * I, H, dtype=torch.float16, device=DEVICE),
               torch.empty(E, H, I, dtype=torch.float16, device=DEVICE))
    for share in (None, 1.0, 0.5, 0.25):
        programs = None if share is None else max(1, round(share * sms)) * kernels.UNPACK_PROGRAMS_AN_SM

        def unpack_all():
            kernels.dequantize_mxfp4(gate_up, 0, E, scratch[0], programs)
            return kernels.dequantize_mxfp4(down, 0, E, scratch[1], programs)

        print(f"unpack alone, 32 experts, {programs or 'one per 4,096 bytes'} programs: "
              f"{timed(unpack_all, checked(None))}", flush=True)
    for n_tokens in (int(n) for n in args.tokens.split(",")):
        x = torch.randn(n_tokens, H, device=DEVICE, generator=generator).half()
        values, ids = torch.randn(n_tokens, E, device=DEVICE, generator=generator).topk(K, dim=-1)
        routed = (x, ids, torch.softmax(values, -1).half())

        def layer():
            return kernels._prefill_experts_dequantized(*routed, *weights, *SWIGLU, n_real=None)

        wants = {chunk: experts_layer(layer, None, chunk) for chunk in (4, 8)}  # each checks its chunk size
        print(f"{n_tokens} tokens: sequential chunks of 4 against 8: {checked(wants[8])(wants[4])}", flush=True)
        config = next(tiles for most, tiles in kernels.PREFILL_EXPERTS_TILES if n_tokens * K <= most)
        sorted_pairs, block_expert = kernels._align_pairs_by_expert(ids, E, config[0])
        act = torch.empty(sorted_pairs.shape[0], I, dtype=x.dtype, device=DEVICE)
        pair_out = torch.empty(n_tokens * K, H, dtype=x.dtype, device=DEVICE)

        def gemms_alone():
            kernels._grouped_gemms(x, routed[2], scratch[0], gate_up_bias, scratch[1], down_bias, sorted_pairs,
                                   block_expert, act, pair_out, *SWIGLU, config)
            return pair_out

        print(f"{n_tokens} tokens: GEMMs alone, 32 experts in one launch each: "
              f"{timed(gemms_alone, checked(None))}", flush=True)
        for overlap, chunk in [(None, 8), (None, 4), *((variant, 8) for variant in VARIANTS)]:
            name = f"sequential, chunks of {chunk}" if overlap is None else f"overlapped {overlap}"
            if time.monotonic() - started > args.budget:
                print(f"{n_tokens} tokens: {name}: skipped (past the {args.budget:.0f} s budget)", flush=True)
                continue
            check = checked(wants[chunk if overlap is None else overlap.chunk])
            line = experts_layer(lambda: timed(layer, check), overlap, chunk)
            print(f"{n_tokens} tokens: {name}: {line}", flush=True)
    print(f"done in {time.monotonic() - started:.0f} s", flush=True)


if __name__ == "__main__":
    main()
