"""Holding a generated body to the language and the guide before it reaches the document.

`check_body` inserts the body into the document, parses the result, names every syntax error in
the function it lands in, then holds the body to the style guide (`enforce_body`: safe fixes made,
anything else withholds it). Pure: tree-sitter and the style package.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from osslsp.actions.stubs import Stub
from osslsp.languages import parser
from osslsp.style import StyleGuide, enforce_body

_MAX_NAMED = 5


@dataclass(frozen=True)
class Checked:
    """The replacement text when the body passes (else None), and the problems found."""

    new_text: str | None
    problems: list[str] = field(default_factory=list)
    fixed: list[str] = field(default_factory=list)


def indent_unit(text: str, guide: StyleGuide) -> str:
    """One level of indentation: the guide's, else the document's own, else four spaces."""
    if guide.indent == "tabs":
        return "\t"
    if guide.indent == "spaces":
        return " " * guide.indent_width
    if re.search(r"^\t", text, re.MULTILINE):
        return "\t"
    found = re.search(r"^( +)\S", text, re.MULTILINE)
    return found.group(1) if found and len(found.group(1)) in (2, 4, 8) else "    "


def syntax_problems(text: str, language: str, start: int, end: int) -> list[str]:
    """The syntax errors tree-sitter finds in text[start:end] (string offsets), as sentences."""
    data = text.encode("utf-8", "surrogatepass")
    low = len(text[:start].encode("utf-8", "surrogatepass"))
    high = len(text[:end].encode("utf-8", "surrogatepass"))
    tree = parser(language).parse(data)
    problems: list[str] = []
    stack = [tree.root_node]
    while stack and len(problems) < _MAX_NAMED:
        node = stack.pop()
        if node.end_byte < low or node.start_byte > high or not (node.has_error or node.is_missing):
            continue
        if node.is_missing:
            problems.append(f"line {node.start_point.row + 1}: missing {node.type!r}")
        elif node.is_error:
            snippet = _first_line(data[node.start_byte:node.end_byte])
            problems.append(f"line {node.start_point.row + 1}: syntax error at {snippet!r}")
        else:
            stack.extend(reversed(node.children))
    return problems


def _first_line(data: bytes) -> str:
    line = data.decode("utf-8", "replace").strip().split("\n", 1)[0]
    return line if len(line) <= 40 else line[:40] + "..."


def check_body(text: str, stub: Stub, body: str, guide: StyleGuide) -> Checked:
    """A body as it would replace the stub's: its text when it parses and keeps the guide.

    `body` is the code the model wrote for the body, indented any way; it is re-indented to the
    stub's body. Problems name the line (in the document as it would be) and what is wrong.
    """
    if not body.strip():
        return Checked(None, ["the answer held no code"])
    new_text = stub.replacement(body, indent_unit(text, guide))
    prefix, suffix = text[:stub.body_start], text[stub.body_end:]
    candidate = prefix + new_text + suffix
    function_end = stub.end + len(new_text) - (stub.body_end - stub.body_start)
    problems = syntax_problems(candidate, stub.language, stub.start, function_end)
    if problems:
        return Checked(None, problems)
    enforced = enforce_body(prefix, new_text, suffix, stub.language, guide)
    if enforced.text is None:
        return Checked(None, [f"line {finding.line}: {finding.rule}: {finding.message}"
                              for finding in enforced.rejected[:_MAX_NAMED]], enforced.fixed)
    return Checked(enforced.text, [], enforced.fixed)
