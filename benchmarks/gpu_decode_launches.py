"""The launches after decode attention, old against new in one process: o_proj (cuBLAS) + residual
add and post-attention RMSNorm + the one-launch router (three launches, the decode step before
branch decode5) against `kernels.DecodeAttentionOutput` (one launch, router fused or not), with
gpt-oss-20b's shapes; first the launches alone over 24 layers' weights, then whole decode steps of
the fast runner with either in its CUDA graph (and decode attention's combine, the next layer's
input norm each in its own launch as before, or in the split kernel's / down GEMV's last program).

    PYTHONPATH=. python benchmarks/gpu_decode_launches.py [--experts mxfp4,fp16] [--skip-steps]

Launch times are CUDA graph replays (do_bench_cudagraph) of all 24 layers, so that one layer's
weights (24 MB of o_proj) do not stay in the H200's 50 MB L2 between replays. Every variant is
compared with the old sequence first (layers with the same expert ids; the largest difference of
weights, residual and normed row, relative for the last two).
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from triton.testing import do_bench_cudagraph as do_bench

from gpu_profile import pack_experts  # benchmarks/ is the script's directory: on sys.path

from osslsp.engine import kernels
from osslsp.engine.gpt_oss_fast import FastGptOssRunner
from osslsp.engine.loading import load_model
from osslsp.models import resolve_model

H, A, E, K, LAYERS = 2880, 4096, 32, 4, 24  # hidden, attended (64 heads x 64), experts, top-k, layers
EPS = 1e-5
DEVICE = torch.device("cuda")
# (rows a program, attended columns a step, num_warps), router fused: the candidates timed.
VARIANTS = [((8, 512, 4), True), ((8, 512, 4), False), ((4, 512, 4), True), ((16, 256, 4), True),
            ((4, 1024, 8), True), ((8, 1024, 8), True), ((2, 1024, 4), True), ((16, 512, 8), True)]


class UnfusedAttentionOutput:
    """The decode step's sequence before DecodeAttentionOutput: F.linear, add_rmsnorm, DecodeRouter."""

    def __init__(self, top_k: int, dtype: torch.dtype, device: torch.device):
        self.router = kernels.DecodeRouter(top_k, dtype, device)

    def __call__(self, attended, o_weight, o_bias, residual, norm_weight, eps, normed, pairs, router_weight,
                 router_bias):
        delta = F.linear(attended[None], o_weight, o_bias)  # (1, H)
        kernels.add_rmsnorm(residual[None], delta, norm_weight, eps, normed[None],
                            None if pairs is None else pairs[None])
        return self.router(normed, router_weight, router_bias)


class UnfusedNextNorm:
    """Decode experts whose next norm is a launch of its own (add_rmsnorm), as before decode5."""

    def __init__(self, experts):
        self.experts, self.x_pairs = experts, experts.x_pairs

    def __call__(self, *args, then_norm=None, **kwargs):
        self.experts(*args, **kwargs)
        if then_norm is not None:
            out = args[9]  # (H,), as DecodeExperts.__call__ takes it
            kernels.add_rmsnorm(then_norm.residual[None], out[None], then_norm.weight, then_norm.eps,
                                then_norm.normed[None])


def random_layers(generator: torch.Generator) -> list[tuple[torch.Tensor, ...]]:
    """Per layer: o_weight (H, A), o_bias (H,), norm weight (H,), router weight (E, H), bias (E,)."""
    def randn(*shape, scale):
        return (torch.randn(*shape, device=DEVICE, generator=generator) * scale).half()
    return [(randn(H, A, scale=A ** -0.5), randn(H, scale=0.1), 1 + randn(H, scale=0.1), randn(E, H, scale=0.05),
             randn(E, scale=0.1)) for _ in range(LAYERS)]


