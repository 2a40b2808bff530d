"""`osslsp bench`: the stock Transformers recipe against our runner, on the same weights, in one process.

The stock recipe runs first (the fast runner rewrites the expert layout in place when it starts):
`generate()` with `experts_implementation="grouped_mm"`, the best stock recipe that needs no
compile, and the seed's default (eager experts loop) for TTFT and decode only. Then our runner
(`gpt_oss_fast.make_runner`: the fast one on a CUDA gpt-oss model, the generic one elsewhere).
`--experts fp16,mxfp4` loads a released-layout MXFP4 checkpoint once per format, one after the
other: stock runs on the first (FP16) load, and every "ours" column is checked against its forward.
Prompts are random token ids; every figure is a median over `--repeats` runs unless it says p95.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from osslsp.engine.bench_options import add_arguments
from osslsp.engine.generation import generate
from osslsp.engine.runner import Runner
from osslsp.sampling import Sampling

KEYSTROKE_EDIT = 10  # tokens changed at the end of the prompt by "a keystroke after a small edit"
CHECK_TOKENS = 32  # greedy tokens compared between stock and ours


@dataclass
class Column:
    """One recipe's figures (None: not measured or not applicable; str: why it failed)."""

    name: str
    figures: dict[str, float | str | None] = field(default_factory=dict)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(device: torch.device, action: Callable[[], object]) -> float:
    """Wall seconds of `action`, all device work included (the user waits for the device)."""
    _sync(device)
    started = time.perf_counter()
    action()
    _sync(device)
    return time.perf_counter() - started


def _median_ms(device: torch.device, action: Callable[[], object], repeats: int) -> float:
    return 1000 * statistics.median(_timed(device, action) for _ in range(repeats))


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1)]


