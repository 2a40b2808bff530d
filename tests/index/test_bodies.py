"""Function bodies cut before parsing: same definitions as a whole parse, far fewer bytes."""

from __future__ import annotations

from osslsp.index.bodies import skim
from osslsp.index.extract import extract

SOURCE = b'''"""Module doc with an example:

def example_in_docstring():
    return 1
"""
import os


def black_style(
    first: int,
    second: str = "x",
) -> dict[str, int]:
    # a comment before the docstring
    """Documented."""
    total = first + len(second)
    for name in os.listdir("."):
        total += len(name)
    return {"total": total}


def one_liner(x): return x


class Shape:
    @property
    def area(self) -> float:
        'Area in square units.'
        width = self.width_in_units
        return width * width

    def perimeter(self):
        text = """
not a def: def fake():
"""
        return text


def brackets_in_text():
    # a comment with an open ( bracket
    return "(" + helper_name


def unbalanced():
    return combined(first_part,
second_part)


@register(
    "name",
)
async def handler(request):
    """Handles."""
    return await request.read()
'''


def test_cut_source_keeps_lines_and_definitions() -> None:
    skimmed = skim(SOURCE)
    cut, bodies = skimmed.parsed, skimmed.cut_bodies
    assert cut.count(b"\n") == SOURCE.count(b"\n") and len(cut) < len(SOURCE)
    assert b"os.listdir" not in cut and b"width_in_units" not in cut  # these bodies were cut
    assert b'"(" + helper_name' not in cut  # brackets in strings and comments do not count
    assert b"combined(first_part" in cut  # this one was not: its brackets do not balance
    # A string whose lines lie at column 0 does not end the body it is in.
    assert b"def fake" not in cut
    # Functions are folded out of the parse whole, with one-line decorators; under a decorator
    # spanning lines, only the body is cut.
    assert [function.name for run in skimmed.folded.values() for function in run.functions] == [
        "black_style", "area", "perimeter", "brackets_in_text"]
    assert b"black_style" not in cut and b"Documented" not in cut and b"@property" not in cut
    assert len(bodies) == 1 and b"async def handler(" in cut

    summary = extract("python", SOURCE)
    assert [(d.name, d.scope, d.line, d.end_line) for d in summary.definitions] == [
        ("black_style", "", 9, 18), ("one_liner", "", 21, 21), ("Shape", "", 24, 35),
        ("area", "Shape", 25, 29), ("perimeter", "Shape", 31, 35), ("brackets_in_text", "", 38, 40),
        ("unbalanced", "", 43, 45), ("handler", "", 48, 53)]
    whole = extract("python", SOURCE + b"#\t\n")  # a tab: nothing is cut
    assert whole.definitions == summary.definitions and whole.tokens == summary.tokens
    names = {d.name: d for d in summary.definitions}
    assert names["black_style"].doc == "Documented."
    assert names["area"].doc == "Area in square units."
    assert names["black_style"].signature.endswith(") -> dict[str, int]")
    assert names["handler"].signature == '@register(\n    "name",\n)\nasync def handler(request)'
    tokens = dict(zip((d.name for d in summary.definitions), summary.tokens))
    assert "listdir" in tokens["black_style"].split()  # read from the cut body
    assert "width_in_units" in tokens["area"].split()


def test_files_with_tabs_are_parsed_whole() -> None:
    source = b"def f():\n\tx = 1\n\treturn x\n"
    assert skim(source)[1:] == (source, {}, {}, {})


def test_comment_lines_become_spaces_outside_strings() -> None:
    source = (b'"""Module.\n'
              b'# a line of the docstring, not a comment\n'
              b'"""\n'
              b'# a real comment\n'
              b'x = 1  # trailing comments stay\n'
              b'    # """ a comment holding quotes stays too\n')
    blanked = skim(source).source
    assert len(blanked) == len(source) and blanked.count(b"\n") == source.count(b"\n")
    assert b"a line of the docstring" in blanked and b"a real comment" not in blanked
    assert b"trailing comments stay" in blanked and b'""" a comment holding quotes' in blanked


def test_a_comment_on_the_first_line_is_blanked_too() -> None:
    first, second = b"#!/usr/bin/env python3", b"  # indented, then a hash in a string"
    blanked = skim(first + b"\n" + second + b"\nx = '#'\n").source
    assert blanked == b" " * len(first) + b"\n" + b" " * len(second) + b"\nx = '#'\n"


def test_a_whole_function_keeps_its_own_words_when_its_last_statement_was_cut() -> None:
    source = (b'def outer():\n'
              b'    text = "(" + prefix_value\n'  # an unbalanced bracket: parsed whole
              b'    def inner():\n'
              b'        return nested_only_name\n')
    assert len(skim(source).folded) == 1  # only inner was cut
    summary = extract("python", source)
    assert [d.name for d in summary.definitions] == ["outer"]
    assert {"text", "prefix_value", "inner"} <= set(summary.tokens[0].split())


