"""Time the MXFP4 decode kernels with gpt-oss-20b shapes (one layer's 32 experts, packed) for a
few tile configurations, next to the FP16 kernels on the same weights dequantized, the grouped
GEMVs of a few tokens against the grouped GEMMs, and the one-launch router against F.linear + topk
+ softmax; check each against the plain-PyTorch twin.

    PYTHONPATH=. python benchmarks/gpu_mxfp4_kernels.py

Times are of CUDA graph replays (triton.testing.do_bench_cudagraph): a launch from Python costs
more than most of these kernels take, so plain do_bench would time the launch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from triton.testing import do_bench_cudagraph as do_bench

from osslsp.engine import kernels, kernels_torch, mxfp4

H, I, E, K = 2880, 2880, 32, 4
SWIGLU = (7.0, 1.702)  # gpt-oss's limit and alpha
DEVICE = torch.device("cuda")


def each_expert_set(call) -> float:
    """ms of call(ids) a call, over 8 sets of 4 expert ids that cover all 32 experts: one layer's
    4 experts (35 MB packed) would stay in the H200's 50 MB L2 between replays."""
    sets = torch.randperm(E, generator=torch.Generator().manual_seed(0)).view(8, K).to(DEVICE)
    return do_bench(lambda: [call(ids) for ids in sets]) / len(sets)


def relative_error(got: torch.Tensor, want: torch.Tensor) -> float:
    return float((got.float() - want.float()).norm() / want.float().norm())


def few_tokens(gate_up, gate_up_bias, down, down_bias, gate_up16, down16, generator) -> None:
    """Experts of a few tokens (a keystroke's prefill, a batched step): the grouped GEMVs against
    the grouped GEMMs, packed and FP16. 16 tokens are the keystroke graph's: 10 new tokens, then 6
    copies of the last on its experts."""
    gemm_tiles = kernels.MXFP4_PREFILL_EXPERTS_TILES[0][1]
    for n_tokens in (2, 4, 10, 16, 32):
        x = torch.randn(n_tokens, H, device=DEVICE, generator=generator).half()
        values, ids = torch.randn(n_tokens, E, device=DEVICE, generator=generator).topk(K, dim=-1)
        if n_tokens == 16:
            x[10:], ids[10:], values[10:] = x[9], ids[9], values[9]
        weights = torch.softmax(values, -1).half()
        args = (x, ids, weights)
        want = kernels_torch.prefill_experts(*args, gate_up16, gate_up_bias, down16, down_bias, *SWIGLU)
        fp16_us = do_bench(lambda: kernels.prefill_experts(*args, gate_up16, gate_up_bias, down16, down_bias,
                                                           *SWIGLU)) * 1000
        gemm_us = do_bench(lambda: kernels.prefill_experts(*args, gate_up, gate_up_bias, down, down_bias, *SWIGLU,
                                                           config=gemm_tiles)) * 1000
        line = f"few tokens {n_tokens:3d} ({len(set(ids.flatten().tolist()))} experts): fp16 gemm {fp16_us:.0f} us, " \
               f"mxfp4 gemm {gemm_us:.0f} us, mxfp4 gemv"
        for config in ((4, 8, 32, 4), (2, 8, 32, 4), (4, 4, 32, 2), (4, 16, 32, 8), (1, 8, 32, 4)):
            got = kernels._prefill_experts_gemv(*args, gate_up, gate_up_bias, down, down_bias, *SWIGLU, config)
            error = relative_error(got, want)
            us = do_bench(lambda: kernels._prefill_experts_gemv(*args, gate_up, gate_up_bias, down, down_bias,
                                                                *SWIGLU, config)) * 1000
            line += f" {config} {us:.0f} us (err {error:.1e});"
        print(line, flush=True)


