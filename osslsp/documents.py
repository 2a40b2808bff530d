"""Positions in documents: LSP's (line, UTF-16 column) to string offsets and back."""

from __future__ import annotations


class PositionError(ValueError):
    """A position outside the document."""


def utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def offset_at(text: str, line: int, character: int) -> int:
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
    current = lines[line]
    units = 0
    for index, char in enumerate(current):
        if units >= character:
            return start + index
        units += 2 if ord(char) > 0xFFFF else 1
    return start + len(current)


def position_at(text: str, offset: int) -> tuple[int, int]:
    """The LSP (line, UTF-16 column) of a string offset."""
    before = text[:offset]
    line = before.count("\n")
    return line, utf16_length(before.rpartition("\n")[2])
