"""The batched runner on a GPU: does a batch compute what each sequence computes alone, and what a
batched step costs per size (on the GPU machine: `--model random:osslsp/data/gpt-oss-20b`).

1. Agreement: prompts of different lengths generated greedily alone (the fast runner, one at a
   time) and together (the batch scheduler, joining at different steps); prints how many tokens
   agree (random FP16 weights: near-ties may part two runs late; the first tokens must agree).
2. Cost: one batched step (CUDA graph replay) for each captured size, every row at position
   `--context` of its own slot; and a 512-token prefill chunk into a slot.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from osslsp.engine.batched_runner import make_batched_runner
from osslsp.engine.batching import BatchScheduler
from osslsp.engine.requests import Generation, Request
from osslsp.engine.generation import Sampling, generate
from osslsp.engine.loading import load_model
from osslsp.models import resolve_model


def agreement(batched, prompts: list[list[int]], new_tokens: int) -> list[dict]:
    """Greedy tokens alone and in the batch, per prompt."""
    alone = [list(generate(batched.fast, prompt, Sampling(max_new_tokens=new_tokens), frozenset(), lambda: False))
             for prompt in prompts]
    def ended(generation: Generation, reason: str, error: BaseException | None) -> None:
        generation.finish_reason = f"error: {error}" if error else reason

    scheduler = BatchScheduler(batched, frozenset(), len(prompts), ended)
    generations = []
    for prompt in prompts:  # one joins every other step
        generation = Generation(Request(prompt_ids=prompt, sampling=Sampling(max_new_tokens=new_tokens)))
        generations.append(generation)
        scheduler.admit(generation, new_tokens)
        scheduler.step()
        scheduler.step()
    while scheduler.running:
        scheduler.step()
    results = []
    for prompt, generation, expected in zip(prompts, generations, alone):
        got = []
        while not generation._events.empty():
            kind, value = generation._events.get()
            if kind == "token":
                got.append(value)
        same = next((index for index, (a, b) in enumerate(zip(got, expected)) if a != b), min(len(got), len(expected)))
        results.append({"prompt_tokens": len(prompt), "alone": len(expected), "batched": len(got),
                        "agree_first": same, "finish": generation.finish_reason})
    return results


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def step_costs(batched, context: int, repeats: int = 20) -> dict[int, float]:
    """Milliseconds per batched step, per captured size (rows at `context` in distinct slots)."""
    costs = {}
    for size in batched.sizes:
        rows = [(row % batched.n_slots, context + row // batched.n_slots, 100 + row) for row in range(size)]
        batched.step(rows)
        _sync()
        start = time.perf_counter()
        for _ in range(repeats):
            batched.step(rows)
        _sync()
        costs[size] = round((time.perf_counter() - start) / repeats * 1000, 3)
    return costs


EXPERT_TILES = (None, (16, 64, 128, 4, 3), (16, 128, 64, 4, 4), (16, 64, 256, 4, 3), (16, 128, 128, 4, 3),
                (32, 64, 128, 4, 3))  # (BLOCK_M, BLOCK_N, BLOCK_K, warps, stages); None: the kernels' own choice


def expert_tiles(batched, rows: int, repeats: int = 20) -> dict[str, dict]:
    """One layer's batched experts (grouped GEMMs over rows x K pairs) per tile config: ms, and the
    bandwidth of reading each chosen expert's weights once."""
    from osslsp.engine import kernels

    fast = batched.fast
    layer = fast.layers[0]
    x = torch.randn(rows, fast.embed.shape[1], generator=torch.Generator().manual_seed(1)).to(fast.dtype).cuda()
    expert_ids, expert_weights = fast._route(x, layer)  # (rows, K)
    experts = expert_ids.unique().numel()
    expert_bytes = (layer.gate_up[0].numel() + layer.down[0].numel()) * x.element_size()
    results = {}
    for tiles in EXPERT_TILES:
        run = lambda: kernels.prefill_experts(x, expert_ids, expert_weights, layer.gate_up, layer.gate_up_bias,  # noqa: E731
                                              layer.down, layer.down_bias, fast.limit, fast.alpha, config=tiles)
        try:
            run()
            _sync()
            start = time.perf_counter()
            for _ in range(repeats):
                run()
            _sync()
        except Exception as error:  # a tile that does not fit the chip: say so, try the next
            results[str(tiles)] = {"error": str(error)[:120]}
            continue
        seconds = (time.perf_counter() - start) / repeats
        results[str(tiles)] = {"ms": round(seconds * 1000, 4), "experts": experts,
                               "tb_per_s": round(experts * expert_bytes / seconds / 1e12, 2)}
    return results


def prefill_cost(batched, tokens: int, repeats: int = 5) -> float:
    ids = [100 + index % 500 for index in range(tokens)]
    batched.prefill(0, ids, 0)
    _sync()
    start = time.perf_counter()
    for _ in range(repeats):
        batched.prefill(0, ids, 0)
    _sync()
    return round((time.perf_counter() - start) / repeats * 1000, 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="random:osslsp/data/gpt-oss-20b")
    parser.add_argument("--max-batch", type=int, default=32)
    parser.add_argument("--max-context", type=int, default=4096)
    parser.add_argument("--context", type=int, default=2048, help="position of the rows in the cost runs")
    parser.add_argument("--device", default="cuda", help="cpu: check this script with --model tiny")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    started = time.perf_counter()
    loaded = load_model(resolve_model(args.model), "float16", args.device, 0.0, "auto", args.max_context)
    batched = make_batched_runner(loaded.model, args.max_context, args.max_batch)
    print(f"loaded and captured in {time.perf_counter() - started:.1f} s: {batched.n_slots} slots, "
          f"sizes {batched.sizes}, GPU memory {torch.cuda.memory_allocated() / 2**30 if torch.cuda.is_available() else 0:.1f} GiB", flush=True)
    print("expert tiles chosen by step size:", batched.expert_tiles, flush=True)
    generator = torch.Generator().manual_seed(0)
    vocab = min(100000, loaded.model.config.vocab_size)
    prompts = [torch.randint(vocab // 2, vocab, (length,), generator=generator).tolist() for length in (2048, 700, 64, 5)]
    results = {"model": args.model, "device": torch.cuda.get_device_name() if args.device == "cuda" else "cpu", "torch": torch.__version__,
               "date": time.strftime("%Y-%m-%d"), "slots": batched.n_slots,
               "expert_tiles_chosen": {size: str(tiles) for size, tiles in batched.expert_tiles.items()}}
    results["agreement"] = agreement(batched, prompts, 32)
    print("agreement:", json.dumps(results["agreement"]), flush=True)
    results["step_ms"] = step_costs(batched, args.context)
    print("step ms by rows:", results["step_ms"], flush=True)
    results["step_tokens_per_second"] = {size: round(size / ms * 1000) for size, ms in results["step_ms"].items()}
    print("tokens/s by rows:", results["step_tokens_per_second"], flush=True)
    if args.device == "cuda":
        results["expert_tiles"] = {rows: expert_tiles(batched, rows) for rows in (16, 32)}
        print("expert tiles:", json.dumps(results["expert_tiles"]), flush=True)
    results["prefill_512_ms"] = prefill_cost(batched, 512)
    results["prefill_2048_ms"] = prefill_cost(batched, 2048)
    print(f"prefill 512: {results['prefill_512_ms']} ms, 2048: {results['prefill_2048_ms']} ms", flush=True)
    if args.json:
        with open(args.json, "w") as out:
            json.dump(results, out, indent=1)


if __name__ == "__main__":
    main()
