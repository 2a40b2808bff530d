"""What Python's parse can skip: whole functions and long values, cut out, and comment lines,
blanked.

Parsing is most of a cold index's time, and functions are most of a Python file. A function is
folded: its decorators, signature, docstring and body become line breaks, with `...` where its
last line starts, so that line numbers, the definitions around it and the block it stands in come
out of the parse as before. Its name, signature, docstring and body are read from the text, which
the regex that found it delimits. Functions that follow one another in a block (a class's
methods) share one `...`: the parse reads a sixth of the standard library's bytes. A
function under a decorator spanning lines keeps its `def` in the parse; only its body is cut.

Cutting is lexical, so it is done only where it is safe without tokenizing: a body whose lines all
lie deeper than its `def`, with balanced brackets and triple quotes, not ending in a line
continuation, in a file without tabs or carriage returns. Anything else is parsed whole. Should
a fold break the parse anyway, the extractor parses again with every `def` in place.

A module-level assignment whose value runs over the lines after it (a table, a dict of strings)
becomes `NAME = (...)`, its lines kept; its signature and words are read from its text, kept
aside.

Comment lines cost tree-sitter a sixth of what remains (they are lexed a byte at a time, and may
stand anywhere), and the index of Python never reads them: they become spaces, which keeps every
offset and line.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from functools import cache
from typing import NamedTuple

import tree_sitter

from osslsp.index.python_lexis import TripleQuotes, without_comment_lines

# One match is a whole function: its signature, its docstring if any, and its body, the lines
# after them that lie deeper than the `def` (with blank and comment lines between them). The
# signature and docstring are atomic groups: once found, the shortest signature and the first
# string are kept, so a body that does not follow fails the match instead of stretching them over
# the code. Possessive repeats (`*+`) never give back what they matched: no backtracking per line.
_FUNCTION = re.compile(rb"""
    ^(?P<indent>[ ]*+)(?:async[ ]++)?def[ ]++(?P<name>\w++)[ ]*+\(
    (?>(?P<parameters>(?:[^\n]*+\n(?P=indent)[ )])*?[^\n]*):[ ]*+(?:\#[^\n]*+)?\n)
    (?>(?:(?:[ ]*+(?:\#[^\n]*+)?\n)*+(?P=indent)[ ]++(?P<doc>[rRuUbB]?
        (?:\"\"\"[^"\\]*+(?:(?:\\[\s\S]|"(?!""))[^"\\]*+)*+\"\"\"
           |'\'\'[^'\\]*+(?:(?:\\[\s\S]|'(?!''))[^'\\]*+)*+'\'\'
           |"[^"\\\n]*+(?:\\[\s\S][^"\\\n]*+)*+"|'[^'\\\n]*+(?:\\[\s\S][^'\\\n]*+)*+'))
        [ ]*+(?:\#[^\n]*+)?\n)?)
    (?P<body>(?:[ ]*+\n)*+(?P<body_indent>(?P=indent)[ ]++)(?![rRuUbB]?["'])[^\n]++(?:\n|\Z)
        (?:(?:[ ]*+(?:\#[^\n]*+)?\n)*+(?P=indent)[ ]++[^\n]++(?:\n|\Z))*+)
""", re.MULTILINE | re.VERBOSE)
# A module-level assignment whose value runs over the lines after it (a table, a dict of
# strings): its first line, lines deeper than it (or blank), and perhaps a line at column 0 that
# closes the value.
_LONG_VALUE = re.compile(rb"""
    \n(?P<head>[A-Za-z_]\w*+(?:[ ]*+:[^=\n]++)?[ ]*+=)(?!=)[^\n]*+
    (?:\n[ ]*+(?=\n))*+\n[ ]++[^\n ][^\n]*+
    (?:\n(?=[ \n])[^\n]*+)*+
    (?:\n[)\]}][^\n]*+)?
""", re.VERBOSE)
_BLANK = re.compile(rb"[ \n]*+")
# What follows a body that ends where a definition starts, or where the file does.
_BEFORE_DEFINITION = re.compile(rb"(?:\n[ ]*+)++(?:def[ ]|class[ ]|async[ ]|@)|\s*+\Z")
PLACEHOLDER = b"..."
DECORATOR_SEARCH_LINES = 12
_NOT_BRACKETS = bytes(byte for byte in range(256) if byte not in b"()[]{}")
# Found left to right, so that a `#` in a string and a quote in a comment are not taken for more.
# A line of a triple-quoted string may be taken for code: at worst its brackets count.
_BLANK_OR_COMMENTS = re.compile(rb"(?:\s++|\#[^\n]*+)*+")
_COMMENT_OR_LINE_STRING = re.compile(
    rb"""\#[^\n]*+|"[^"\\\n]*+(?:\\.[^"\\\n]*+)*+"|'[^'\\\n]*+(?:\\.[^'\\\n]*+)*+'""")


class FoldedFunction(NamedTuple):
    """A function taken out of the parse whole. Offsets are in the skimmed source, lines counted
    from the first line of its run (see `FoldedRun`)."""

    name: str
    # from its `def` (or `async`, or decorator) to its docstring, or to the blank and comment
    # lines before its body
    header: tuple[int, int]
    docstring: tuple[int, int] | None  # the literal
    body: tuple[int, int]  # after the docstring
    first_line: int  # where it starts (its decorators')
    last_line: int


class FoldedRun(NamedTuple):
    """Functions folded one after the other in the same block (only blank lines between them),
    which one `...` on the last one's last line stands for: a class's methods are most often
    such a run, and each statement parsed costs."""

    lines: int  # from the run's first line to the `...`'s
    functions: list[FoldedFunction]


class Skimmed(NamedTuple):
    """A Python source made cheaper to parse, with what reading the parse back needs."""

    source: bytes  # the source with its comment lines blanked: every offset kept
    parsed: bytes  # that, with the functions, bodies and long values that can be cut cut
    # where each function whose body alone was cut (under a decorator spanning lines) starts in
    # `parsed` (its `def`, or `async`), to the (start, end) of its body (after the docstring) in
    # `source`
    cut_bodies: dict[int, tuple[int, int]]
    # where each run of folded functions' `...` stands in `parsed`, to what it was
    folded: dict[int, FoldedRun]
    # where each module-level assignment whose value was cut starts in `parsed`, to its text
    cut_values: dict[int, bytes]


def skim_and_parse(source: bytes, parser: tree_sitter.Parser, fold: bool
                   ) -> tuple[Skimmed, tree_sitter.Tree]:
    """A Python source skimmed (`fold`: with its functions folded, see `skim`; else with its
    comment lines blanked only, every function parsed whole) and parsed.

    Folding is lexical: should it have broken the parse (a decorator it did not see, say), the
    source is parsed again with every `def` in place."""
    if not fold:
        blanked = without_comment_lines(source, TripleQuotes(source))
        skimmed = Skimmed(blanked, blanked, {}, {}, {})
        return skimmed, parser.parse(blanked)
    skimmed = skim(source)
    tree = parser.parse(skimmed.parsed)
    if skimmed.folded and tree.root_node.has_error and _fold_broke(tree, skimmed):
        skimmed = skim(source, fold=False)
        tree = parser.parse(skimmed.parsed)
    return skimmed, tree


def _fold_broke(tree: tree_sitter.Tree, skimmed: Skimmed) -> bool:
    """Whether a parse error touches a fold: holds a `...` left by one, or ends right before one
    (blank lines and comments between).

    A fold can leave a decorator it did not see decorating nothing; it cannot leave text after
    its `...` that continues the function (its body's brackets balance, or a definition follows).
    Errors elsewhere are the file's own (half-typed code): parsing again would find them too."""
    placeholders = list(skimmed.folded)  # in file order
    for error in _errors(tree.root_node):
        after = bisect_left(placeholders, error.start_byte)
        if after == len(placeholders):
            continue
        placeholder = placeholders[after]
        if placeholder < error.end_byte or \
                _BLANK_OR_COMMENTS.fullmatch(skimmed.parsed, error.end_byte, placeholder):
            return True
    return False


def _errors(node: tree_sitter.Node) -> Iterator[tree_sitter.Node]:
    """The outermost error and missing nodes under a node."""
    for child in node.children:
        if child.type == "ERROR" or child.is_missing:
            yield child
        elif child.has_error:
            yield from _errors(child)


def skim(source: bytes, fold: bool = True) -> Skimmed:
    """A source's comment lines blanked, then its functions folded (or their bodies cut) where
    that is safe, then its long module-level values (searched for in what is left: a sixth of
    the bytes). `fold=False` cuts bodies only, leaving every `def` in the parse."""
    quotes = TripleQuotes(source)  # blanking keeps them all: comments holding them stay
    blanked = without_comment_lines(source, quotes)
    if b"\t" in source or b"\r" in source:  # the cutting regexes read neither
        return Skimmed(blanked, blanked, {}, {}, {})
    without_functions, cut_bodies, folded = _without_functions(blanked, quotes, fold)
    parsed, cut_values, removed = _without_long_values(without_functions)
    if removed:  # functions after a cut value stand earlier in the parsed text
        ends = [end for end, _ in removed]
        cut_bodies = {start - _removed_before(start, ends, removed): body
                      for start, body in cut_bodies.items()}
        folded = {start - _removed_before(start, ends, removed): function
                  for start, function in folded.items()}
    return Skimmed(blanked, parsed, cut_bodies, folded, cut_values)


def _removed_before(offset: int, ends: list[int], removed: list[tuple[int, int]]) -> int:
    """How many bytes the cuts ending before an offset removed (`ends`: where they end)."""
    index = bisect_right(ends, offset)
    return removed[index - 1][1] if index else 0


def _without_functions(source: bytes, quotes: TripleQuotes, fold: bool
                       ) -> tuple[bytes, dict[int, tuple[int, int]], dict[int, FoldedRun]]:
    """The source with safely cuttable functions folded to `...` (with their decorators), or,
    where a decorator spans lines, their bodies cut; where each cut body was, and what each fold
    took out."""
    pieces: list[bytes] = []
    cut: dict[int, tuple[int, int]] = {}
    folded: dict[int, FoldedRun] = {}
    kept = length = position = 0
    # the run of folded functions being gathered: where its `...` stands, where it ends
    run_functions: list[FoldedFunction] = []
    run_key = run_end = run_lines = -1
    # `find` skips to the next `def ` in C: a regex searched from every position costs 20 times
    # as much. The whole function is then matched from the start of that line.
    while (found := source.find(b"def ", position)) >= 0:
        match = _FUNCTION.match(source, source.rfind(b"\n", 0, found) + 1)
        position = found + 4
        if match is None:
            continue
        start, end = match.span("body")
        if source[end - 1:end] == b"\n":
            end -= 1  # the newline ends what follows the placeholder
        unbalanced = quotes.unbalanced_within(start, end)
        if unbalanced:  # it ends in a string, whose lines lie anywhere
            end = _through_strings(source, quotes, start, end, len(match["indent"]))
            unbalanced = quotes.unbalanced_within(start, end)
        parameters = match["parameters"]
        # A body followed by a definition (or nothing) is whole statements if its triple quotes
        # balance: a bracket left open there would be broken code. Others are checked.
        if unbalanced or quotes.open_at(match.start()) or \
                parameters.count(b"(") + 1 != parameters.count(b")") or \
                not (_BEFORE_DEFINITION.match(source, end) or
                     _whole_statements(source[start:end])):
            continue  # an example in a docstring, or a body that is not whole statements
        indent = match["indent"]
        line_start = match.start()
        after_blank = _BLANK.fullmatch(source, kept, line_start) is not None
        if fold and not after_blank:  # else no decorator stands above
            line_start = _fold_start(source, line_start, len(indent), kept)
            after_blank = line_start is not None and \
                _BLANK.fullmatch(source, kept, line_start) is not None
        if fold and line_start is not None and not quotes.unbalanced_within(line_start, start):
            # The whole function, decorators included: its line breaks, then `...` where its
            # last line starts, standing for the run it ends.
            lines = source.count(b"\n", line_start, end)
            doc_start, doc_end = match.span("doc")
            header_end = start if doc_start < 0 else doc_start
            placeholder = indent + PLACEHOLDER
            if after_blank and run_end == kept and pieces[-1] == placeholder:
                pieces.pop()  # this function joins the run before it: one `...` for both
                length -= len(placeholder)
                first_line = run_lines + source.count(b"\n", kept, line_start)
            else:
                if run_functions:
                    folded[run_key] = FoldedRun(run_lines, run_functions)
                run_functions, first_line = [], 0
            run_functions.append(FoldedFunction(
                match["name"].decode(), (line_start + len(indent), header_end),
                None if doc_start < 0 else (doc_start, doc_end), (start, end),
                first_line, first_line + lines))
            pieces.append(source[kept:line_start])
            pieces.append(b"\n" * lines)
            pieces.append(placeholder)
            length += line_start - kept + lines
            run_key = length + len(indent)
            length += len(placeholder)
            run_lines, run_end = first_line + lines, end
        else:
            function_start = length + match.end("indent") - kept  # in the new text
            pieces.append(source[kept:start])
            placeholder = b"\n" * source.count(b"\n", start, end) + match["body_indent"] + \
                PLACEHOLDER
            pieces.append(placeholder)
            length += start - kept + len(placeholder)
            cut[function_start] = (start, end)
        kept = position = end
    if run_functions:
        folded[run_key] = FoldedRun(run_lines, run_functions)
    if not pieces:
        return source, {}, {}
    pieces.append(source[kept:])
    return b"".join(pieces), cut, folded


def _through_strings(source: bytes, quotes: TripleQuotes, start: int, end: int,
                     indent: int) -> int:
    """Where a body ends that the function regex ended inside a triple-quoted string (a line of
    it lay at the `def`'s depth or less): past the string's close, the rest of its line and the
    deeper lines after it, as often as that ends in a string again. Where a string never closes,
    the end found first (its quotes stay unbalanced: the body is not cut)."""
    found = end
    while quotes.unbalanced_within(start, end):
        opening, closing = quotes.before(end), quotes.after(end)
        # A string opened right after a quote may lie in a one-line string (`'"""x'`): the
        # quotes counted are not to be trusted there.
        if closing is None or source[opening - 1:opening] in (b"'", b'"', b"\\"):
            return found
        line_end = source.find(b"\n", closing + 3)
        if line_end < 0:
            return found
        end = _deeper_lines(indent).match(source, line_end + 1).end()
        if end == line_end + 1:  # no deeper line after the string's
            end = line_end
        elif source[end - 1:end] == b"\n":
            end -= 1
    return end


@cache
def _deeper_lines(indent: int) -> re.Pattern[bytes]:
    """Lines deeper than a `def` at `indent`, with blank and comment lines between them."""
    return re.compile(rb"(?:(?:[ ]*+(?:\#[^\n]*+)?\n)*+[ ]{%d,}[^\n ][^\n]*+(?:\n|\Z))*+"
                      % (indent + 1))


def _fold_start(source: bytes, line_start: int, indent: int, floor: int) -> int | None:
    """Where a function whose `def` line starts at `line_start` can be folded from: that line,
    or the first of the one-line decorators right above it. None where a decorator spans lines
    (or none of that is told within a dozen lines): folding from the `def` would leave it
    decorating nothing. Looks back over blank lines, deeper lines and closing brackets to the
    statement before, not past `floor` (where the last cut ended)."""
    start, line_end = line_start, line_start - 1
    adjacent = True  # no deeper line or closing bracket between that statement and `start`
    for _ in range(DECORATOR_SEARCH_LINES):
        if line_end <= floor:
            return start
        previous = source.rfind(b"\n", 0, line_end) + 1
        line = source[previous:line_end]
        line_end = previous - 1
        code = line.lstrip(b" ")
        if not code:
            continue
        column = len(line) - len(code)
        if column > indent or code[:1] in b")]}":
            adjacent = False
        elif code[:1] != b"@":
            return start
        elif adjacent and column == indent and _balanced(code) and code[-1:] != b"\\":
            start = previous
        else:
            return None
    return None


def _without_long_values(source: bytes
                         ) -> tuple[bytes, dict[int, bytes], list[tuple[int, int]]]:
    """The source with the values of long module-level assignments cut, where each cut
    assignment starts in the new text with its whole text, and (end in `source`, bytes removed
    up to there) per cut. A value becomes `(...)` ending on its last line: lines are kept.
    The index reads an assignment's name and first lines, and its words (from the text kept).
    """
    pieces: list[bytes] = []
    values: dict[int, bytes] = {}
    removed: list[tuple[int, int]] = []
    kept = length = 0
    quotes = TripleQuotes(source)
    for match in _LONG_VALUE.finditer(source):
        start, value_start = match.span("head")
        statement = source[start:match.end()].rstrip()
        value = statement[value_start - start:]
        if quotes.open_at(start) or quotes.unbalanced_within(value_start, start + len(statement)) \
                or value[-1:] == b"\\" or not _balanced_code(value) or \
                b"#" in value[value.rfind(b"\n"):]:
            continue  # in a string, perhaps not the whole statement, or ending in a comment
        pieces.append(source[kept:value_start])
        placeholder = b" (" + b"\n" * value.count(b"\n") + PLACEHOLDER + b")"
        pieces.append(placeholder)
        values[length + start - kept] = statement
        length += value_start - kept + len(placeholder)
        kept = start + len(statement)
        removed.append((kept, kept - length))
    if not values:
        return source, {}, []
    pieces.append(source[kept:])
    return b"".join(pieces), values, removed


def _whole_statements(body: bytes) -> bool:
    """Whether a matched body (with balanced triple quotes) is whole statements: balanced
    brackets, no line continuation at its end."""
    return body[-1:] != b"\\" and _balanced_code(body)


def _balanced_code(code: bytes) -> bool:
    """Whether code's brackets balance. Those in comments and one-line strings (`# see f(x`,
    `"("`) do not count, but finding those costs a regex pass: only done for the few pieces of
    code whose brackets seem unbalanced."""
    return _balanced(code) or _balanced(_COMMENT_OR_LINE_STRING.sub(b"", code))


def _balanced(code: bytes) -> bool:
    brackets = code.translate(None, _NOT_BRACKETS)  # one pass over the code, then short counts
    return brackets.count(b"(") == brackets.count(b")") and \
        brackets.count(b"[") == brackets.count(b"]") and \
        brackets.count(b"{") == brackets.count(b"}")
