"""What the code at the cursor uses: the names around it, read lexically (the code being typed
rarely parses), most relevant first."""

from __future__ import annotations

import re
from dataclasses import dataclass

from osslsp.languages import language_named

USAGE_WINDOW_LINES = 8  # lines above the cursor whose names are looked up
_CHAIN_BEFORE = re.compile(r"((?:[A-Za-z_]\w*\s*\.\s*)*[A-Za-z_]\w*)\s*(?:<[^<>()]*>)?\s*$")
_PARTIAL_AT_CURSOR = re.compile(r"((?:[A-Za-z_]\w*\.)*)([A-Za-z_]\w*)?$")
_QUALIFIED_NAME = re.compile(r"(?:([A-Za-z_]\w*)\s*(?:\.|::|->)\s*)?([A-Za-z_]\w*)")
_BRACKET = re.compile(r"[()\[\]{}]")


@dataclass(frozen=True)
class Usage:
    """A name used near the cursor: `client.fetch_` is Usage("fetch_", "client", partial=True)."""

    name: str
    qualifier: str = ""
    partial: bool = False


def usages_near(text: str, offset: int, language: str) -> list[Usage]:
    """Names used at and around the cursor, most relevant first.

    Lexical on purpose: the code being typed rarely parses. First the call whose arguments the
    cursor is in (`render(`), then the name being typed (`client.fetch_`), then the names of the
    current and previous lines, nearest first.
    """
    reserved = keywords(language)
    before = text[:offset]
    usages: list[Usage] = []
    call = _open_call(before)
    if call is not None:
        usages.append(call)
    typed = _PARTIAL_AT_CURSOR.search(before[-200:])
    if typed and (typed.group(1) or typed.group(2)):
        qualifier = typed.group(1).rstrip(".").split(".")[-1] if typed.group(1) else ""
        name = typed.group(2) or ""
        if name or qualifier:
            usages.append(Usage(name, qualifier, partial=True))
    line_start = offset
    for _ in range(USAGE_WINDOW_LINES):
        line_start = text.rfind("\n", 0, max(line_start - 1, 0)) + 1
        if line_start == 0:
            break
    window_lines = text[line_start:offset].split("\n")
    line_end = text.find("\n", offset)
    window_lines[-1] += text[offset:line_end if line_end >= 0 else len(text)]
    for line in reversed(window_lines):
        for match in reversed(list(_QUALIFIED_NAME.finditer(_strip_strings(line)))):
            qualifier, name = match.group(1) or "", match.group(2)
            if name not in reserved and len(name) > 1:
                usages.append(Usage(name, qualifier if qualifier not in ("self", "this") else ""))
    unique: dict[tuple[str, str], Usage] = {}
    for usage in usages:
        unique.setdefault((usage.name, usage.qualifier), usage)
    return list(unique.values())


def _open_call(before: str) -> Usage | None:
    """The function whose argument list the cursor is inside, if any."""
    depth = 0
    brackets = [(match.start(), match.group()) for match in
                _BRACKET.finditer(before, max(len(before) - 2000, 0))]
    for index, char in reversed(brackets):
        if char in ")]}":
            depth += 1
        elif char in "([{":
            if depth == 0:
                if char != "(":
                    return None
                chain = _CHAIN_BEFORE.search(before[max(index - 200, 0):index])
                if chain is None:
                    return None
                parts = [part.strip() for part in chain.group(1).split(".")]
                return Usage(parts[-1], parts[-2] if len(parts) > 1 else "")
            depth -= 1
    return None


def _strip_strings(line: str) -> str:
    return re.sub(r"(\"[^\"]*\"|'[^']*')", " ", line)


def keywords(language: str) -> frozenset[str]:
    """The language's keywords: never names worth looking up."""
    registered = language_named(language)
    return registered.index.keywords if registered else frozenset()
