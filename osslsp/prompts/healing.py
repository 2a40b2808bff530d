"""Token healing: a prompt that ends inside a token's reach is backed up to a token boundary.

A typist pauses after `return ` or inside `retu`; the prompt then ends on a lone space or on part
of a word, a token the model rarely saw there (NOTES, "Token boundaries": SmolLM2 answers nothing
after `return `). Healing drops the tokens that cover the prompt's trailing word, operator or
whitespace run and lets the model write that text again itself: each of its first tokens must be
consistent with what was dropped (start with what is left of it, or be a prefix of it). Once the
dropped text is written, generation is free; the caller cuts the dropped text off the answer.

Pure: token ids and strings. The engine applies `FirstTokens.allowed` to the logits at its sampling
step. A backend that cannot constrain tokens (a remote OpenAI server) gets the prompt unhealed.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from osslsp.prompts.modeltext import ModelText

# What a pre-tokenizer keeps together at the end of a line: a word or an operator run (each with
# the one space a BPE token carries before it), or a run of whitespace.
_REACH = re.compile(r"(?:[ \t]?\w+|[ \t]?[^\w\s]+|\s+)$")
MAX_BACKUP_TOKENS = 4
_CACHED_TEXTS = 256
# Decoding this token by token must give the same text as decoding it whole, or healing is off
# for that tokenizer (e.g. SentencePiece's metaspace drops a token's leading space alone).
_PROBE = "def total(items):\n    return sum(x.price for x in items)  # ok\n"


@dataclass(frozen=True)
class Healed:
    """A prompt backed up to a token boundary, and the text its answer must begin with."""

    ids: list[int]
    removed: str


class Vocabulary:
    """Every token's text, sorted for prefix search; built once per tokenizer (`vocabulary_for`)."""

    def __init__(self, texts: Sequence[str], special: frozenset[int]):
        self.texts = list(texts)
        ordered = sorted((text, token) for token, text in enumerate(self.texts)
                         if text and token not in special and "\ufffd" not in text)
        self._sorted_texts = [text for text, _ in ordered]
        self._sorted_ids = [token for _, token in ordered]
        self._ids_of: dict[str, list[int]] = {}
        for text, token in ordered:
            self._ids_of.setdefault(text, []).append(token)
        self._consistent: dict[str, tuple[int, ...]] = {}  # the texts healed lately

    def starting_with(self, text: str) -> list[int]:
        """Ids of the tokens whose text starts with `text`."""
        low = bisect.bisect_left(self._sorted_texts, text)
        high = bisect.bisect_left(self._sorted_texts, text + "\U0010ffff")
        return self._sorted_ids[low:high]

    def consistent_with(self, remaining: str) -> tuple[int, ...]:
        """Ids that may come next while `remaining` is still to be written: tokens that start with
        all of it, and tokens that are a proper prefix of it."""
        if remaining not in self._consistent:
            if len(self._consistent) >= _CACHED_TEXTS:  # a long session heals many partial names
                self._consistent.clear()
            prefixes = [token for end in range(1, len(remaining)) for token in self._ids_of.get(remaining[:end], ())]
            self._consistent[remaining] = tuple(self.starting_with(remaining)) + tuple(prefixes)
        return self._consistent[remaining]


@lru_cache(maxsize=4)
def vocabulary_for(text: ModelText) -> Vocabulary | None:
    """The healing vocabulary of a model's tokenizer; None when its tokens do not decode one by one."""
    tokenizer = text.tokenizer
    texts = tokenizer.decode_batch([[token] for token in range(tokenizer.get_vocab_size())],
                                   skip_special_tokens=False)
    probe = text.encode(_PROBE)
    if "".join(texts[token] for token in probe) != text.decode(probe):
        return None
    special = frozenset(token for token in tokenizer.get_added_tokens_decoder())
    return Vocabulary(texts, special)


def heal(ids: list[int], tail: str, vocabulary: Vocabulary) -> Healed | None:
    """The prompt `ids` backed up over the tokens covering the trailing word, operator or whitespace
    of `tail` (the end of the prompt text that may be rewritten: the code up to the cursor).

    None when the prompt ends at a clean boundary already, or when those tokens reach back past
    `tail` (into the prompt's own markup).
    """
    reach = _REACH.search(tail)
    if reach is None:
        return None
    removed, count = "", 0
    while len(removed) < len(reach.group()) and count < min(MAX_BACKUP_TOKENS, len(ids) - 1):
        count += 1
        removed = vocabulary.texts[ids[-count]] + removed
    if not removed or not tail.endswith(removed):
        return None
    return Healed(ids[:-count], removed)


class FirstTokens:
    """The constraint on an answer's first tokens: together they spell `removed`, then anything."""

    def __init__(self, vocabulary: Vocabulary, removed: str):
        self.vocabulary = vocabulary
        self.removed = removed

    def allowed(self, produced: Sequence[int]) -> tuple[int, ...] | None:
        """The ids allowed after `produced`; None once the removed text is written (no constraint)."""
        written = "".join(self.vocabulary.texts[token] for token in produced[:len(self.removed)])
        if len(written) >= len(self.removed):
            return None
        return self.vocabulary.consistent_with(self.removed[len(written):])


def strip_removed(answer: str, removed: str) -> str:
    """The answer without the healed text it starts with (a backend may not have honoured it all)."""
    if answer.startswith(removed):
        return answer[len(removed):]
    return "" if removed.startswith(answer) else answer
