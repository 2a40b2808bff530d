"""What a Python source's lexis tells without tokenizing it: where its triple-quoted strings open
and close, and which of its lines are whole comments."""

from __future__ import annotations

from bisect import bisect_left

_DOUBLE_QUOTE = ord('"')


def without_comment_lines(source: bytes, quotes: TripleQuotes) -> bytes:
    """The source with its whole-line comments made spaces, except where the triple quotes before
    them are unbalanced (they may lie in a string) or they hold triple quotes themselves."""
    pieces: list[bytes] = []
    kept = 0
    # From `#` to `#` by `find`, in C: few lines hold one, and a regex tried at every line's
    # start cost more.
    comment = source.find(b"#")
    while comment >= 0:
        line_start = source.rfind(b"\n", 0, comment) + 1
        line_end = source.find(b"\n", comment)
        if line_end < 0:
            line_end = len(source)
        if source.count(b" ", line_start, comment) == comment - line_start and \
                not quotes.open_at(comment) and source.find(b'"""', comment, line_end) < 0 and \
                source.find(b"'''", comment, line_end) < 0:
            pieces.append(source[kept:comment])
            pieces.append(b" " * (line_end - comment))
            kept = line_end
        comment = source.find(b"#", line_end)
    if not pieces:
        return source
    pieces.append(source[kept:])
    return b"".join(pieces)


class TripleQuotes:
    """Where a source's triple-quoted strings open and close, found once: whether an offset may
    lie inside one, and whether a range holds an unbalanced number of their quotes. A file has
    few: each question is a binary search or two."""

    def __init__(self, source: bytes) -> None:
        # Triple quotes of both kinds in file order, told apart by their first byte. Those of
        # the other kind inside an open string, and those written as a one-line string of the
        # other quote (`'"""'`), neither open nor close one: counted, they would leave every
        # later `def` of the file inside a string, parsed whole.
        self.delimiters: list[int] = []
        open_quote = None
        for offset in sorted(_offsets(source, b'"""') + _offsets(source, b"'''")):
            quote = source[offset]
            if open_quote is None:
                if source[offset - 1:offset] == source[offset + 3:offset + 4] == \
                        (b"'" if quote == _DOUBLE_QUOTE else b'"'):
                    continue
                open_quote = quote
            elif quote != open_quote:
                continue
            else:
                open_quote = None
            self.delimiters.append(offset)

    def open_at(self, offset: int) -> bool:
        return bisect_left(self.delimiters, offset) % 2 == 1

    def before(self, offset: int) -> int:
        """The last one before `offset - 2` (the one opening a string that is open there)."""
        return self.delimiters[bisect_left(self.delimiters, offset - 2) - 1]

    def after(self, offset: int) -> int | None:
        """The first one at `offset - 2` or later (what `unbalanced_within` did not count)."""
        index = bisect_left(self.delimiters, offset - 2)
        return self.delimiters[index] if index < len(self.delimiters) else None

    def unbalanced_within(self, start: int, end: int) -> bool:
        """Whether [start, end) holds an odd number of them."""
        inside = bisect_left(self.delimiters, end - 2) - bisect_left(self.delimiters, start)
        return inside % 2 == 1


def _offsets(source: bytes, needle: bytes) -> list[int]:
    """Where a needle occurs, left to right without overlaps (as `bytes.count` counts)."""
    offsets = []
    found = source.find(needle)
    while found >= 0:
        offsets.append(found)
        found = source.find(needle, found + len(needle))
    return offsets
