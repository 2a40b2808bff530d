"""Where the fast runner's GPU time goes: a keystroke prefill, a cold 2k prefill and decode steps
(graph replays), on random weights with gpt-oss-20b's config (torch.profiler, kernel time by name).

    PYTHONPATH=. python benchmarks/gpu_profile.py [--experts mxfp4,fp16]

`mxfp4` packs the random model's experts in memory (mxfp4.quantize, the released layout) instead
of writing and loading a checkpoint: the runner reads them as it reads a loaded one.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.profiler import ProfilerActivity, profile

from osslsp.engine import mxfp4
from osslsp.engine.gpt_oss_fast import FastGptOssRunner
from osslsp.engine.loading import load_model
from osslsp.models import resolve_model


def show(title: str, action, rows: int = 25) -> None:
    action()
    torch.cuda.synchronize()
    started = time.perf_counter()
    action()
    torch.cuda.synchronize()
    wall = (time.perf_counter() - started) * 1000
    with profile(activities=[ProfilerActivity.CUDA, ProfilerActivity.CPU]) as prof:
        action()
        torch.cuda.synchronize()
    events = [e for e in prof.key_averages() if e.device_type == torch.autograd.DeviceType.CUDA]
    gpu_total = sum(e.self_device_time_total for e in events) / 1000
    print(f"\n== {title}: wall {wall:.2f} ms, GPU kernels {gpu_total:.2f} ms", flush=True)
    for event in sorted(events, key=lambda e: -e.self_device_time_total)[:rows]:
        print(f"{event.self_device_time_total / 1000:8.3f} ms {event.count:5d}x  {event.key[:100]}")


def pack_experts(model) -> None:
    """Replace every layer's FP16 experts (E, in, out) by packed ones, as a released checkpoint loads."""
    with torch.no_grad():
        for layer in model.model.layers:
            experts = layer.mlp.experts
            for name in mxfp4.EXPERT_PROJECTIONS:
                packed = mxfp4.quantize(getattr(experts, name).transpose(1, 2))  # (E, out, in)
                setattr(experts, f"{name}_blocks", packed.blocks)
                setattr(experts, f"{name}_scales", packed.scales)
                delattr(experts, name)
    torch.cuda.empty_cache()


def profile_runner(model, experts: str) -> None:
    runner = FastGptOssRunner(model, 4096)
    prompt = torch.randint(100, 199_000, (2048,), generator=torch.Generator().manual_seed(0)).tolist()
    edits = [prompt[:-10] + list(range(1000, 1010)), prompt[:-10] + list(range(2000, 2010))]
    runner.prefill(prompt)
    state = {"i": 0}

    def keystroke() -> None:
        state["i"] += 1
        int(runner.prefill(edits[state["i"] % 2]).argmax())

    def cold() -> None:
        runner.cached_ids = []
        int(runner.prefill(prompt).argmax())

    def decode() -> None:
        runner.cached_ids = runner.cached_ids[:2048]
        token = 5
        for _ in range(16):
            token = int(runner.decode_one(token).argmax())

    show(f"{experts}: keystroke (10 new tokens after 2038 reused)", keystroke)
    show(f"{experts}: 16 decode steps at 2k", decode)
    show(f"{experts}: cold prefill 2048", cold)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experts", default="mxfp4,fp16", help="comma-separated: mxfp4, fp16 (in this order)")
    choices = parser.parse_args().experts.split(",")
    for experts in choices:
        model = load_model(resolve_model("random:osslsp/data/gpt-oss-20b"), "float16", "cuda").model
        if experts == "mxfp4":
            pack_experts(model)
        profile_runner(model, experts)
        del model
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
