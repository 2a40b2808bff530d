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
    lines = text.split("\n")
    if line >= len(lines):
        raise PositionError(f"line {line} is past the end of the document ({len(lines)} lines)")
    start = sum(len(previous) + 1 for previous in lines[:line])
    counted = 0
    for index, char in enumerate(lines[line]):
        if counted >= character:
            return start + index
        counted += units(char, encoding)
    return start + len(lines[line])


def position_at(text: str, offset: int, encoding: str = "utf-16") -> tuple[int, int]:
    """The LSP (line, column) of a string offset."""
    before = text[:offset]
    current = before.rpartition("\n")[2]
    return before.count("\n"), sum(units(char, encoding) for char in current)
