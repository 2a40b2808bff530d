"""Exact token ids of prompt texts from cached ids of their pieces, so a keystroke re-encodes only
what it changed.

A tokenizer splits text at its special tokens first and encodes the parts between them
independently, so a prompt's ids are its parts' ids joined by the specials' ids. Inside a part,
o200k's split pattern (gpt-oss) never lets a pre-token reach over a line start unless the line
there begins with whitespace up to a line break (a blank line) or with a slash (after
punctuation, `[\\r\\n/]*` runs on): every other line start is a clean cut. So a part is cut into
blocks at clean line starts, each block is encoded once and its ids kept, and the part's ids are
its blocks' ids joined. GPT-2's byte-level pattern (SmolLM2, the tiny model) keeps a whitespace
run whole up to the next word, so there only a line break with no whitespace on either side is a
cut (before a top-level line). Other tokenizers are encoded a part at a time, also kept.

Fitting a long text to a budget (the code before the cursor) uses the same blocks: sums over them
from the cursor's side, and the piece left at the stretch's far end encoded on its own.
Whole parts are kept too, so a prompt part that a keystroke did not change costs one look-up.
"""

from __future__ import annotations

import bisect
import json
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from functools import cached_property
from itertools import accumulate

from tokenizers import Tokenizer

# tiktoken's o200k_base split pattern (tiktoken_ext/openai_public.py), gpt-oss's.
O200K_PATTERN = "|".join([
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
    r"""\p{N}{1,3}""",
    r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
    r"""\s*[\r\n]+""",
    r"""\s+(?!\S)""",
    r"""\s+""",
])
# Clean cuts, each just after a line break. Python's \s holds every character the tokenizer's \s
# holds, so these patterns see whitespace wherever the tokenizer might.
# o200k: the next line does not start with whitespace up to a line break, nor with a slash.
O200K_CLEAN_CUT = re.compile(r"\n(?!\s*[\r\n]|/)")
# GPT-2's byte-level pattern: `\s+(?!\S)` keeps a run of whitespace whole up to the next word, so
# the line break must stand alone: no whitespace before it, none at the start of the next line.
GPT2_CLEAN_CUT = re.compile(r"(?<!\s)\n(?=\S)")
GPT2_PRE_TOKENIZER = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
MAX_KEPT_CHARS = 4_000_000  # text whose ids are kept (13 bytes a character: about 50 MB); past this they start over
KEPT_TEXTS = 8  # long texts whose stretches are counted (the code before and after the cursor)


def clean_cut_pattern(tokenizer: Tokenizer) -> re.Pattern | None:
    """Where the tokenizer's pre-tokenizer surely splits a text at a line start, or None when that
    is not known (its parts are then encoded whole)."""
    if tokenizer.pre_tokenizer is None:
        return None
    o200k = {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": O200K_PATTERN}, "behavior": "Isolated", "invert": False},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False},
    ]}
    # The pre-tokenizer's own JSON (its pickled state): the whole tokenizer's takes seconds.
    config = json.loads(tokenizer.pre_tokenizer.__getstate__())
    return O200K_CLEAN_CUT if config == o200k else GPT2_CLEAN_CUT if config == GPT2_PRE_TOKENIZER else None


class Spans:
    """One text's lines, and whether a stretch of it from one of its ends fits a token budget.

    With `blocks` (the text cut at clean line starts) a stretch's count is its whole blocks'
    counts, summed from the end it starts at, plus the piece left over. The blocks are counted
    lazily, nearest first, and only until a sum passes the budget: fitting the code before the
    cursor counts about the budget's worth of it, not the whole cut.
    """

    def __init__(self, text: str, count: Callable[[str], int], from_end: bool, blocks: list[str] | None = None):
        self.text = text
        self.from_end = from_end
        self._count = count
        self._blocks = blocks[::-1] if blocks and from_end else blocks  # nearest first
        self._bounds = list(accumulate((len(block) for block in blocks), initial=0)) if blocks else []
        self._sums = [0]  # tokens of the nearest k blocks, for the k counted so far
        self._counting = threading.Lock()

    @cached_property
    def line_starts(self) -> list[int]:
        """Where each line (as `str.splitlines` cuts them) starts, then the text's length."""
        return list(accumulate((len(line) for line in self.text.splitlines(keepends=True)), initial=0))

    def fits(self, start: int, end: int, budget: int) -> bool:
        """Whether text[start:end], which reaches the text's end (start, if not `from_end`), fits."""
        if not self._blocks:
            return self._count(self.text[start:end]) <= budget
        if self.from_end:
            first = bisect.bisect_left(self._bounds, start)
            whole, rest = len(self._bounds) - 1 - first, self.text[start:self._bounds[first]]
        else:
            last = bisect.bisect_right(self._bounds, end) - 1
            whole, rest = last, self.text[self._bounds[last]:end]
        rest_tokens = self._count(rest)
        with self._counting:  # prompts may be built on two threads at once
            while len(self._sums) <= whole:
                if rest_tokens + self._sums[-1] > budget:
                    return False  # the blocks counted so far are all inside and already too many
                self._sums.append(self._sums[-1] + self._count(self._blocks[len(self._sums) - 1]))
            return rest_tokens + self._sums[whole] <= budget


