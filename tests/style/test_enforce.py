"""Candidates held to the guide: passed untouched, fixed, cut back, or withheld."""

from __future__ import annotations

import pytest

from osslsp.style import StyleGuide, enforce_body, enforce_completion, resolve_guide, retry_instruction

PREFIX = 'import os\n\n\ndef helper(path):\n    """Help."""\n    return os.fspath(path)\n\n\n'


@pytest.fixture(scope="module")
def pep8() -> StyleGuide:
    return resolve_guide("python", None, "python-pep8")[0]


def test_a_compliant_candidate_passes_untouched(pep8: StyleGuide) -> None:
    candidate = 'def add_numbers(a, b):\n    """Add two numbers."""\n    return a + b\n'
    result = enforce_completion(PREFIX, candidate, "\n", "python", pep8)
    assert (result.text, result.fixed, result.rejected) == (candidate, [], [])


def test_a_camel_case_function_is_withheld_and_the_log_names_the_rule(pep8: StyleGuide) -> None:
    candidate = 'def addNumbers(a, b):\n    """Add two numbers."""\n    return a + b\n'
    result = enforce_completion(PREFIX, candidate, "\n", "python", pep8)
    assert result.text is None
    assert [(f.line, f.col, f.rule) for f in result.rejected] == [(9, 5, "naming-function")]
    assert "addNumbers" in result.rejected[0].message


def test_a_line_over_the_limit_is_cut_back_to_the_lines_before_it(pep8: StyleGuide) -> None:
    candidate = ('def add_numbers(a, b):\n    """Add two numbers."""\n    total = a + b\n'
                 '    return total + 100000000000000000000000000000000000000000000000000000000000000000\n')
    result = enforce_completion(PREFIX, candidate, "\n", "python", pep8)
    assert result.text == 'def add_numbers(a, b):\n    """Add two numbers."""\n    total = a + b'
    assert [f.rule for f in result.rejected] == ["line-length"]


def test_an_over_long_line_at_the_cursor_is_cut_between_words(pep8: StyleGuide) -> None:
    prefix = PREFIX + 'def show(values):\n    """Show."""\n    print('
    candidate = "first_value, second_value, third_value, fourth_value, fifth_value, sixth)"
    result = enforce_completion(prefix, candidate, "\n", "python", pep8)
    assert result.text == "first_value, second_value, third_value, fourth_value, fifth_value,"
    assert len("    print(" + result.text) <= 79


def test_a_missing_docstring_cuts_the_function_back_to_its_header(pep8: StyleGuide) -> None:
    result = enforce_completion(PREFIX, "def add_numbers(a, b):\n    return a + b\n", "\n", "python", pep8)
    assert result.text == "def add_numbers(a, b):"
    assert [f.rule for f in result.rejected] == ["docs-required"]


def test_a_body_without_the_required_docstring_is_withheld(pep8: StyleGuide) -> None:
    result = enforce_completion("def add_numbers(a, b):\n    ", "return a + b", "\n", "python", pep8)
    assert result.text is None
    assert [(f.line, f.rule) for f in result.rejected] == [(2, "docs-required")]


def test_trailing_whitespace_and_tabs_are_fixed(pep8: StyleGuide) -> None:
    candidate = 'def add_numbers(a, b):   \n    """Add two numbers."""\n\treturn a + b\n'
    result = enforce_completion(PREFIX, candidate, "\n", "python", pep8)
    assert result.text == 'def add_numbers(a, b):\n    """Add two numbers."""\n    return a + b\n'
    assert [fix.split(":")[0] for fix in result.fixed] == ["trailing-whitespace", "indent-char"]
    assert result.rejected == []


def test_a_two_space_candidate_is_reindented_to_four(pep8: StyleGuide) -> None:
    candidate = 'def add_numbers(a, b):\n  """Add two numbers."""\n  if a:\n    return a + b\n  return b\n'
    result = enforce_completion(PREFIX, candidate, "\n", "python", pep8)
    assert result.text == ('def add_numbers(a, b):\n    """Add two numbers."""\n    if a:\n'
                           '        return a + b\n    return b\n')


def test_indentation_inside_a_multiline_string_is_left_alone(pep8: StyleGuide) -> None:
    candidate = 'def add_numbers(a, b):\n  """Add two numbers.\n\n  More.\n  """\n  return a + b\n'
    result = enforce_completion(PREFIX, candidate, "\n", "python", pep8)
    assert result.text == "def add_numbers(a, b):"  # cut, not re-indented: the docstring's spaces are text


def test_violations_elsewhere_in_the_file_do_not_block_a_candidate(pep8: StyleGuide) -> None:
    prefix = 'def badName():\n    return 1\n\n\ndef fine():\n    """Fine."""\n    value = 1' + " " * 3 + "\n    return "
    result = enforce_completion(prefix, "value + 1", "\n", "python", pep8)
    assert (result.text, result.rejected) == ("value + 1", [])


def test_a_violation_already_on_the_cursor_line_does_not_block(pep8: StyleGuide) -> None:
    result = enforce_completion("def badName(", "first, second):", "\n    pass\n", "python", pep8)
    assert result.text == "first, second):"


def test_quotes_are_fixed_where_unambiguous() -> None:
    guide = resolve_guide("typescript", None)[0]
    prefix = "function greet(): string {\n  const name = 'x';\n  return "
    result = enforce_completion(prefix, '"hello " + name + "\'s";', "\n}\n", "typescript", guide)
    assert result.text == "'hello ' + name + \"'s\";"  # the second keeps double quotes: no escaping
    assert [fix.split(":")[0] for fix in result.fixed] == ["quote-style"]


def test_go_spaces_become_tabs() -> None:
    guide = resolve_guide("go", None)[0]
    result = enforce_completion("package p\n\nfunc f() int {\n", "    x := 1\n    return x\n", "}\n", "go", guide)
    assert result.text == "\tx := 1\n\treturn x\n"


def test_enforce_body_withholds_with_reasons_for_a_retry(pep8: StyleGuide) -> None:
    result = enforce_body(PREFIX, "def fetchAll(urls):\n    return urls\n", "\n", "python", pep8)
    assert result.text is None
    assert {f.rule for f in result.rejected} == {"naming-function", "docs-required"}
    instruction = retry_instruction(result.rejected)
    assert "fetchAll" in instruction and "docs-required" in instruction


def test_enforce_body_passes_a_fixed_body(pep8: StyleGuide) -> None:
    body = 'def fetch_all(urls):\n    """Fetch."""\n    return urls  \n'
    result = enforce_body(PREFIX, body, "\n", "python", pep8)
    assert result.text == 'def fetch_all(urls):\n    """Fetch."""\n    return urls\n'


def test_a_name_the_candidate_finishes_is_judged(pep8: StyleGuide) -> None:
    result = enforce_completion("class Store:\n    \"\"\"Store.\"\"\"\n\n    def get", "Data(self):", "\n", "python", pep8)
    assert result.text is None
    assert [f.rule for f in result.rejected] == ["naming-method"]
