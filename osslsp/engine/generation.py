"""One generation as named steps: prefill, sample, decode one, stop."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import torch

from osslsp.engine.runner import NON_FINITE, GreedyRunner, Runner
from osslsp.sampling import Sampling


class NonFiniteLogits(RuntimeError):
    """The model produced inf/NaN logits, typically FP16 overflow."""

    def __init__(self) -> None:
        super().__init__(
            "the model produced non-finite logits (FP16 overflow?). "
            "Try --dtype bfloat16 (setting osslsp.dtype = \"bfloat16\")."
        )


# The ids allowed after the tokens produced so far, or None when any id may come (token healing).
Constraint = Callable[[Sequence[int]], Sequence[int] | None]


def constrain(logits: torch.Tensor, allowed: Sequence[int] | None) -> torch.Tensor:
    """Logits (vocab,) with every id outside `allowed` made impossible (None: unchanged)."""
    if allowed is None:
        return logits
    if not allowed:
        raise ValueError("the answer's first tokens are constrained to an empty set of tokens")
    kept = torch.full_like(logits, float("-inf"))
    index = torch.tensor(allowed, device=logits.device)
    index = index[index < logits.shape[0]]  # a tokenizer may name ids past the model's vocabulary
    return kept.index_copy_(0, index, logits.index_select(0, index))


def sample(logits: torch.Tensor, sampling: Sampling, generator: torch.Generator | None,
           allowed: Sequence[int] | None = None) -> int:
    """The next token from logits (vocab,), one of `allowed` when given."""
    if not torch.isfinite(logits).all():
        raise NonFiniteLogits()
    logits = constrain(logits, allowed)
    if sampling.temperature <= 0:
        return int(logits.argmax())
    probs = torch.softmax(logits / sampling.temperature, dim=-1)  # (vocab,)
    if sampling.top_p < 1.0:
        sorted_probs, order = probs.sort(descending=True)
        outside = sorted_probs.cumsum(-1) - sorted_probs > sampling.top_p
        sorted_probs[outside] = 0.0
        probs = torch.zeros_like(probs).scatter_(0, order, sorted_probs)
    return int(torch.multinomial(probs, 1, generator=generator))


def decode_next(runner: Runner, prompt_ids: list[int], produced: list[int]) -> torch.Tensor:
    """Logits (vocab,) after the newest token: one decode step, or, when another request used the
    runner in between (an interactive one served while this one paused), a prefill of the whole
    sequence so far (the cache keeps what it shares with it)."""
    cached = runner.cached_ids
    if len(cached) == len(prompt_ids) + len(produced) - 1 and cached == prompt_ids + produced[:-1]:
        return runner.decode_one(produced[-1])
    return runner.prefill(prompt_ids + produced)


def repeats_itself(ids: Sequence[int], min_repeats: int = 3, min_span: int = 48, max_period: int = 64) -> bool:
    """The ids end with one run of tokens repeated back to back: at least `min_repeats` times and
    `min_span` tokens in all (a model looping over a sentence until its budget runs out)."""
    for period in range(1, max_period + 1):
        span = max(period * min_repeats, min_span)
        if span > len(ids):
            break
        tail = ids[-span:]
        if all(tail[index] == tail[index - period] for index in range(period, span)):
            return True
    return False


def generate(
    runner: Runner,
    prompt_ids: list[int],
    sampling: Sampling,
    stop_ids: frozenset[int],
    should_stop: Callable[[], bool],
    constraint: Constraint | None = None,
) -> Iterator[int]:
    """Yield new token ids until a stop id, `max_new_tokens`, or `should_stop()` (checked every step).

    `constraint` limits the ids sampled at each step (any runner: it applies to the logits here,
    never inside a runner's kernels).
    """
    logits = runner.prefill(prompt_ids)  # (vocab,)
    generator = None
    if sampling.temperature > 0:
        generator = torch.Generator(logits.device).manual_seed(sampling.seed)
    produced: list[int] = []
    while len(produced) < sampling.max_new_tokens:
        if should_stop():
            return
        token = sample(logits, sampling, generator, constraint(produced) if constraint else None)
        if token in stop_ids:
            return
        produced.append(token)
        yield token
        if should_stop() or len(produced) >= sampling.max_new_tokens:  # no step past the last token
            return
        if sampling.temperature <= 0 and isinstance(runner, GreedyRunner) and not (
                constraint and constraint(produced) is not None):
            # The runner picks the next tokens itself; should a constraint apply again, the token
            # picked without it is dropped and that step's logits are asked for below.
            for token in runner.greedy_tokens(produced[-1], sampling.max_new_tokens - len(produced)):
                if token == NON_FINITE:
                    raise NonFiniteLogits()
                if token in stop_ids:
                    return
                if constraint and constraint(produced) is not None:
                    break
                produced.append(token)
                yield token
                if should_stop() or len(produced) >= sampling.max_new_tokens:
                    return
        logits = decode_next(runner, prompt_ids, produced)
