"""Fitting text to a token budget by search: keep the lines nearest the cursor.

Counting tokens is the expensive part, so the text is first cut to a generous character bound
(no token is longer than `MAX_CHARS_PER_TOKEN` characters in practice), then the number of lines
is found by binary search: about log2(lines) tokenizations of at most the budget's size.
"""

from __future__ import annotations

from collections.abc import Callable

MAX_CHARS_PER_TOKEN = 16


def _fit(lines: list[str], budget: int, count: Callable[[str], int], from_end: bool) -> str:
    def take(k: int) -> str:
        return "".join(lines[len(lines) - k:] if from_end else lines[:k])

    low, high = 0, len(lines)  # invariant: take(low) fits
    while low < high:
        middle = (low + high + 1) // 2
        if count(take(middle)) <= budget:
            low = middle
        else:
            high = middle - 1
    return take(low)


def fit_tail(text: str, budget: int, count: Callable[[str], int]) -> str:
    """The longest run of whole last lines of `text` within `budget` tokens."""
    if budget <= 0 or not text:
        return ""
    bound = budget * MAX_CHARS_PER_TOKEN
    if len(text) > bound:
        text = text[-bound:].partition("\n")[2]  # drop the cut, partial first line
    return _fit(text.splitlines(keepends=True), budget, count, from_end=True)


def fit_head(text: str, budget: int, count: Callable[[str], int]) -> str:
    """The longest run of whole first lines of `text` within `budget` tokens."""
    if budget <= 0 or not text:
        return ""
    bound = budget * MAX_CHARS_PER_TOKEN
    if len(text) > bound:
        text = text[:bound].rpartition("\n")[0] + "\n"  # drop the cut, partial last line
    return _fit(text.splitlines(keepends=True), budget, count, from_end=False)
