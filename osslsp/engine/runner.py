"""Runners: a model plus the KV cache it owns, advanced one prefill or one token at a time.

A runner remembers which token ids its cache holds. `prefill` keeps the longest shared prefix of
the cached ids and the new prompt, cuts the cache back to it, and runs only the rest: a keystroke
after a small edit then costs a few tokens of prefill, not the whole prompt.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Protocol, runtime_checkable

import torch
from transformers import DynamicCache, PreTrainedModel


class Runner(Protocol):
    """What generation needs from a model: prefill a prompt, then decode one token at a time."""

    cached_ids: list[int]

    def prefill(self, ids: list[int]) -> torch.Tensor:
        """Make the cache hold `ids` (reusing its longest shared prefix); logits (vocab,) of the last."""
        ...

    def decode_one(self, token_id: int) -> torch.Tensor:
        """Append one token to the cache; logits (vocab,) for the next position."""
        ...


NON_FINITE = -1  # a greedy pick from logits that are not all finite (FP16 overflow)


@runtime_checkable
class GreedyRunner(Runner, Protocol):
    """A runner that also continues greedily on its own, picking each token where its logits are."""

    def greedy_tokens(self, token_id: int, most: int) -> Iterator[int]:
        """Append token_id to the cache as decode_one does, then yield the greedy token after it, and
        after that one, and so on (each appended in turn before the next is yielded); NON_FINITE
        for a step whose logits are not all finite, after which nothing more comes. The stream ends
        after `most` tokens (no step is computed past them), when the context is full, or when a
        prefill or decode of this runner ran in between."""
        ...


def greedy_pick(logits: torch.Tensor) -> int:
    """The argmax of logits (vocab,), or NON_FINITE when any of them is inf or NaN."""
    return int(logits.argmax()) if bool(torch.isfinite(logits).all()) else NON_FINITE


def shared_prefix_length(cached: list[int], ids: list[int]) -> int:
    """How many leading ids the cache can keep for a prompt `ids` (at least one id is run)."""
    limit = min(len(cached), len(ids) - 1)
    keep = 0
    while keep < limit and cached[keep] == ids[keep]:
        keep += 1
    return keep


class TransformersRunner:
    """Any Transformers causal LM, through its own forward and a full-length DynamicCache.

    The cache is built without the model's config on purpose: with the config, sliding-window
    layers keep only their last window of positions and the cache cannot be cut back to a
    shared prefix. Attention masks still apply the window, so results are unchanged.
    """

    def __init__(self, model: PreTrainedModel):
        self.model = model
        # Transformers renamed `past_key_values` to `cache` in 5.2x; older 5.x knows only the old name.
        self.cache_keyword = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
        self.device = model.get_input_embeddings().weight.device
        self.cache = DynamicCache()
        self.cached_ids: list[int] = []

    @torch.inference_mode()
    def prefill(self, ids: list[int]) -> torch.Tensor:
        keep = shared_prefix_length(self.cached_ids, ids)
        if keep == 0:
            self.cache = DynamicCache()
        elif keep < len(self.cached_ids):
            self.cache.crop(keep - len(self.cached_ids))
        self.cached_ids = self.cached_ids[:keep]
        return self._forward(ids[keep:])

    @torch.inference_mode()
    def decode_one(self, token_id: int) -> torch.Tensor:
        return self._forward([token_id])

    def _forward(self, new_ids: list[int]) -> torch.Tensor:
        start = len(self.cached_ids)
        input_ids = torch.tensor([new_ids], device=self.device)  # (1, n)
        positions = torch.arange(start, start + len(new_ids), device=self.device)  # (n,)
        try:
            output = self.model(
                input_ids=input_ids,
                **{self.cache_keyword: self.cache},
                position_ids=positions.unsqueeze(0),  # (1, n)
                use_cache=True,
                logits_to_keep=1,  # only the last position's logits: (1, 1, vocab)
            )
        except BaseException:
            # A failed forward may have written part of its keys: trust nothing.
            self.cache = DynamicCache()
            self.cached_ids = []
            raise
        self.cached_ids.extend(new_ids)
        return output.logits[0, -1].float()  # (vocab,)
