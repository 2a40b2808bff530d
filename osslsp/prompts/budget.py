"""Fitting text to a token budget: keep the lines nearest the cursor (or, for any text that grows
with a count, the most of it that fits: `most_that_fits`).

The text is first cut to a generous character bound (no token is longer than
`MAX_CHARS_PER_TOKEN` characters in practice), then the number of lines is found by binary search.
With a `TokenCounter` each candidate is counted by arithmetic over the text's blocks, encoding only
those nearest the cursor up to the budget; with a plain counting function, by encoding the
candidate (about log2(lines) encodes).
"""

from __future__ import annotations

from collections.abc import Callable

from osslsp.prompts.tokencount import Spans, TokenCounter

MAX_CHARS_PER_TOKEN = 16


def most_that_fits(most: int, fits: Callable[[int], bool]) -> int:
    """The largest n from 0 to `most` for which `fits(n)`, by binary search: `fits` holds up to
    some n and not past it, and 0 is taken to fit."""
    low, high = 0, most  # invariant: fits(low)
    while low < high:
        middle = (low + high + 1) // 2
        if fits(middle):
            low = middle
        else:
            high = middle - 1
    return low


def _spans(text: str, count: Callable[[str], int] | TokenCounter, from_end: bool) -> Spans:
    """A counter's kept spans of the text, or spans that encode each candidate with `count`."""
    if isinstance(count, TokenCounter):
        return count.spans(text, from_end)
    return Spans(text, count, from_end)


def _fit(text: str, budget: int, count: Callable[[str], int] | TokenCounter, from_end: bool) -> str:
    """The most whole lines from one end of `text` that fit the budget."""
    spans = _spans(text, count, from_end)
    starts = spans.line_starts
    lines = len(starts) - 1

    def take(k: int) -> tuple[int, int]:
        return (starts[lines - k], len(text)) if from_end else (0, starts[k])

    start, end = take(most_that_fits(lines, lambda k: spans.fits(*take(k), budget)))
    return text[start:end]


def fit_tail(text: str, budget: int, count: Callable[[str], int] | TokenCounter) -> str:
    """The longest run of whole last lines of `text` within `budget` tokens."""
    if budget <= 0 or not text:
        return ""
    bound = budget * MAX_CHARS_PER_TOKEN
    if len(text) > bound:
        text = text[-bound:].partition("\n")[2]  # drop the cut, partial first line
    return _fit(text, budget, count, from_end=True)


def fit_head(text: str, budget: int, count: Callable[[str], int] | TokenCounter) -> str:
    """The longest run of whole first lines of `text` within `budget` tokens."""
    if budget <= 0 or not text:
        return ""
    bound = budget * MAX_CHARS_PER_TOKEN
    if len(text) > bound:
        text = text[:bound].rpartition("\n")[0] + "\n"  # drop the cut, partial last line
    return _fit(text, budget, count, from_end=False)
