"""Time the MXFP4 expert kernels with gpt-oss-20b shapes (one layer's 32 experts, packed) for a
few tile configurations, next to the FP16 kernels on the same weights dequantized; check each
against the plain-PyTorch twin.

    PYTHONPATH=. python benchmarks/gpu_mxfp4_kernels.py
"""

from __future__ import annotations

import torch
from triton.testing import do_bench

from osslsp.engine import kernels, kernels_torch, mxfp4

H, I, E, K = 2880, 2880, 32, 4
DEVICE = torch.device("cuda")


def relative_error(got: torch.Tensor, want: torch.Tensor) -> float:
    return float((got.float() - want.float()).norm() / want.float().norm())


def main() -> None:
    generator = torch.Generator(DEVICE).manual_seed(0)
    gate_up = mxfp4.quantize(torch.randn(E, 2 * I, H, device=DEVICE, generator=generator) * 0.02)
    down = mxfp4.quantize(torch.randn(E, H, I, device=DEVICE, generator=generator) * 0.02)
    gate_up16, down16 = mxfp4.dequantize(gate_up, torch.float16), mxfp4.dequantize(down, torch.float16)
    gate_up_bias = (torch.randn(E, 2 * I, device=DEVICE, generator=generator) * 0.02).half()
    down_bias = (torch.randn(E, H, device=DEVICE, generator=generator) * 0.02).half()
    x = torch.randn(2048, H, device=DEVICE, generator=generator).half()
    top_values, top_ids = torch.randn(2048, E, device=DEVICE, generator=generator).topk(K, dim=-1)
    top_weights = torch.softmax(top_values, -1).half()
    out = torch.empty(H, dtype=torch.float16, device=DEVICE)
    decode_bytes = K * (gate_up.nbytes() + down.nbytes()) / E
    want = kernels_torch.prefill_experts(x[:1], top_ids[:1], top_weights[:1], gate_up16, gate_up_bias, down16,
                                         down_bias, 7.0, 1.702)[0]

    fp16 = kernels.DecodeExperts(H, I, K, torch.float16, DEVICE)
    ms = do_bench(lambda: fp16(x[0], gate_up16, gate_up_bias, down16, down_bias, top_ids[0], top_weights[0],
                               7.0, 1.702, out))
    fp16_bytes = K * (gate_up16.nbytes + down16.nbytes) / E
    print(f"decode fp16 default: {ms * 1000:.1f} us, {fp16_bytes / ms / 1e6:.0f} GB/s "
          f"(rel err {relative_error(out, want):.1e})", flush=True)
    for gate_up_block in ((16, 128, 4), (8, 256, 4), (16, 256, 4), (32, 128, 4), (8, 128, 2), (4, 256, 2)):
        for down_block in ((4, 256, 4), (2, 512, 4), (8, 128, 4), (1, 512, 2), (4, 128, 2)):
            decode = kernels.DecodeExpertsMxfp4(H, I, K, torch.float16, DEVICE, gate_up_block, down_block)
            ms = do_bench(lambda: decode(x[0], gate_up, gate_up_bias, down, down_bias, top_ids[0], top_weights[0],
                                         7.0, 1.702, out))
            gate_up_ms = do_bench(lambda: decode.gate_up(x[0], gate_up, gate_up_bias, top_ids[0], 7.0, 1.702))
            print(f"decode mxfp4 {gate_up_block} {down_block}: {ms * 1000:.1f} us "
                  f"(gate_up {gate_up_ms * 1000:.1f}), {decode_bytes / ms / 1e6:.0f} GB/s "
                  f"(rel err {relative_error(out, want):.1e})", flush=True)

    for n_tokens in (10, 64, 2048):
        want = kernels_torch.prefill_experts(x[:n_tokens], top_ids[:n_tokens], top_weights[:n_tokens], gate_up16,
                                             gate_up_bias, down16, down_bias, 7.0, 1.702)
        args = (x[:n_tokens], top_ids[:n_tokens], top_weights[:n_tokens])
        ms = do_bench(lambda: kernels.prefill_experts(*args, gate_up16, gate_up_bias, down16, down_bias, 7.0, 1.702))
        print(f"prefill {n_tokens} fp16 default: {ms * 1000:.0f} us", flush=True)
        for config in [None, (16, 32, 128, 2, 4), (16, 64, 128, 4, 3), (32, 64, 128, 4, 3), (64, 64, 128, 4, 3),
                       (64, 128, 64, 4, 3), (128, 128, 64, 8, 3), (128, 64, 128, 8, 3)]:
            try:
                got = kernels.prefill_experts(*args, gate_up, gate_up_bias, down, down_bias, 7.0, 1.702, config)
                ms = do_bench(lambda: kernels.prefill_experts(*args, gate_up, gate_up_bias, down, down_bias, 7.0,
                                                              1.702, config))
                print(f"prefill {n_tokens} mxfp4 {config}: {ms * 1000:.0f} us "
                      f"(rel err {relative_error(got, want):.1e})", flush=True)
            except Exception as error:  # a tile too big for shared memory: report, go on
                print(f"prefill {n_tokens} mxfp4 {config}: {type(error).__name__}: {str(error)[:100]}", flush=True)


if __name__ == "__main__":
    main()