def _peak_gib(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None


def _reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def _guarded(column: Column, key: str, measure: Callable[[], float | None]) -> None:
    """Record a figure; out of memory is a result (reported), not a crash."""
    try:
        column.figures[key] = measure()
    except torch.OutOfMemoryError:
        column.figures[key] = "OOM"
        torch.cuda.empty_cache()


# -- the stock recipe: generate() -----------------------------------------------------------------


def _stock_generate(model, ids: list[int], new_tokens: int) -> torch.Tensor:
    input_ids = torch.tensor([ids], device=model.get_input_embeddings().weight.device)
    return model.generate(
        input_ids, attention_mask=torch.ones_like(input_ids), max_new_tokens=new_tokens,
        min_new_tokens=new_tokens, do_sample=False, pad_token_id=0,
    )[0, len(ids):]


def _stock_decode_rate(model, device, prompt: list[int], tokens: int, repeats: int) -> float | None:
    """Decode steps per second: medians of generating one token and `tokens` more on the same
    prompt, measured back to back, so that noise cannot make the difference negative."""
    one, more = (_median_ms(device, lambda n=n: _stock_generate(model, prompt, n), repeats)
                 for n in (1, tokens + 1))
    return tokens / ((more - one) / 1000) if more > one else None


def measure_stock(model, name: str, prompts: dict[int, list[int]], keystroke: list[int], new_tokens: int,
                  repeats: int, full: bool) -> Column:
    """TTFT is generate() of one token; decode rate from the time of new_tokens beyond the first."""
    device = model.get_input_embeddings().weight.device
    column = Column(name)
    _reset_peak(device)
    _stock_generate(model, prompts[min(prompts)][:64], 2)  # warm-up
    for length, ids in prompts.items():
        if full or length == 2048 or len(prompts) == 1:
            _guarded(column, f"ttft_{length}", lambda ids=ids: _median_ms(
                device, lambda: _stock_generate(model, ids, 1), repeats))
    prompt = prompts[2048] if 2048 in prompts else prompts[max(prompts)]
    if full:
        _guarded(column, "keystroke", lambda: _median_ms(device, lambda: _stock_generate(model, keystroke, 1), repeats))
        times = []

        def completions() -> float:
            times.extend(_timed(device, lambda: _stock_generate(model, prompt, new_tokens)) for _ in range(repeats))
            return 1000 * _percentile(times, 0.5)

        _guarded(column, "completion_p50", completions)
        column.figures["completion_p95"] = 1000 * _percentile(times, 0.95) if times else None
    _guarded(column, "decode_tok_s", lambda: _stock_decode_rate(
        model, device, prompt, new_tokens - 1 if full else 8, repeats))
    column.figures["peak_gib"] = _peak_gib(device)
    return column


# -- our runner -----------------------------------------------------------------------------------


def _first_token(runner: Runner, ids: list[int]) -> int:
    return int(runner.prefill(ids).argmax())


def _cold_first_token(runner: Runner, ids: list[int]) -> int:
    runner.cached_ids = []  # forget the cache: the whole prompt is prefilled
    return _first_token(runner, ids)


def _complete(runner: Runner, ids: list[int], new_tokens: int) -> list[int]:
    runner.cached_ids = []
    return list(generate(runner, ids, Sampling(max_new_tokens=new_tokens), frozenset(), lambda: False))


def measure_ours(runner: Runner, device: torch.device, prompts: dict[int, list[int]], keystroke: list[int],
                 new_tokens: int, repeats: int, name: str = "ours") -> Column:
    column = Column(name)
    for length, ids in prompts.items():
        _guarded(column, f"ttft_{length}", lambda ids=ids: _median_ms(
            device, lambda: _cold_first_token(runner, ids), repeats))
    prompt = prompts[2048] if 2048 in prompts else prompts[max(prompts)]
    edits = [keystroke, keystroke[:-1] + [prompt[-1]]]
    _first_token(runner, prompt)
    keystrokes = []
    for index in range(repeats):  # alternate two edits: each reuses all but the last KEYSTROKE_EDIT tokens
        keystrokes.append(_timed(device, lambda index=index: _first_token(runner, edits[index % 2])))
    column.figures["keystroke"] = 1000 * statistics.median(keystrokes)
    times = [_timed(device, lambda: _complete(runner, prompt, new_tokens)) for _ in range(repeats)]
    column.figures["completion_p50"] = 1000 * _percentile(times, 0.5)
    column.figures["completion_p95"] = 1000 * _percentile(times, 0.95)

    def decode_rate() -> float:
        """Tokens a second after the first, as generate() yields them to the editor."""
        runner.cached_ids = []
        tokens = generate(runner, prompt, Sampling(max_new_tokens=2 * new_tokens + 1), frozenset(), lambda: False)
        next(tokens)  # the prompt's prefill and the first token
        _sync(device)
        started = time.perf_counter()
        count = sum(1 for _ in tokens)
        _sync(device)
        return count / (time.perf_counter() - started)

    column.figures["decode_tok_s"] = statistics.median(decode_rate() for _ in range(repeats))
    column.figures["peak_gib"] = _peak_gib(device)
    if device.type == "cuda":
        column.figures["reserved_gib"] = torch.cuda.max_memory_reserved(device) / 2**30
    return column


# -- correctness: ours against the model's own forward --------------------------------------------


def reference_outputs(model, prompt: list[int]) -> tuple[torch.Tensor, list[int], torch.Tensor]:
    """Last-position logits (V,) of the model's forward, its greedy continuation (N tokens), and the
    logits (N, V) it gives each of them with the prompt and the tokens before it as input."""
    device = model.get_input_embeddings().weight.device
    with torch.inference_mode():
        logits = model(input_ids=torch.tensor([prompt], device=device)).logits[0, -1].float()
        tokens = _stock_generate(model, prompt, CHECK_TOKENS).tolist()
        forced = torch.tensor([prompt + tokens[:-1]], device=device)
        stepped = model(input_ids=forced, logits_to_keep=len(tokens)).logits[0].float()
    return logits, tokens, stepped


def compare(runner: Runner, prompt: list[int], logits: torch.Tensor, tokens: list[int],
            stepped: torch.Tensor) -> dict[str, object]:
    """Ours against reference_outputs: the prompt's logits; the greedy continuation, as the tokens
    agreeing before the first that differs; and every step fed the reference's tokens (so that one
    near-tie, where a rounding flips the argmax, does not end the comparison): the median and the
    largest relative difference of a step's logits, the step of the largest, and the steps whose
    argmax agrees."""
    runner.cached_ids = []
    ours = runner.prefill(prompt).reshape(-1).to(logits.device)
    steps = [ours.float()] + [runner.decode_one(token).reshape(-1).float() for token in tokens[:-1]]
    ours_stepped = torch.stack(steps).to(logits.device)  # (N, V)
    continuation = _complete(runner, prompt, CHECK_TOKENS)
    agree = next((i for i, (a, b) in enumerate(zip(continuation, tokens)) if a != b), min(len(tokens), len(continuation)))
    stepped = stepped.to(logits.device)
    step_diffs = (ours_stepped - stepped).norm(dim=-1) / stepped.norm(dim=-1)  # (N,)
    first_apart = {}  # what each side had at the first token the greedy continuations differ on
    if agree < min(len(tokens), len(continuation)):
        reference_top, ours_top = stepped[agree].topk(2), ours_stepped[agree].topk(2)
        first_apart = {
            "apart_reference_generated": tokens[agree],
            "apart_reference_forward_argmax": int(reference_top.indices[0]),
            "apart_reference_forward_top2_gap": float(reference_top.values[0] - reference_top.values[1]),
            "apart_ours_streamed": continuation[agree],
            "apart_ours_step_argmax": int(ours_top.indices[0]),
            "apart_ours_step_top2_gap": float(ours_top.values[0] - ours_top.values[1]),
        }
    return {
        "logits_max_abs_diff": float((ours - logits).abs().max()),
        "logits_rel_diff": float((ours - logits).norm() / logits.norm()),
        "same_argmax": bool(ours.argmax() == logits.argmax()),
        "greedy_tokens_agreeing": agree,
        "greedy_tokens_compared": len(tokens),
        "steps_logits_rel_diff_median": float(step_diffs.median()),
        "steps_logits_rel_diff_max": float(step_diffs.max()),
        "steps_worst": int(step_diffs.argmax()),
        "steps_same_argmax": int((ours_stepped.argmax(-1) == stepped.argmax(-1)).sum()),
        "reference_generated_as_its_forward": int(sum(int(t) == token for t, token in zip(stepped.argmax(-1), tokens))),
        **first_apart,
    }


# -- the table ------------------------------------------------------------------------------------

ROWS = [  # key, label, unit, higher is better
    ("load_s", "load time", "s", False),
    ("ready_s", "ready time (after load)", "s", False),
    ("keystroke", f"keystroke TTFT (2k, last {KEYSTROKE_EDIT} changed)", "ms", False),
    ("decode_tok_s", "decode", "tok/s", True),
    ("completion_p50", "completion p50 (2k + new tokens)", "ms", False),
    ("completion_p95", "completion p95", "ms", False),
    ("peak_gib", "peak GPU memory", "GiB", False),
    ("reserved_gib", "peak GPU memory reserved", "GiB", False),
]


def _cell(value: float | str | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def _ratio(key: str, higher_better: bool, base: Column, other: Column) -> str:
    """How many times better `other` is than `base` (a plain ratio for memory)."""
    a, b = base.figures.get(key), other.figures.get(key)
    if not (isinstance(a, float) and isinstance(b, float) and a > 0 and b > 0):
        return "-"
    if key.endswith("_gib"):
        return f"{b / a:.2f}"
    return f"{(b / a if higher_better else a / b):.1f}x"


def render_table(columns: list[Column], contexts: list[int]) -> str:
    """Rows of figures, a column per recipe, then each of ours against stock and, with two of
    ours (FP16 and MXFP4 experts), the last against the first."""
    stock = next((c for c in columns if c.name == "stock"), None)
    ours = [c for c in columns if c.name.startswith("ours")]
    pairs = [(stock, c) for c in ours if stock] + ([(ours[0], ours[-1])] if len(ours) > 1 else [])
    header = ["", *(c.name for c in columns), *(f"{b.name} vs {a.name}" for a, b in pairs)]
    lines = [header]
    ttft_rows = [(f"ttft_{c}", f"cold TTFT, {c} tokens", "ms", False) for c in contexts]
    for key, label, unit, higher_better in ROWS[:2] + ttft_rows + ROWS[2:]:
        row = [f"{label} ({unit})", *(_cell(c.figures.get(key)) for c in columns)]
        lines.append(row + [_ratio(key, higher_better, a, b) for a, b in pairs])
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in
                               enumerate(zip(line, widths))) for line in lines)