def test_long_module_level_values_are_cut_and_read_back_from_the_source() -> None:
    source = (b'import os\n'
              b'TABLE: dict[str, int] = {\n'
              b'    "alpha": ALPHA_VALUE,\n'
              b'    "beta": (2, 3),\n'
              b'}\n'
              b'def after(x):\n'
              b'    return TABLE[x]\n'
              b'TEXT = ("text with a bracket ( in it"\n'  # balanced once strings are out: cut
              b'        "and more")\n'
              b'NUMBERS = [1,\n'
              b'    2,\n'
              b'3]\n'  # its last line is not a closing line: the value seems unbalanced, kept
              b'class Later:\n'
              b'    LIMIT = [\n'
              b'        1]\n')  # a class's own values are kept
    skimmed = skim(source)
    assert skimmed.parsed.count(b"\n") == source.count(b"\n")
    assert b"ALPHA_VALUE" not in skimmed.parsed and b"bracket ( in it" not in skimmed.parsed
    assert b"    2,\n3]" in skimmed.parsed
    assert list(skimmed.cut_values.values()) == [
        source[10:83], b'TEXT = ("text with a bracket ( in it"\n        "and more")']
    summary = extract("python", source)
    whole = extract("python", source + b"#\t\n")  # a tab: nothing is cut
    assert summary.definitions == whole.definitions
    assert set(summary.identifiers.split()) == set(whole.identifiers.split())
    table = summary.definitions[0]
    assert (table.name, table.line, table.end_line) == ("TABLE", 2, 5)
    assert table.signature.startswith('TABLE: dict[str, int] = {\n    "alpha": ALPHA_VALUE,')
    assert "ALPHA_VALUE" in summary.identifiers.split()
    assert [(d.name, d.line) for d in summary.definitions[1:]] == [
        ("after", 6), ("TEXT", 8), ("NUMBERS", 10), ("Later", 13), ("LIMIT", 14)]


def test_triple_quotes_of_the_other_kind_or_in_one_line_strings_open_no_string() -> None:
    source = (b'QUOTES = (\'"""\', "\'\'\'")\n'  # neither opens a string
              b'EXAMPLE = """an example holding \'\'\' quotes"""\n'
              b'def later(value):\n'
              b'    # a comment\n'
              b'    return value + 1\n')
    skimmed = skim(source)
    assert len(skimmed.folded) == 1 and b"value + 1" not in skimmed.parsed
    assert b"a comment" not in skimmed.source
    # A `def` in a string stays: the quotes before it are open.
    in_string = b'TEXT = """\ndef example(x):\n    return x\n"""\n'
    assert skim(in_string).parsed == in_string


def test_a_fold_that_breaks_the_parse_is_undone() -> None:
    # The comment holds triple quotes, so it is not blanked, and hides the decorator from the
    # fold's look back: the folded text no longer parses (a decorator with nothing under it).
    source = (b'@decorator\n'
              b'# """ a comment that stays """\n'
              b'def decorated(x):\n'
              b'    return x\n')
    assert len(skim(source).folded) == 1
    summary = extract("python", source)
    whole = extract("python", source + b"#\t\n")  # a tab: nothing is cut
    assert summary.definitions == whole.definitions and summary.tokens == whole.tokens
    assert summary.definitions[0].signature.startswith("@decorator\n")


def test_functions_folded_one_after_another_share_one_placeholder() -> None:
    source = (b'class Client:\n'
              b'    """A client."""\n'
              b'\n'
              b'    def __init__(self, url):\n'
              b'        self.url = url\n'
              b'\n'
              b'    # fetching\n'
              b'    @cached\n'
              b'    def fetch(self, path: str) -> bytes:\n'
              b'        """Fetches."""\n'
              b'        return get(self.url + path)\n'
              b'\n'
              b'    def close(self):\n'
              b'        pass\n'
              b'\n'
              b'def helper():\n'
              b'    return Client("x")\n')
    skimmed = skim(source)
    runs = list(skimmed.folded.values())
    assert [[function.name for function in run.functions] for run in runs] == [
        ["__init__", "fetch", "close"], ["helper"]]
    assert skimmed.parsed.count(b"...") == 2 and skimmed.parsed.count(b"\n") == source.count(b"\n")
    summary = extract("python", source)
    whole = extract("python", source + b"#\t\n")  # a tab: nothing is cut
    assert summary.definitions == whole.definitions
    assert [(d.name, d.line, d.end_line) for d in summary.definitions] == [
        ("Client", 1, 14), ("__init__", 4, 5), ("fetch", 8, 11), ("close", 13, 14),
        ("helper", 16, 17)]
    assert summary.definitions[2].signature == "@cached\ndef fetch(self, path: str) -> bytes"
    assert summary.definitions[2].doc == "Fetches."
    assert "get" in summary.tokens[2].split() and "url" in summary.tokens[1].split()


def test_a_string_opened_after_a_quote_does_not_carry_a_body_on() -> None:
    # `'"""a ...'` holds triple quotes inside a one-line string: counted, they leave `first`
    # ending inside a string that `second`'s string seems to close, so that `first` would run on
    # over `second`.
    source = (b'class Cases:\n'
              b'    def first(self):\n'
              b'        cases = (\n'
              b'            (\'"""a continuation docstring.\\n\', 1),\n'
              b'        )\n'
              b'        return cases\n'
              b'\n'
              b'    def second(self):\n'
              b'        return """\n'
              b'text at column 0\n'
              b'"""\n')
    summary = extract("python", source)
    whole = extract("python", source + b"#\t\n")  # a tab: nothing is cut
    assert [d.name for d in summary.definitions] == ["Cases", "first", "second"]
    assert summary.definitions == whole.definitions
