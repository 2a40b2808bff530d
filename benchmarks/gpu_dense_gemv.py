"""The decode step's FP16 attention projections of gpt-oss-20b: today's F.linear (cuBLAS) against the
kernels' own GEMVs (kernels.decode_qkv_rope, kernels.decode_linear) at each tile of a sweep.

1. qkv: F.linear (5120, 2880) + rope_and_cache, against decode_qkv_rope (the GEMV, rope and cache
   write in one launch).
2. o_proj: F.linear (2880, 4096), against decode_linear.
3. A layer's two: qkv then o_proj, today's against the fastest tiles of 1 and 2.

Each tile (ROWS, num_warps) is run with kernels.PDL on and off. One replay is a CUDA graph
of 24 layers' distinct weights (1.3 GB: one layer's would stay in the H200's 50 MB L2), timed with
triton.testing.do_bench on graph.replay; us a layer and TB/s of weight bytes read. Every variant's
output is first checked against the F.linear path (max abs difference), and its registers and
spills printed; a variant that fails to compile prints its error and the sweep goes on. Each
variant compiles in well under a second, so the whole run should take under 90 s. Compiled by
Triton 3.9 for sm_90, the tiles take 40-170 registers a thread, except ROWS 16 at 4 warps: ~250,
and spills for o_proj's K = 4096. (A variant that prefetched the weights to L2 and read them in a
K loop was slower at every tile on the H200, 2026-12-02, `results/h200-2026-12-02-s11c-dense.log`.)

    PYTHONPATH=. python3 benchmarks/gpu_dense_gemv.py

The last lines give the fastest tile of each kernel and the constant to set
(kernels.DECODE_QKV_TILE, kernels.DECODE_LINEAR_TILE).
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from triton.testing import do_bench

from osslsp.engine import kernels

H, NQ, NKV, D = 2880, 64, 8, 64
QKV_ROWS = (NQ + 2 * NKV) * D  # 5120
LAYERS = 24
CACHE_LEN, POSITION = 4096, 1234
TILES = [(rows, num_warps) for rows in (4, 8, 16) for num_warps in (4, 8)]
TOLERANCE = 0.02  # max abs difference to F.linear's outputs (values of a few units: fp16 rounding, sum order)
DEVICE = torch.device("cuda")


def _normal(generator: torch.Generator, *size: int, scale: float = 1.0) -> torch.Tensor:
    return (torch.randn(*size, device=DEVICE, generator=generator) * scale).half()


class Inputs:
    """LAYERS layers' qkv and o_proj weights (as gpt-oss-20b's, weights N(0, 1/sqrt(in))), one token's
    input, the rope tables and each layer's caches."""

    def __init__(self, layers: int):
        generator = torch.Generator(DEVICE).manual_seed(0)
        self.qkv = [(_normal(generator, QKV_ROWS, H, scale=H ** -0.5), _normal(generator, QKV_ROWS, scale=0.1))
                    for _ in range(layers)]
        self.o = [(_normal(generator, H, NQ * D, scale=(NQ * D) ** -0.5), _normal(generator, H, scale=0.1))
                  for _ in range(layers)]
        self.x = _normal(generator, 1, H)
        self.attended = _normal(generator, 1, NQ * D)
        angles = torch.arange(CACHE_LEN, device=DEVICE)[:, None] * torch.rand(D // 2, device=DEVICE,
                                                                                generator=generator)[None]
        self.cos, self.sin = angles.cos(), angles.sin()  # (T, D/2) float32, as the runner's tables
        self.position = torch.tensor([POSITION], device=DEVICE)
        self.q = torch.empty(1, NQ * D, dtype=torch.float16, device=DEVICE)
        self.caches = [[torch.zeros(NKV, CACHE_LEN, D, dtype=torch.float16, device=DEVICE) for _ in range(2)]
                       for _ in range(layers)]
        self.out = torch.empty(1, H, dtype=torch.float16, device=DEVICE)

    def qkv_today(self, layer: int) -> None:
        qkv = F.linear(self.x, *self.qkv[layer])  # (1, 5120)
        kernels.rope_and_cache(qkv, self.cos, self.sin, self.position, self.q, *self.caches[layer])

    def qkv_dense(self, layer: int):
        return kernels.decode_qkv_rope(self.x, *self.qkv[layer], self.cos, self.sin, self.position, self.q,
                                       *self.caches[layer])

    def o_today(self, layer: int) -> torch.Tensor:
        return F.linear(self.attended, *self.o[layer])  # (1, H)

    def o_dense(self, layer: int):
        return kernels.decode_linear(self.attended, *self.o[layer], self.out)

    def qkv_outputs(self) -> list[torch.Tensor]:
        """q (1, NQ D), layer 0's k and v at the position (NKV, D) each, copied."""
        k_cache, v_cache = self.caches[0]
        return [self.q.clone(), k_cache[:, POSITION].clone(), v_cache[:, POSITION].clone()]

    def clear_qkv_outputs(self) -> None:
        for output in (self.q, *self.caches[0]):
            output.zero_()

    def clear_o_output(self) -> None:
        self.out.zero_()


