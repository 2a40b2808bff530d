"""What Python's parse can skip: function bodies, cut out, and comment lines, blanked.

Parsing is most of a cold index's time, and function bodies are most of a Python file's bytes.
A body is replaced by `...` on its last line with its newlines kept, so line numbers, signatures,
docstrings and the definitions around it come out of the parse as before, while tree-sitter reads
about 40% of the bytes (CPython's standard library: 7.8 s of parsing down to 2.4 s).

Cutting is lexical, so it is done only where it is safe without tokenizing: a body whose lines all
lie deeper than its `def`, with balanced brackets and triple quotes, not ending in a line
continuation, in a file without tabs or carriage returns. Anything else is parsed whole.

Comment lines cost tree-sitter a sixth of what remains (they are lexed a byte at a time, and may
stand anywhere), and the index of Python never reads them: they become spaces, which keeps every
offset and line.
"""

from __future__ import annotations

import re

# One match is a whole function: its signature, its docstring if any, and its body, the lines
# after them that lie deeper than the `def` (with blank and comment lines between them). The
# signature and docstring are atomic groups: once found, the shortest signature and the first
# string are kept, so a body that does not follow fails the match instead of stretching them over
# the code. Possessive repeats (`*+`) never give back what they matched: no backtracking per line.
_FUNCTION = re.compile(rb"""
    ^(?P<indent>[ ]*+)(?:async[ ]++)?def[ ]++\w++[ ]*+\(
    (?>(?P<parameters>(?:[^\n]*+\n(?P=indent)[ )])*?[^\n]*):[ ]*+(?:\#[^\n]*+)?\n)
    (?>(?:(?:[ ]*+(?:\#[^\n]*+)?\n)*+(?P=indent)[ ]++[rRuUbB]?
        (?:\"\"\"[^"\\]*+(?:(?:\\[\s\S]|"(?!""))[^"\\]*+)*+\"\"\"
           |'\'\'[^'\\]*+(?:(?:\\[\s\S]|'(?!''))[^'\\]*+)*+'\'\'
           |"[^"\\\n]*+(?:\\[\s\S][^"\\\n]*+)*+"|'[^'\\\n]*+(?:\\[\s\S][^'\\\n]*+)*+')
        [ ]*+(?:\#[^\n]*+)?\n)?)
    (?P<body>(?:[ ]*+\n)*+(?P<body_indent>(?P=indent)[ ]++)(?![rRuUbB]?["'])[^\n]++(?:\n|\Z)
        (?:(?:[ ]*+(?:\#[^\n]*+)?\n)*+(?P=indent)[ ]++[^\n]++(?:\n|\Z))*+)
""", re.MULTILINE | re.VERBOSE)
_COMMENT_LINE = re.compile(rb"\n[ ]*+(#[^\n]*+)")
PLACEHOLDER = b"..."
_NOT_BRACKETS = bytes(byte for byte in range(256) if byte not in b"()[]{}")
# Found left to right, so that a `#` in a string and a quote in a comment are not taken for more.
# A line of a triple-quoted string may be taken for code: at worst its brackets count.
_COMMENT_OR_LINE_STRING = re.compile(rb"""\#[^\n]*+|"(?:[^"\\\n]|\\.)*+"|'(?:[^'\\\n]|\\.)*+'""")


def without_function_bodies(source: bytes) -> tuple[bytes, dict[int, tuple[int, int]]]:
    """The source with safely cuttable function bodies cut, and where each cut body was.

    The map goes from where a cut function starts in the new text (its `def`, or `async`) to
    the (start, end) byte range of its body in the original source (after the docstring).
    """
    if b"\t" in source or b"\r" in source:
        return source, {}
    pieces: list[bytes] = []
    cut: dict[int, tuple[int, int]] = {}
    kept = length = position = 0
    in_string = _TripleQuotes(source)
    # `find` skips to the next `def ` in C: a regex searched from every position costs 20 times
    # as much. The whole function is then matched from the start of that line.
    while (found := source.find(b"def ", position)) >= 0:
        match = _FUNCTION.match(source, source.rfind(b"\n", 0, found) + 1)
        position = found + 4
        if match is None:
            continue
        def_in_string = in_string(match.start())  # an example in a docstring
        start, end = match.span("body")
        if source[end - 1:end] == b"\n":
            end -= 1  # the newline ends what follows the placeholder
        if def_in_string or not _cuttable(match["parameters"], source[start:end]):
            continue
        function_start = length + match.end("indent") - kept  # in the new text
        pieces.append(source[kept:start])
        placeholder = b"\n" * source.count(b"\n", start, end) + match["body_indent"] + PLACEHOLDER
        pieces.append(placeholder)
        length += start - kept + len(placeholder)
        cut[function_start] = (start, end)
        kept = position = end
    if not cut:
        return source, {}
    pieces.append(source[kept:])
    return b"".join(pieces), cut


def _cuttable(parameters: bytes, body: bytes) -> bool:
    """Whether a matched body is whole statements: balanced brackets and triple quotes, with
    parameters that close where the signature ends, and no line continuation at its end."""
    if parameters.count(b"(") + 1 != parameters.count(b")") or body[-1:] == b"\\" or \
            body.count(b'"""') % 2 or body.count(b"'''") % 2:
        return False
    # Brackets in comments and one-line strings (`# see f(x`, `"("`) do not count, but finding
    # those costs a regex pass: only done for the few bodies whose brackets seem unbalanced.
    return _balanced(body) or _balanced(_COMMENT_OR_LINE_STRING.sub(b"", body))


def _balanced(code: bytes) -> bool:
    brackets = code.translate(None, _NOT_BRACKETS)  # one pass over the code, then short counts
    return brackets.count(b"(") == brackets.count(b")") and \
        brackets.count(b"[") == brackets.count(b"]") and \
        brackets.count(b"{") == brackets.count(b"}")


def without_comment_lines(source: bytes) -> bytes:
    """The source with its whole-line comments made spaces, except where the triple quotes before
    them are unbalanced (they may lie in a string) or they hold triple quotes themselves."""
    pieces: list[bytes] = []
    kept = 0
    in_string = _TripleQuotes(source)
    for match in _COMMENT_LINE.finditer(source):
        start, end = match.span(1)
        comment = match[1]
        if in_string(start) or b'"""' in comment or b"'''" in comment:
            continue
        pieces.append(source[kept:start])
        pieces.append(b" " * (end - start))
        kept = end
    if not pieces:
        return source
    pieces.append(source[kept:])
    return b"".join(pieces)


class _TripleQuotes:
    """Whether offsets, asked in increasing order, may lie inside a triple-quoted string (the
    triple quotes before them are unbalanced); each call counts from the previous offset only."""

    def __init__(self, source: bytes) -> None:
        self.source = source
        self.double = self.single = self.counted_to = 0

    def __call__(self, offset: int) -> bool:
        self.double += self.source.count(b'"""', self.counted_to, offset)
        self.single += self.source.count(b"'''", self.counted_to, offset)
        self.counted_to = offset
        return bool(self.double % 2 or self.single % 2)