class TokenCounter:
    """Ids and counts of texts, equal to one `encode` of each text, from kept pieces."""

    def __init__(self, tokenizer: Tokenizer):
        self.tokenizer = tokenizer
        added = tokenizer.get_added_tokens_decoder()
        self._added_ids = {token.content: token_id for token_id, token in added.items()}
        # Added tokens that take whitespace along, or a normalizer, make the split depend on more.
        plain = tokenizer.normalizer is None and not any(
            token.lstrip or token.rstrip or token.single_word for token in added.values())
        # Longest first: at one position the tokenizer takes the longest added token.
        names = sorted(self._added_ids, key=len, reverse=True)
        self._added = re.compile("(" + "|".join(map(re.escape, names)) + ")") if names and plain else None
        self._added_names = names
        self._added_prefix = os.path.commonprefix(names) if names else ""
        self.clean_cut = clean_cut_pattern(tokenizer) if plain else None
        self._kept: dict[str, list[int]] = {}
        self._kept_chars = 0
        self._spans: OrderedDict[tuple[str, bool], Spans] = OrderedDict()
        self._spans_lock = threading.Lock()

    def _encoded(self, piece: str) -> list[int]:
        """The ids of a piece without added tokens, encoded once."""
        ids = self._kept.get(piece)
        if ids is None:
            if self._kept_chars > MAX_KEPT_CHARS:
                self._kept.clear()
                self._kept_chars = 0
            ids = self._kept[piece] = self.tokenizer.encode(piece, add_special_tokens=False).ids
            self._kept_chars += len(piece)
        return ids

    def _blocks(self, part: str) -> list[str]:
        """A part without added tokens cut at its clean line starts."""
        ends = [match.end() for match in self.clean_cut.finditer(part)]
        return [part[start:end] for start, end in zip([0, *ends], [*ends, len(part)]) if start < end]

    def _part_ids(self, part: str) -> list[int]:
        """The ids of a part without added tokens: kept whole, else joined from its blocks'."""
        ids = self._kept.get(part)
        if ids is None:
            if self.clean_cut is None:
                return self._encoded(part)
            ids = [token for block in self._blocks(part) for token in self._encoded(block)]
            self._kept[part] = ids
            self._kept_chars += len(part)
        return ids

    def _has_added(self, text: str) -> bool:
        # Substring tests are far quicker than a search with the added tokens' pattern.
        return self._added_prefix in text and any(name in text for name in self._added_names)

    def _ids(self, text: str) -> list[int]:
        """The ids of a text; may be a kept list, never to be changed."""
        if not text:
            return []
        if self._added is None:
            return self._encoded(text)
        if not self._has_added(text):
            return self._part_ids(text)
        ids: list[int] = []
        for index, part in enumerate(self._added.split(text)):
            if index % 2:  # the split keeps the added tokens at odd places
                ids.append(self._added_ids[part])
            elif part:
                ids.extend(self._part_ids(part))
        return ids

    def encode(self, text: str) -> list[int]:
        """The ids `tokenizer.encode(text, add_special_tokens=False)` gives, specials included."""
        return list(self._ids(text))

    def count(self, text: str) -> int:
        return len(self._ids(text))

    def spans(self, text: str, from_end: bool) -> Spans:
        """Stretches of one text from one end, counted by block (kept for a few texts)."""
        key = (text, from_end)
        with self._spans_lock:  # prompts may be built on two threads at once
            spans = self._spans.get(key)
            if spans is None:
                blocks = self._blocks(text) if self.clean_cut and not self._has_added(text) else None
                spans = self._spans[key] = Spans(text, self.count, from_end, blocks)
                if len(self._spans) > KEPT_TEXTS:
                    self._spans.popitem(last=False)
            else:
                self._spans.move_to_end(key)
            return spans