def _prompts(contexts: list[int], vocab: int, seed: int = 0) -> dict[int, list[int]]:
    generator = torch.Generator().manual_seed(seed)
    low, high = (100, 199_000) if vocab > 199_000 else (vocab // 4, vocab)  # clear of special tokens
    longest = torch.randint(low, high, (max(contexts),), generator=generator).tolist()
    return {length: longest[:length] for length in contexts}


def _progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def _free(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def bench_main(args: argparse.Namespace) -> int:
    from osslsp.engine.gpt_oss_fast import make_runner, set_experts_implementation
    from osslsp.engine.loading import EXPERTS, ModelLoadError, load_model
    from osslsp.models import ModelNotFound, resolve_model

    formats = [name.strip() for name in (getattr(args, "experts", None) or "auto").split(",") if name.strip()]
    if not formats or any(name not in EXPERTS for name in formats):
        print(f"osslsp bench: --experts takes a comma-separated list of {', '.join(EXPERTS)}", file=sys.stderr)
        return 2
    contexts = sorted({int(c) for c in (args.contexts or "").split(",") if c.strip()})
    columns: list[Column] = []
    checks: dict[str, dict[str, object]] = {}
    reference = None
    environment: dict[str, object] = {}
    for number, experts in enumerate(formats):
        try:
            source = resolve_model(args.model)
            device = torch.device("cuda" if args.device != "cpu" and torch.cuda.is_available() else "cpu")
            _reset_peak(device)
            loaded = load_model(source, args.dtype, args.device, getattr(args, "max_gpu_memory", 0.0) or 0.0,
                                experts=experts, max_context=max(contexts or [8192]) + args.new_tokens * 2 + 64)
        except (ModelLoadError, ModelNotFound) as error:
            print(f"osslsp bench: {error}", file=sys.stderr)
            return 1
        model, device = loaded.model, loaded.device
        if not contexts:
            contexts = [512, 2048, 8192] if device.type == "cuda" else [512, 2048]
        held = loaded.experts.format if loaded.experts else "fp16"
        _progress(f"loaded {args.model} on {device} in {loaded.load_seconds:.1f} s; experts "
                  f"{loaded.experts.describe() if loaded.experts else '-'}")
        prompts = _prompts(contexts, model.config.vocab_size)
        middle = prompts[2048] if 2048 in prompts else prompts[max(contexts)]
        keystroke = middle[:-KEYSTROKE_EDIT] + _prompts([KEYSTROKE_EDIT], model.config.vocab_size, seed=1)[KEYSTROKE_EDIT]
        if number == 0 and held == "fp16":  # the model's own forward runs only with FP16 experts
            with torch.inference_mode():
                if not getattr(args, "no_seed_recipe", False):
                    set_experts_implementation(model, "eager")
                    _progress("seed recipe (eager experts)")
                    columns.append(measure_stock(model, "seed", {len(middle): middle},
                                                 keystroke, args.new_tokens, 1, full=False))
                set_experts_implementation(model, "grouped_mm")
                _progress("stock recipe (grouped_mm)")
                columns.append(measure_stock(model, "stock", prompts, keystroke, args.new_tokens, args.repeats,
                                             full=True))
                logits, tokens, stepped = reference_outputs(model, middle)
                reference = (logits.cpu(), tokens, stepped.cpu())
            for column in columns:
                column.figures["load_s"] = loaded.load_seconds
                column.figures["ready_s"] = 0.0
            _progress(f"stock: {columns[-1].figures}")
        _reset_peak(device)
        started = time.perf_counter()
        runner = make_runner(model, max_context=max(contexts) + args.new_tokens * 2 + 64)
        _sync(device)
        ready_seconds = time.perf_counter() - started  # weight layout, cache, kernel compiles, CUDA graphs
        _progress(f"{type(runner).__name__} ready in {ready_seconds:.1f} s")
        name = "ours" if len(formats) == 1 else f"ours {held}"
        ours = measure_ours(runner, device, prompts, keystroke, args.new_tokens, args.repeats, name)
        ours.figures["load_s"] = loaded.load_seconds
        ours.figures["ready_s"] = ready_seconds
        columns.append(ours)
        if reference is not None:
            checks[name] = compare(runner, middle, reference[0].to(device), reference[1], reference[2])
        _progress(f"{name}: {ours.figures}")
        environment = {
            "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
            "model": args.model, "dtype": str(loaded.dtype).removeprefix("torch."),
            "runner": type(runner).__name__, "torch": torch.__version__,
            "transformers": __import__("transformers").__version__, "new_tokens": args.new_tokens,
            "repeats": args.repeats, "max_gpu_memory_gib": getattr(args, "max_gpu_memory", 0.0) or 0.0,
        }
        del runner, model, loaded
        _free(device)
    if args.json:
        print(json.dumps({"environment": environment, "columns": {c.name: c.figures for c in columns},
                          "check": checks}, indent=2))
    else:
        print(" ".join(f"{k}={v}" for k, v in environment.items()))
        print(render_table(columns, contexts))
        for name, check in checks.items():
            print(f"check of {name} against the model's forward (FP16 experts):",
                  " ".join(f"{k}={v}" for k, v in check.items()))
        if not checks:
            print("no check: this run had no model with FP16 experts to compare with")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="osslsp bench", description=__doc__)
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--dtype", default="float16")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--max-gpu-memory", type=float, default=0.0)
    parser.add_argument("--experts", default="auto", help="comma-separated: auto, fp16, mxfp4")
    parser.add_argument("--json", action="store_true")
    add_arguments(parser)
    return bench_main(parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())
