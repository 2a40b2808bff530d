"""What limits the packed decode GEMVs (kernels.DecodeExpertsMxfp4): memory or the work around it.

The gate/up and down GEMVs of one token's 4 experts, gpt-oss-20b shapes, each timed as CUDA graph
replays of 24 launches two ways: "cold", 24 layers' packed weights (1.3 GB, so that every byte comes
from HBM as in a decode step), and "hot", one layer's weights 24 times (the down GEMV's 17.6 MB
stays in the 50 MB L2; gate/up's 35 MB mostly). If hot is not much faster than cold, the kernels
are bound by their own instructions and latencies, not by HBM. Both with programmatic dependent
launch (kernels.PDL) and without. Weights are random bytes (the time does not depend on them).

    PYTHONPATH=. python3 benchmarks/gpu_packed_gemv_limits.py          # the table, ~30 s
    ncu -k regex:gemv_kernel -c 4 --section SpeedOfLight --section WarpStateStats \\
        python3 benchmarks/gpu_packed_gemv_limits.py --once            # each kernel twice, eagerly
"""

from __future__ import annotations

import argparse

import torch
import triton
from triton.testing import do_bench_cudagraph

from osslsp.engine import kernels, mxfp4
from osslsp.engine.kernels_torch import NextNorm

H, I, E, K, LAYERS = 2880, 2880, 32, 4, 24
DEVICE = torch.device("cuda")


def random_packed(rows: int, cols: int) -> mxfp4.Mxfp4Weight:
    """Random codes with scales near 2^-6: (E, rows, cols) packed."""
    blocks = torch.randint(0, 256, (E, rows, cols // 32, 16), dtype=torch.uint8, device=DEVICE)
    scales = torch.randint(118, 124, (E, rows, cols // 32), dtype=torch.uint8, device=DEVICE)
    return mxfp4.Mxfp4Weight(blocks, scales)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--once", action="store_true", help="run each kernel twice eagerly (for ncu), no timing")
    options = parser.parse_args()
    generator = torch.Generator(device=DEVICE).manual_seed(0)
    layers = [(random_packed(2 * I, H), random_packed(H, I)) for _ in range(LAYERS)]
    gate_up_bias = torch.randn(E, 2 * I, device=DEVICE, generator=generator).half() * 0.02
    down_bias = torch.randn(E, H, device=DEVICE, generator=generator).half() * 0.02
    ids = [torch.randperm(E, device=DEVICE, generator=generator)[:K] for _ in range(LAYERS)]
    weights = torch.softmax(torch.randn(K, device=DEVICE, generator=generator), 0).half()
    experts = kernels.DecodeExpertsMxfp4(H, I, K, torch.float16, DEVICE)
    x = torch.randn(H, device=DEVICE, generator=generator).half()
    kernels.word_pairs(x, experts.x_pairs)
    out = torch.empty(H, dtype=torch.float16, device=DEVICE)
    residual, normed = torch.randn(H, device=DEVICE).half(), torch.empty(H, dtype=torch.float16, device=DEVICE)
    norm = NextNorm(residual, torch.ones(H, dtype=torch.float16, device=DEVICE), 1e-5, normed)

    def gate_up(layer: int) -> None:
        experts.gate_up(x, layers[layer][0], gate_up_bias, ids[layer], 7.0, 1.702)

    def down(layer: int) -> None:
        experts.down(layers[layer][1], down_bias, ids[layer], weights, out, norm)

    if options.once:
        for _ in range(2):
            gate_up(0)
            down(0)
        torch.cuda.synchronize()
        return
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}, triton {triton.__version__}; "
          f"tiles gate/up {experts.gate_up_block}, down {experts.down_block}", flush=True)
    packed_bytes = {"gate/up": layers[0][0].nbytes() * K / E, "down (+ next norm)": layers[0][1].nbytes() * K / E}
    for pdl in (False, True):
        kernels.PDL = pdl and kernels._pdl_supported()
        for name, launch in (("gate/up", gate_up), ("down (+ next norm)", down)):
            for mode, which in (("cold", range(LAYERS)), ("hot", [0] * LAYERS)):
                us = do_bench_cudagraph(lambda: [launch(layer) for layer in which], rep=200) * 1000 / LAYERS
                print(f"PDL {pdl!s:5} {name:18} {mode}: {us:6.2f} us a launch, "
                      f"{packed_bytes[name] / us / 1e6:5.2f} TB/s of packed bytes", flush=True)


if __name__ == "__main__":
    main()