def launches(layers, generator: torch.Generator) -> None:
    attended = torch.randn(A, device=DEVICE, generator=generator).half()
    start = torch.randn(H, device=DEVICE, generator=generator).half()
    pairs = torch.empty(4, H // 8, dtype=torch.int32, device=DEVICE)
    normed = torch.empty(H, dtype=torch.float16, device=DEVICE)

    def run_all(step) -> None:
        residual = start.clone()  # each layer adds its o_proj to the residual, as in the step
        for o_weight, o_bias, norm_weight, router_weight, router_bias in layers:
            step(attended, o_weight, o_bias, residual, norm_weight, EPS, normed, pairs, router_weight, router_bias)

    def outputs(step) -> list[torch.Tensor]:
        residual, results = start.clone(), []
        for o_weight, o_bias, norm_weight, router_weight, router_bias in layers:
            ids, weights = step(attended, o_weight, o_bias, residual, norm_weight, EPS, normed, pairs,
                                router_weight, router_bias)
            results.append((ids.clone(), weights.clone(), normed.clone(), residual.clone(), pairs.clone()))
        return results

    old = UnfusedAttentionOutput(K, torch.float16, DEVICE)
    want = outputs(old)
    old_us = do_bench(lambda: run_all(old)) * 1000 / LAYERS
    print(f"after attention, a layer: old (F.linear + add_rmsnorm + router, 3 launches) {old_us:.2f} us", flush=True)
    for block, route in VARIANTS:
        new = kernels.DecodeAttentionOutput(K, torch.float16, DEVICE, block=block, route=route)
        same_ids, worst = 0, 0.0  # reported, not asserted: a near-tie of logits may order differently
        for got, expected in zip(outputs(new), want):
            same_ids += got[0].tolist() == expected[0].tolist()
            worst = max([worst, float((got[1].float() - expected[1].float()).abs().max())] + [
                float((g.float() - e.float()).norm() / e.float().norm()) for g, e in zip(got[2:4], expected[2:4])])
            assert torch.equal(got[4], kernels.word_pairs(got[2]))
        us = do_bench(lambda: run_all(new)) * 1000 / LAYERS
        launches_per_layer = 1 if route else 2
        print(f"after attention, a layer: new {block} router fused {route} ({launches_per_layer} launch"
              f"{'es' if launches_per_layer > 1 else ''}) {us:.2f} us ({old_us / us:.2f}x); same ids in "
              f"{same_ids}/{LAYERS} layers, worst difference {worst:.1e}", flush=True)


def decode_ms(runner, steps: int = 128, repeats: int = 3) -> float:
    """Best ms a token over `repeats` runs of `steps` greedy decode steps after a 2048-token prompt."""
    prompt = torch.randint(100, 199_000, (2048,), generator=torch.Generator().manual_seed(0)).tolist()
    best = float("inf")
    for _ in range(repeats):
        runner.cached_ids = []
        token = int(runner.prefill(prompt).argmax())
        torch.cuda.synchronize()
        started = time.perf_counter()
        for _ in range(steps):
            token = int(runner.decode_one(token).argmax())
        best = min(best, (time.perf_counter() - started) * 1000 / steps)
    return best


def steps(experts: str) -> None:
    """Whole decode steps of the fast runner with the old sequence and each new variant in its graph."""
    model = load_model(resolve_model("random:osslsp/data/gpt-oss-20b"), "float16", "cuda").model
    if experts == "mxfp4":
        pack_experts(model)
    runner = FastGptOssRunner(model, 4096)
    device = runner.device  # the key of the runner's per-device launch objects
    n_q, n_kv, head_dim = runner.n_q, runner.n_kv, runner.head_dim
    fused_experts = runner.decode_experts[device]
    unfused_experts = UnfusedNextNorm(fused_experts)
    default = VARIANTS[0][0]
    # (name, the launch(es) after attention, attention's combine in its split kernel, experts' next norm fused)
    candidates = [("old", UnfusedAttentionOutput(K, torch.float16, device), False, False)] + [
        (f"new {block} fused router {route}", kernels.DecodeAttentionOutput(K, torch.float16, device, block, route),
         True, True) for block, route in VARIANTS] + [
        (f"new {default}, combine launch kept", kernels.DecodeAttentionOutput(K, torch.float16, device), False, True),
        (f"new {default}, next norm launch kept", kernels.DecodeAttentionOutput(K, torch.float16, device), True,
         False)]
    reference_tokens = None
    for name, candidate, combine_in_split, next_norm_fused in candidates + candidates[:1]:  # old again: drift
        runner.decode_attention_output[device] = candidate
        runner.decode_attention[device] = kernels.DecodeAttention(n_q, n_kv, head_dim, device, combine_in_split)
        runner.decode_experts[device] = fused_experts if next_norm_fused else unfused_experts
        runner.graph = None  # the previous capture's memory goes back before the next
        runner._capture_decode_graph()
        ms = decode_ms(runner)
        runner.cached_ids = []
        prompt = list(range(1000, 1500))
        tokens = [int(runner.prefill(prompt).argmax())]
        for _ in range(32):
            tokens.append(int(runner.decode_one(tokens[-1]).argmax()))
        reference_tokens = reference_tokens or tokens
        same = sum(a == b for a, b in zip(tokens, reference_tokens))
        print(f"{experts} decode step at 2k, {name}: {ms:.3f} ms ({1000 / ms:.1f} tok/s); "
              f"greedy tokens equal to old's: {same}/{len(tokens)}", flush=True)
    del runner, model
    torch.cuda.empty_cache()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experts", default="mxfp4,fp16", help="comma-separated: mxfp4, fp16")
    parser.add_argument("--skip-steps", action="store_true", help="time the launches alone")
    options = parser.parse_args()
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}, triton "
          f"{__import__('triton').__version__}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", flush=True)
    generator = torch.Generator(DEVICE).manual_seed(0)
    launches(random_layers(generator), generator)
    if not options.skip_steps:
        for experts in options.experts.split(","):
            steps(experts)


if __name__ == "__main__":
    main()
