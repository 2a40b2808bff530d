"""Positions in documents: LSP's (line, column) to string offsets and back.

Columns count code units of the position encoding agreed at initialization: UTF-16 by default,
UTF-8 or UTF-32 when the client offered them first.
"""

from __future__ import annotations


class PositionError(ValueError):
    """A position outside the document."""


def units(char: str, encoding: str = "utf-16") -> int:
    """How many code units of an encoding one character takes."""
    if encoding == "utf-8":
        return len(char.encode("utf-8"))
    if encoding == "utf-32":
        return 1
    return 2 if ord(char) > 0xFFFF else 1


def offset_at(text: str, line: int, character: int, encoding: str = "utf-16") -> int:
    """The string offset of an LSP position; PositionError when it is not in the document.

    A column past the end of its line is clamped to the line's end, as the LSP specification asks;
    a line past the end of the document is an error.
    """
    if line < 0 or character < 0:
        raise PositionError(f"position {line}:{character} is negative")
    start = 0
    for _ in range(line):  # found, not split: a keystroke in a huge document stays cheap
        start = text.find("\n", start) + 1
        if start == 0:
            raise PositionError(f"line {line} is past the end of the document ({text.count(chr(10)) + 1} lines)")
    end = text.find("\n", start)
    end = len(text) if end == -1 else end
    counted = 0
    for index in range(start, end):
        if counted >= character:
            return index
        counted += units(text[index], encoding)
    return end


def position_at(text: str, offset: int, encoding: str = "utf-16") -> tuple[int, int]:
    """The LSP (line, column) of a string offset."""
    before = text[:offset]
    current = before.rpartition("\n")[2]
    return before.count("\n"), sum(units(char, encoding) for char in current)


def window_around(text: str, offset: int, limit: int) -> tuple[str, int]:
    """At most about `limit` characters of the text around `offset`, cut at line starts, and the
    offset within them: what prompts are built from in a document too large to read whole."""
    if len(text) <= limit:
        return text, offset
    start = max(0, offset - limit // 2)
    start = text.rfind("\n", 0, start) + 1 if start else 0
    end = min(len(text), offset + limit // 2)
    return text[start:end], offset - start