def main() -> None:
    generator = torch.Generator(DEVICE).manual_seed(0)
    gate_up = mxfp4.quantize(torch.randn(E, 2 * I, H, device=DEVICE, generator=generator) * 0.02)
    down = mxfp4.quantize(torch.randn(E, H, I, device=DEVICE, generator=generator) * 0.02)
    gate_up16, down16 = mxfp4.dequantize(gate_up, torch.float16), mxfp4.dequantize(down, torch.float16)
    gate_up_bias = (torch.randn(E, 2 * I, device=DEVICE, generator=generator) * 0.02).half()
    down_bias = (torch.randn(E, H, device=DEVICE, generator=generator) * 0.02).half()
    x = torch.randn(16, H, device=DEVICE, generator=generator).half()
    top_values, top_ids = torch.randn(16, E, device=DEVICE, generator=generator).topk(K, dim=-1)
    top_weights = torch.softmax(top_values, -1).half()
    out = torch.empty(H, dtype=torch.float16, device=DEVICE)
    gate_up_bytes = K * gate_up.nbytes() / E
    decode_bytes = K * (gate_up.nbytes() + down.nbytes()) / E
    want = kernels_torch.prefill_experts(x[:1], top_ids[:1], top_weights[:1], gate_up16, gate_up_bias, down16,
                                         down_bias, 7.0, 1.702)[0]

    fp16 = kernels.DecodeExperts(H, I, K, torch.float16, DEVICE)
    ms = each_expert_set(lambda ids: fp16(x[0], gate_up16, gate_up_bias, down16, down_bias, ids, top_weights[0],
                                          7.0, 1.702, out))
    fp16_bytes = K * (gate_up16.nbytes + down16.nbytes) / E
    print(f"decode fp16 default: {ms * 1000:.1f} us, {fp16_bytes / ms / 1e6:.0f} GB/s "
          f"(rel err {relative_error(out, want):.1e})", flush=True)

    for gate_up_block in ((8, 32, 4), (4, 32, 4), (16, 32, 8), (8, 16, 4), (4, 32, 2), (2, 32, 1)):
        decode = kernels.DecodeExpertsMxfp4(H, I, K, torch.float16, DEVICE, gate_up_block=gate_up_block)
        decode(x[0], gate_up, gate_up_bias, down, down_bias, top_ids[0], top_weights[0], 7.0, 1.702, out)
        error = relative_error(out, want)
        kernels.word_pairs(x[0], decode.x_pairs)
        ms = each_expert_set(lambda ids: decode.gate_up(x[0], gate_up, gate_up_bias, ids, 7.0, 1.702))
        print(f"gate_up mxfp4 {gate_up_block}: {ms * 1000:.1f} us, {gate_up_bytes / ms / 1e6:.0f} GB/s "
              f"(whole decode rel err {error:.1e})", flush=True)
    for down_block in ((4, 32, 4), (8, 32, 4), (2, 32, 2), (4, 16, 2), (8, 16, 4), (16, 32, 8)):
        decode = kernels.DecodeExpertsMxfp4(H, I, K, torch.float16, DEVICE, down_block=down_block)
        decode(x[0], gate_up, gate_up_bias, down, down_bias, top_ids[0], top_weights[0], 7.0, 1.702, out)
        error = relative_error(out, want)
        ms = each_expert_set(lambda ids: decode.down(down, down_bias, ids, top_weights[0], out))
        print(f"down mxfp4 {down_block}: {ms * 1000:.1f} us, {(decode_bytes - gate_up_bytes) / ms / 1e6:.0f} GB/s "
              f"(rel err {error:.1e})", flush=True)
    decode = kernels.DecodeExpertsMxfp4(H, I, K, torch.float16, DEVICE)
    for slot in range(16):  # other tokens' experts: the error must not depend on which
        decode(x[slot], gate_up, gate_up_bias, down, down_bias, top_ids[slot], top_weights[slot], 7.0, 1.702, out)
        want_slot = kernels_torch.prefill_experts(x[slot:slot + 1], top_ids[slot:slot + 1],
                                                  top_weights[slot:slot + 1], gate_up16, gate_up_bias, down16,
                                                  down_bias, 7.0, 1.702)[0]
        assert relative_error(out, want_slot) < 5e-3, (slot, relative_error(out, want_slot))
    ms = each_expert_set(lambda ids: decode(x[0], gate_up, gate_up_bias, down, down_bias, ids, top_weights[0],
                                            7.0, 1.702, out))
    print(f"decode mxfp4 default: {ms * 1000:.1f} us, {decode_bytes / ms / 1e6:.0f} GB/s", flush=True)

    scratch = torch.empty(8, 2 * I, H, dtype=torch.float16, device=DEVICE)
    ms = do_bench(lambda: kernels.dequantize_mxfp4(gate_up, 0, 8, scratch))
    moved = gate_up.nbytes() / 4 + scratch.nbytes  # 8 of 32 experts read, their FP16 written
    print(f"dequantize 8 experts' gate_up: {ms * 1000:.0f} us, {moved / ms / 1e6:.0f} GB/s", flush=True)
    for n_tokens in (10, 512, 2048):
        ids = torch.randn(n_tokens, E, device=DEVICE, generator=generator).topk(K, dim=-1)[1]  # (n, K)
        args = (torch.randn(n_tokens, H, device=DEVICE, generator=generator).half(), ids,
                top_weights[:1].expand(n_tokens, K).contiguous())
        fp16_ms = do_bench(lambda: kernels.prefill_experts(*args, gate_up16, gate_up_bias, down16, down_bias, *SWIGLU))
        ms = do_bench(lambda: kernels.prefill_experts(*args, gate_up, gate_up_bias, down, down_bias, *SWIGLU))
        print(f"prefill experts, {n_tokens} tokens: fp16 {fp16_ms * 1000:.0f} us, mxfp4 {ms * 1000:.0f} us", flush=True)

    few_tokens(gate_up, gate_up_bias, down, down_bias, gate_up16, down16, generator)

    router_weight = (torch.randn(E, H, device=DEVICE, generator=generator) * 0.02).half()
    router_bias = (torch.randn(E, device=DEVICE, generator=generator) * 0.02).half()

    def torch_route():
        values, ids = torch.topk(F.linear(x[:1], router_weight, router_bias), K, dim=-1)
        return ids, torch.softmax(values, dim=-1, dtype=values.dtype)

    print(f"router torch (linear, topk, softmax): {do_bench(torch_route) * 1000:.1f} us", flush=True)
    for block in ((2, 4), (1, 4), (4, 4), (2, 8), (4, 8)):
        router = kernels.DecodeRouter(K, torch.float16, DEVICE, *block)
        for row in range(16):
            ids, weights = router(x[row], router_weight, router_bias)
            want_ids = torch.topk(F.linear(x[row:row + 1], router_weight, router_bias), K, dim=-1)[1]
            assert ids.tolist() == want_ids[0].tolist(), (ids, want_ids)
        ms = do_bench(lambda: router(x[0], router_weight, router_bias))
        print(f"router one launch (experts a program, warps) {block}: {ms * 1000:.1f} us", flush=True)


if __name__ == "__main__":
    main()