def _set(tile: tuple[int, int], pdl: bool) -> None:
    kernels.DECODE_QKV_TILE = kernels.DECODE_LINEAR_TILE = tile
    kernels.PDL = pdl


def replay_us(call) -> float:
    """us a layer of one graph of `call(layer)` for every layer."""
    graph = torch.cuda.CUDAGraph()
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        call(0)  # warm-up off the capture (workspaces, lazy inits)
    torch.cuda.current_stream().wait_stream(stream)
    with torch.cuda.graph(graph):
        for layer in range(LAYERS):
            call(layer)
    torch.cuda.synchronize()
    return do_bench(graph.replay) * 1000 / LAYERS


def _max_diff(got: list[torch.Tensor], want: list[torch.Tensor]) -> float:
    return max(float((g.float() - w.float()).abs().max()) for g, w in zip(got, want))


def sweep(name: str, pdl_choices: list[bool], today, want: list[torch.Tensor], dense, clear, outputs,
          weight_bytes: int) -> dict:
    """Today's call, then the dense kernel at every tile with each PDL choice, its outputs first
    checked against `want`, today's; {(tile, pdl): us}."""
    us = replay_us(today)
    print(f"{name} today (F.linear): {us:6.1f} us a layer, {weight_bytes / us / 1e6:.2f} TB/s", flush=True)
    results = {}
    for pdl in pdl_choices:
        for tile in TILES:
            label = f"{name} {str(tile):17s} PDL {pdl!s:5s}"
            try:
                _set(tile, pdl)
                clear()
                compiled = dense(0)
                torch.cuda.synchronize()
                difference = _max_diff(outputs(), want)
                registers = f"{getattr(compiled, 'n_regs', '?')} regs, {getattr(compiled, 'n_spills', '?')} spills"
                if not difference <= TOLERANCE:  # NaN too
                    print(f"{label}: WRONG, max abs diff {difference:.3g} ({registers})", flush=True)
                    continue
                us = replay_us(dense)
            except Exception as error:  # noqa: BLE001 - a tile that does not compile or run: go on
                print(f"{label}: FAILED {type(error).__name__}: {str(error)[:300]}", flush=True)
                continue
            results[tile, pdl] = us
            print(f"{label}: {us:6.1f} us a layer, {weight_bytes / us / 1e6:.2f} TB/s "
                  f"(max abs diff {difference:.1e}; {registers})", flush=True)
    return results


def main() -> None:
    start = time.perf_counter()
    pdl_choices = [True, False] if kernels.PDL else [False]  # PDL needs Hopper or later
    print(f"{torch.cuda.get_device_name()}, PDL {pdl_choices}", flush=True)
    inputs = Inputs(LAYERS)
    qkv_bytes = inputs.qkv[0][0].nbytes + inputs.qkv[0][1].nbytes
    o_bytes = inputs.o[0][0].nbytes + inputs.o[0][1].nbytes
    with torch.inference_mode():
        kernels.PDL = pdl_choices[0]
        inputs.qkv_today(0)
        qkv = sweep("qkv", pdl_choices, inputs.qkv_today, inputs.qkv_outputs(), inputs.qkv_dense,
                    inputs.clear_qkv_outputs, inputs.qkv_outputs, qkv_bytes)
        o = sweep("o_proj", pdl_choices, inputs.o_today, [inputs.o_today(0)], inputs.o_dense, inputs.clear_o_output,
                  lambda: [inputs.out.clone()], o_bytes)

        today_us = replay_us(lambda layer: (inputs.qkv_today(layer), inputs.o_today(layer)))
        print(f"layer (qkv, o_proj) today: {today_us:6.1f} us a layer", flush=True)
        if qkv and o:
            (qkv_tile, qkv_pdl), (o_tile, o_pdl) = min(qkv, key=qkv.get), min(o, key=o.get)
            for pdl in pdl_choices:

                def layer_dense(layer: int) -> None:
                    kernels.DECODE_QKV_TILE = qkv_tile
                    inputs.qkv_dense(layer)
                    kernels.DECODE_LINEAR_TILE = o_tile
                    inputs.o_dense(layer)

                kernels.PDL = pdl
                us = replay_us(layer_dense)
                print(f"layer (qkv, o_proj) dense {qkv_tile} {o_tile} PDL {pdl}: {us:6.1f} us a layer "
                      f"({today_us / us:.2f}x today)", flush=True)
            print(f"fastest qkv: kernels.DECODE_QKV_TILE = {qkv_tile} (PDL {qkv_pdl}): {qkv[qkv_tile, qkv_pdl]:.1f} us")
            print(f"fastest o_proj: kernels.DECODE_LINEAR_TILE = {o_tile} (PDL {o_pdl}): {o[o_tile, o_pdl]:.1f} us")
    print(f"total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
