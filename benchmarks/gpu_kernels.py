"""Check every Triton kernel of the fast runner against its plain-PyTorch twin, with gpt-oss-20b
shapes, and time the decode and prefill expert kernels (a few tile configurations).

    PYTHONPATH=. python benchmarks/gpu_kernels.py
"""

from __future__ import annotations

import inspect

import torch
import transformers
import triton
from triton.testing import do_bench

from osslsp.engine import kernels as tk
from osslsp.engine import kernels_torch as rk

H, I, E, K, NQ, NKV, D, T = 2880, 2880, 32, 4, 64, 8, 64, 8448
dev = torch.device("cuda")
f16 = torch.float16
results: list[str] = []


def report(name: str, got: torch.Tensor, want: torch.Tensor, tol: float = 2e-3) -> None:
    got, want = got.float(), want.float()
    rel = float((got - want).norm() / want.norm().clamp_min(1e-12))
    ok = bool(torch.isfinite(got).all()) and rel < tol
    results.append(f"{'ok  ' if ok else 'FAIL'} {name}: rel err {rel:.2e}")
    print(results[-1], flush=True)


def rand(*shape, scale=1.0, dtype=f16):
    return (torch.randn(*shape, device=dev) * scale).to(dtype)


def environment() -> None:
    from transformers import GptOssForCausalLM
    params = inspect.signature(GptOssForCausalLM.forward).parameters
    print("torch", torch.__version__, "transformers", transformers.__version__, "triton", triton.__version__,
          torch.cuda.get_device_name(), "cache kwarg:", "cache" in params, "past_key_values:",
          "past_key_values" in params, "set_experts_implementation:",
          hasattr(GptOssForCausalLM, "set_experts_implementation"), flush=True)


