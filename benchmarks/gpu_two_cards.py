"""gpt-oss-20b split across two GPUs, each capped at 22 GiB (two 24 GB cards): the fast runner
serves completions. Random weights with the real config are built on the first card, checked
against the model's own forward there, then the upper half of the layers moves to the second card.

    PYTHONPATH=. python benchmarks/gpu_two_cards.py
"""

from __future__ import annotations

import time

import torch

from osslsp.engine.generation import generate
from osslsp.engine.gpt_oss_fast import FastGptOssRunner
from osslsp.engine.loading import load_model
from osslsp.models import resolve_model
from osslsp.sampling import Sampling

CAP_GIB = 22


def main() -> None:
    assert torch.cuda.device_count() >= 2, "needs two GPUs"
    model = load_model(resolve_model("random:osslsp/data/gpt-oss-20b"), "float16", "cuda").model
    prompt = torch.randint(100, 199_000, (2048,), generator=torch.Generator().manual_seed(0)).tolist()
    with torch.inference_mode():
        reference = model(input_ids=torch.tensor([prompt], device="cuda:0")).logits[0, -1].float()
    half = len(model.model.layers) // 2
    model.model.layers[half:].to("cuda:1")
    model.model.norm.to("cuda:1")
    model.lm_head.to("cuda:1")
    torch.cuda.empty_cache()
    for device in (0, 1):
        total = torch.cuda.get_device_properties(device).total_memory
        torch.cuda.set_per_process_memory_fraction(CAP_GIB * 2**30 / total, device)
        torch.cuda.reset_peak_memory_stats(device)
        print(f"cuda:{device}: {torch.cuda.memory_allocated(device) / 2**30:.1f} GiB of weights, cap {CAP_GIB} GiB")
    started = time.perf_counter()
    runner = FastGptOssRunner(model, 8192 + 128)
    print(f"ready in {time.perf_counter() - started:.1f} s")
    logits = runner.prefill(prompt).to(reference.device)
    print(f"logits vs the single-card forward: rel diff {float((logits - reference).norm() / reference.norm()):.2e}, "
          f"same argmax {bool(logits.argmax() == reference.argmax())}")
    for length in (2048, 8192):
        ids = torch.randint(100, 199_000, (length,), generator=torch.Generator().manual_seed(length)).tolist()
        for _ in range(3):
            runner.cached_ids = []
            torch.cuda.synchronize(0)
            started = time.perf_counter()
            tokens = list(generate(runner, ids, Sampling(max_new_tokens=48), frozenset(), lambda: False))
            torch.cuda.synchronize(1)
            seconds = time.perf_counter() - started
        runner.cached_ids = []
        torch.cuda.synchronize(1)
        started = time.perf_counter()
        int(runner.prefill(ids).argmax())
        torch.cuda.synchronize(1)
        ttft = time.perf_counter() - started
        print(f"{length}-token prompt: completion of {len(tokens)} tokens in {seconds * 1000:.0f} ms, "
              f"TTFT {ttft * 1000:.0f} ms, decode {(len(tokens) - 1) / (seconds - ttft):.0f} tok/s")
    for device in (0, 1):
        print(f"cuda:{device}: peak {torch.cuda.max_memory_allocated(device) / 2**30:.1f} GiB")


if __name__ == "__main__":
    main()
