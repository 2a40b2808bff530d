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
    why: str = ""  # what kind of problem withheld it, as the end of a sentence


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


def syntax_problems(text: str, language: str, start: int, end: int, answer_row: int | None = None) -> list[str]:
    """The syntax errors tree-sitter finds in text[start:end] (string offsets), as sentences.

    `answer_row`: the row (0-based) where the model's answer begins in `text`; each problem then
    also names its line in the generated body (which the file does not hold).
    """
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
        where = _where(node.start_point.row, answer_row)
        if node.is_missing:
            problems.append(f"{where}: missing {node.type!r}")
        elif node.is_error:
            snippet = _first_line(data[node.start_byte:node.end_byte])
            problems.append(f"{where}: syntax error at {snippet!r}")
        else:
            stack.extend(reversed(node.children))
    return problems


def _where(row: int, answer_row: int | None) -> str:
    """`line N of the file`, and the line of the model's answer when the row is inside it."""
    if answer_row is None or row < answer_row:
        return f"line {row + 1} of the file"
    return f"line {row + 1} of the file (line {row - answer_row + 1} of the generated body)"


def _first_line(data: bytes) -> str:
    line = data.decode("utf-8", "replace").strip().split("\n", 1)[0]
    return line if len(line) <= 40 else line[:40] + "..."


def check_body(text: str, stub: Stub, body: str, guide: StyleGuide) -> Checked:
    """A body as it would replace the stub's: its text when it parses and keeps the guide.

    `body` is the code the model wrote for the body, indented any way; it is re-indented to the
    stub's body. Problems name the line (in the document as it would be) and what is wrong.
    """
    if not body.strip():
        return Checked(None, ["the answer held no code"], why="the model's answer held no code")
    new_text = stub.replacement(body, indent_unit(text, guide))
    prefix, suffix = text[:stub.body_start], text[stub.body_end:]
    candidate = prefix + new_text + suffix
    function_end = stub.end + len(new_text) - (stub.body_end - stub.body_start)
    answer_row = prefix.count("\n") + len(new_text) - len(new_text.lstrip("\n"))  # its first line of code
    problems = syntax_problems(candidate, stub.language, stub.start, function_end, answer_row)
    if problems:
        return Checked(None, problems, why="the model's answer did not parse")
    enforced = enforce_body(prefix, new_text, suffix, stub.language, guide)
    if enforced.text is None:
        return Checked(None, [f"line {finding.line}: {finding.rule}: {finding.message}"
                              for finding in enforced.rejected[:_MAX_NAMED]], enforced.fixed,
                       why="the model's answer broke the style guide")
    return Checked(enforced.text, [], enforced.fixed)
