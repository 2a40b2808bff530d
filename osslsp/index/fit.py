"""Fitting: which of the ranked candidates a prompt's token budget holds."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from osslsp.index.extract import Definition


@dataclass(frozen=True)
class Snippet:
    """A piece of context for a prompt, labelled with where it comes from."""

    path: str  # workspace-relative posix path
    line: int  # 1-based
    text: str
    reason: str  # "definition of render", "related", ...


@dataclass
class Fitting:
    """Snippets chosen so far for one prompt and the budget they spent."""

    path: str  # the file being edited
    own_region: tuple[int, int]  # its lines (1-based, inclusive) the prompt already holds
    budget_tokens: int
    spent: int = 0
    chosen: list[Snippet] = field(default_factory=list)
    seen: set[tuple[str, int]] = field(default_factory=set)

    def add(self, candidates: Iterable[tuple[Definition, str]],
            text_of: Callable[[Definition, str], str], count_tokens: Callable[[str], int]) -> None:
        """Add the candidates (definition, reason), in the order given, that still fit the
        budget, without repeats and without what the prompt already holds around the cursor;
        `text_of` writes a candidate's text."""
        for definition, reason in candidates:
            key = (definition.path, definition.line)
            if key in self.seen:
                continue
            self.seen.add(key)
            if definition.path == self.path and definition.line <= self.own_region[1] and \
                    definition.end_line >= self.own_region[0]:
                continue
            text = text_of(definition, reason)
            cost = count_tokens(text)
            if self.spent + cost > self.budget_tokens:
                continue
            self.spent += cost
            self.chosen.append(Snippet(definition.path, definition.line, text, reason))
