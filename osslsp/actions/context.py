"""What the actions' prompts hold besides the code itself: workspace definitions and scopes.

The definitions come from the workspace index by name: the names a stub's signature and docstring
mention, or the names a selection uses. The text of each is what completions show (signature,
documentation, a class's members), from the index's own `Retriever`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path

from osslsp.index import Snippet, WorkspaceIndex
from osslsp.index.retrieval import Retriever
from osslsp.languages import language_named, parser

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]+")
MAX_DEFINITIONS_PER_NAME = 2


def names_in(text: str, language: str) -> list[str]:
    """The identifiers a piece of code or documentation mentions, first mention first, no keywords."""
    registered = language_named(language)
    keywords = registered.index.keywords if registered is not None else frozenset()
    return list(dict.fromkeys(name for name in _IDENTIFIER.findall(text) if name not in keywords))


def named_definitions(index: WorkspaceIndex | None, names: Sequence[str], path: Path,
                      own_lines: tuple[int, int], budget_tokens: int,
                      count: Callable[[str], int]) -> list[Snippet]:
    """Definitions of `names` in the workspace, in the order of the names, within the budget.

    Definitions inside `own_lines` (1-based, inclusive) of `path` are the code itself: left out.
    """
    if index is None or budget_tokens <= 0:
        return []
    relative = index.relative(path)
    retriever = Retriever(index.store, index.resolver, index.related_cache)
    chosen: list[Snippet] = []
    spent = 0
    for name in names:
        definitions = [definition for definition in index.definitions_named(name)
                       if not (definition.path == relative and definition.line <= own_lines[1]
                               and definition.end_line >= own_lines[0])]
        for definition in definitions[:MAX_DEFINITIONS_PER_NAME]:
            text = retriever.snippet_text(definition)
            cost = count(text)
            if spent + cost > budget_tokens:
                continue  # a smaller definition of a later name may still fit
            spent += cost
            chosen.append(Snippet(definition.path, definition.line, text, f"definition of {name}"))
    return chosen


def snippets_block(snippets: Sequence[Snippet], fence: str) -> str:
    """Snippets as one fenced block, each labelled with where it comes from."""
    if not snippets:
        return ""
    parts = [f"# {snippet.path}:{snippet.line} ({snippet.reason})\n{snippet.text.rstrip()}" for snippet in snippets]
    return f"{fence}\n" + "\n\n".join(parts) + "\n```"


def enclosing_scope(text: str, language: str, start: int, end: int) -> tuple[int, int] | None:
    """The innermost function or class around text[start:end] (string offsets), larger than it."""
    registered = language_named(language)
    rules = registered.stubs if registered is not None else None
    if rules is None:
        return None
    data = text.encode("utf-8", "surrogatepass")
    low = len(text[:start].encode("utf-8", "surrogatepass"))
    high = len(text[:end].encode("utf-8", "surrogatepass"))
    node = parser(language).parse(data).root_node.named_descendant_for_byte_range(low, max(low, high - 1))
    scopes = rules.functions | rules.classes
    while node is not None and not (node.type in scopes and (node.start_byte < low or node.end_byte > high)):
        node = node.parent
    if node is None:
        return None
    return (len(data[:node.start_byte].decode("utf-8", "surrogatepass")),
            len(data[:node.end_byte].decode("utf-8", "surrogatepass")))


def fence_for(language: str) -> str:
    return "```" + language
