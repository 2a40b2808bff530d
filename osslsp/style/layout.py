"""The text a checker reads: its lines, bytes and syntax tree, and which lines are code.

`Source` converts between tree-sitter's (row, byte column) points and character offsets;
`Layout` blanks strings and comments so that layout rules read only code, and tells continuation
lines (inside brackets, after a backslash) from lines that start a statement.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from functools import cache

import tree_sitter

from osslsp.languages import parser
from osslsp.languages.base import Node, StyleSyntax


class Source:
    """The text, its lines and its syntax tree, with conversions between their coordinates."""

    def __init__(self, text: str, language: str) -> None:
        self.text = text
        self.lines = text.split("\n")
        self.data = text.encode("utf-8", "surrogatepass")
        self.tree = parser(language).parse(self.data)
        self._line_offsets: list[int] | None = None

    def char_col(self, row: int, byte_col: int) -> int:
        """The 0-based character column of a byte column."""
        line = self.lines[row] if row < len(self.lines) else ""
        if line.isascii():
            return byte_col
        return len(line.encode("utf-8", "surrogatepass")[:byte_col].decode("utf-8", "replace"))

    def offset(self, row: int, col: int) -> int:
        """The character offset of a (row, character column) position."""
        if self._line_offsets is None:
            offsets, total = [], 0
            for line in self.lines:
                offsets.append(total)
                total += len(line) + 1
            self._line_offsets = offsets
        return self._line_offsets[row] + col

    def row_of(self, offset: int) -> int:
        """The row of a character offset."""
        self.offset(0, 0)
        return bisect_right(self._line_offsets, offset) - 1

    def point_offset(self, point: tree_sitter.Point) -> int:
        return self.offset(point.row, self.char_col(point.row, point.column))

    @staticmethod
    def node_text(node: Node | None) -> str:
        return node.text.decode("utf-8", "replace") if node is not None and node.text else ""


# Every byte of a string or comment but its line breaks becomes a space: what is left is code.
_BLANK = bytes(byte if byte == 10 else 32 for byte in range(256))


@cache
def _block_then_line(opener: bytes) -> re.Pattern[bytes]:
    """A line ending in `opener`; groups: its indentation and that of the next code line."""
    return re.compile(rb"^([ \t]*)[^ \t\r\n][^\n]*?" + re.escape(opener)
                      + rb"[ \t\r]*\n(?=(?:[ \t\r]*\n)*([ \t]*)[^ \t\r\n])", re.MULTILINE)


class Layout:
    """Which lines are code: strings and comments blanked, bracket depth counted when asked."""

    def __init__(self, source: Source, syntax: StyleSyntax, literals: dict[str, list[Node]]) -> None:
        self.source = source
        self.syntax = syntax
        masked = bytearray(source.data)
        for nodes in literals.values():
            for node in nodes:
                start, end = node.start_byte, node.end_byte
                masked[start:end] = source.data[start:end].translate(_BLANK)
        self.masked = bytes(masked)
        self.inside, self.newline_inside = literal_rows(literals)
        self._code_lines: list[bytes] | None = None
        self.brackets = {chr(byte) for byte in syntax.continuation_brackets}

    def code_lines(self) -> list[bytes]:
        if self._code_lines is None:
            self._code_lines = self.masked.split(b"\n")
        return self._code_lines

    def in_brackets(self, row: int) -> bool:
        """Whether a row starts inside brackets opened on an earlier row (a continuation line)."""
        line = self.source.lines[row]
        col = len(line) - len(line.lstrip(" \t"))  # whitespace: characters are bytes here
        node: Node | None = self.source.tree.root_node.descendant_for_point_range((row, col), (row, col))
        brackets = self.brackets
        while node is not None:
            if node.start_point.row < row:
                first = node.child(0) if node.child_count else None  # a leaf: a macro body, say
                if first is not None and first.type in brackets:
                    return True
            node = node.parent
        return False

    def structural(self, row: int) -> bool:
        """Whether a row starts a statement (not inside brackets, a string, or after a backslash)."""
        if row in self.inside or self.in_brackets(row):
            return False
        if self.syntax.block_opener == b":":
            lines = self.code_lines()
            previous = next((lines[r].rstrip() for r in range(row - 1, -1, -1) if lines[r].strip()), b"")
            return not previous.endswith(b"\\")
        return True

    def over_indented_blocks(self, width: int, lo: int, hi: int) -> list[tuple[int, int, int]]:
        """(opener row, its indentation, next code row) where that row is indented more than one unit."""
        found = []
        starts = self.byte_line_starts()
        for match in _block_then_line(self.syntax.block_opener).finditer(self.masked, starts[max(lo - 1, 0)]):
            row = bisect_right(starts, match.start(2)) - 1
            if row > hi:
                break
            opener_indent = len(match.group(1).expandtabs(width))
            if row >= lo and len(match.group(2).expandtabs(width)) > opener_indent + width:
                found.append((bisect_right(starts, match.start()) - 1, opener_indent, row))
        return found

    def byte_line_starts(self) -> list[int]:
        return [0] + [match.end() for match in re.finditer(b"\n", self.masked)]


def literal_rows(literals: dict[str, list[Node]]) -> tuple[set[int], set[int]]:
    """Rows whose start lies inside a string or comment, and rows whose line break does."""
    inside: set[int] = set()
    newline_inside: set[int] = set()
    for nodes in literals.values():
        for node in nodes:
            first, last = node.start_point.row, node.end_point.row
            if first != last:
                inside.update(range(first + 1, last + 1))
                newline_inside.update(range(first, last))
    return inside, newline_inside