def check_norm_rope_attention() -> None:
    for n in (1, 300):
        res, delta, w = rand(n, H), rand(n, H), torch.rand(H, device=dev) + 0.5
        a, b = res.clone(), res.clone()
        out_t, out_r = torch.empty_like(res), torch.empty_like(res)
        tk.add_rmsnorm(a, delta, w, 1e-5, out_t)
        rk.add_rmsnorm(b, delta, w, 1e-5, out_r)
        report(f"add_rmsnorm n={n}", out_t, out_r)
    cos, sin = rand(T, D // 2), rand(T, D // 2)
    for n, start in ((1, 777), (300, 5)):
        qkv = rand(n, (NQ + 2 * NKV) * D)
        pos = torch.arange(start, start + n, device=dev)
        caches = [torch.zeros(NKV, T, D, dtype=f16, device=dev) for _ in range(4)]
        q_t, q_r = torch.empty(n, NQ * D, dtype=f16, device=dev), torch.empty(n, NQ * D, dtype=f16, device=dev)
        tk.rope_and_cache(qkv, cos, sin, pos, q_t, caches[0], caches[1])
        rk.rope_and_cache(qkv, cos, sin, pos, q_r, caches[2], caches[3])
        report(f"rope q n={n}", q_t, q_r)
        report(f"rope k n={n}", caches[0], caches[2])
        report(f"rope v n={n}", caches[1], caches[3])
    k_cache, v_cache, sinks = rand(NKV, T, D), rand(NKV, T, D), rand(NQ)
    attention = tk.DecodeAttention(NQ, NKV, D, dev)
    for length in (1, 100, 2049, 8200):
        for window in (128, tk.NO_WINDOW):
            q = rand(NQ * D)
            pos = torch.tensor([length - 1], device=dev)
            out_t, out_r = torch.empty_like(q), torch.empty_like(q)
            attention(q, k_cache, v_cache, pos, window, sinks, 0.125, out_t)
            rk.DecodeAttention(NQ, NKV, D, dev)(q, k_cache, v_cache, pos, window, sinks, 0.125, out_r)
            report(f"decode attention len={length} window={window}", out_t, out_r)
    for n, start in ((300, 0), (10, 2038), (2048, 0)):
        for window in (128, tk.NO_WINDOW):
            q = rand(n, NQ * D)
            out_t, out_r = torch.empty_like(q), torch.empty_like(q)
            pos = torch.arange(start, start + n, device=dev)
            tk.prefill_attention(q, k_cache, v_cache, pos, window, sinks, 0.125, out_t)
            rk.prefill_attention(q, k_cache, v_cache, pos, window, sinks, 0.125, out_r)
            report(f"prefill attention n={n} start={start} window={window}", out_t, out_r)
    q = rand(8192, NQ * D)
    out = torch.empty_like(q)
    pos = torch.arange(8192, device=dev)
    ms = do_bench(lambda: tk.prefill_attention(q, k_cache, v_cache, pos, tk.NO_WINDOW, sinks, 0.125, out))
    flops = 4 * NQ * D * 8192 * 8192 / 2
    print(f"prefill attention 8k full: {ms:.2f} ms, {flops / ms / 1e9:.0f} TFLOP/s", flush=True)
    position = torch.tensor([2047], device=dev)
    ms = do_bench(lambda: attention(q[0], k_cache, v_cache, position, tk.NO_WINDOW, sinks, 0.125, out[0]))
    print(f"decode attention 2k full: {ms * 1000:.1f} us", flush=True)


def check_experts() -> None:
    gate_up, gate_up_bias = rand(E, 2 * I, H, scale=0.02), rand(E, 2 * I, scale=0.02)
    down, down_bias = rand(E, H, I, scale=0.02), rand(E, H, scale=0.02)
    x = rand(H)
    ids = torch.tensor([3, 17, 30, 9], device=dev)
    weights = torch.softmax(torch.randn(K, device=dev), 0).to(f16)
    out_r = torch.empty(H, dtype=f16, device=dev)
    rk.DecodeExperts(H, I, K, f16, dev)(x, gate_up, gate_up_bias, down, down_bias, ids, weights, 7.0, 1.702, out_r)
    experts = tk.DecodeExperts(H, I, K, f16, dev)
    out_t = torch.empty(H, dtype=f16, device=dev)
    experts(x, gate_up, gate_up_bias, down, down_bias, ids, weights, 7.0, 1.702, out_t)
    report("decode experts (default tiles)", out_t, out_r, tol=5e-3)
    gate_up_bytes, down_bytes = K * 2 * I * H * 2, K * H * I * 2
    for block in ((16, 256, 8), (8, 256, 4), (32, 256, 8), (16, 128, 4), (32, 128, 8), (8, 128, 2)):
        experts.gate_up_block = block
        ms = do_bench(lambda: experts.gate_up(x, gate_up, gate_up_bias, ids, 7.0, 1.702), warmup=50, rep=300)
        print(f"   gate_up {block}: {ms * 1000:.1f} us, {gate_up_bytes / ms / 1e9:.2f} TB/s", flush=True)
    for block in ((1, 1024, 4), (2, 512, 4), (4, 256, 4), (2, 256, 2), (4, 512, 8), (8, 256, 8), (1, 512, 2)):
        experts.down_block = block
        ms = do_bench(lambda: experts.down(down, down_bias, ids, weights, out_t), warmup=50, rep=300)
        print(f"   down {block}: {ms * 1000:.1f} us, {down_bytes / ms / 1e9:.2f} TB/s", flush=True)
    lm_head, h = rand(201088, H, scale=0.02), rand(1, H)
    ms = do_bench(lambda: torch.nn.functional.linear(h, lm_head), warmup=50, rep=300)
    print(f"   lm head: {ms * 1000:.1f} us, {lm_head.numel() * 2 / ms / 1e9:.2f} TB/s", flush=True)
    for n in (10, 2048):
        xs = rand(n, H)
        logits = torch.randn(n, E, device=dev)
        top_v, top_i = logits.topk(K, dim=-1)
        top_w = torch.softmax(top_v, -1).to(f16)
        want = rk.prefill_experts(xs, top_i, top_w, gate_up, gate_up_bias, down, down_bias, 7.0, 1.702)
        got = tk.prefill_experts(xs, top_i, top_w, gate_up, gate_up_bias, down, down_bias, 7.0, 1.702)
        report(f"prefill experts n={n}", got, want, tol=5e-3)
        configs = ([(16, 64, 256, 4, 3), (16, 64, 256, 4, 4), (16, 32, 256, 2, 4), (16, 64, 512, 4, 2),
                    (16, 128, 256, 8, 3), (16, 32, 512, 4, 3)] if n < 64 else
                   [(128, 128, 64, 8, 3), (128, 128, 64, 8, 4), (128, 64, 64, 4, 4), (64, 128, 64, 4, 4),
                    (128, 128, 32, 8, 4), (128, 256, 64, 8, 3), (64, 256, 64, 8, 3)])
        for config in configs:
            try:
                got = tk.prefill_experts(xs, top_i, top_w, gate_up, gate_up_bias, down, down_bias, 7.0, 1.702, config)
                rel = float((got.float() - want.float()).norm() / want.float().norm())
                ms = do_bench(lambda: tk.prefill_experts(xs, top_i, top_w, gate_up, gate_up_bias, down, down_bias,
                                                         7.0, 1.702, config))
            except Exception as error:  # noqa: BLE001 - a tile that does not fit is a result
                print(f"   n={n} {config}: {type(error).__name__}", flush=True)
                continue
            flops = 2 * n * K * (2 * I * H + H * I)
            print(f"   n={n} {config}: {ms * 1000:.0f} us, {flops / ms / 1e9:.0f} TFLOP/s, rel err {rel:.1e}",
                  flush=True)


if __name__ == "__main__":
    torch.manual_seed(0)
    environment()
    check_norm_rope_attention()
    check_experts()
    print("\n".join(results))
    print("FAILURES:", sum(r.startswith("FAIL") for r in results))
