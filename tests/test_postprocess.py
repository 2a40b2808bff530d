"""Post-processing: from what a chat model writes to what the editor shows."""

from __future__ import annotations

import pytest

from osslsp.prompts.completion_prompt import Cursor
from osslsp.prompts.harmony import final_channel
from osslsp.prompts.postprocess import brackets_balanced, clean_completion, replaced_length

ADD = Cursor("a.py", "python", 'def add(a, b):\n    """Return the sum."""\n    ret', "\n\nprint(add(1, 2))\n")


def cleaned_text(raw: str, cursor: Cursor, prefill: str = "", complete: bool = True) -> str | None:
    return clean_completion(raw, cursor, prefill, complete).text


def accepted(cursor: Cursor, raw: str) -> str:
    """The document after the user accepts the suggestion (its range replacing what it covers)."""
    cleaned = clean_completion(raw, cursor, "")
    assert cleaned.text is not None, cleaned.why
    return cursor.prefix + cleaned.text + cursor.suffix[cleaned.replaced:]


def test_harmony_markers_and_analysis_are_dropped():
    raw = "<|channel|>analysis<|message|>think<|end|><|start|>assistant<|channel|>final<|message|>urn a + b<|return|>"
    assert final_channel(raw) == "urn a + b"
    assert final_channel("thinking so far", started_in_final=False) == ""


def test_closing_fence_and_prose_after_it_are_dropped():
    assert cleaned_text("urn a + b\n```\nThis adds the numbers.", ADD, "```python\n    ret") == "urn a + b"


def test_a_restated_prefill_is_removed():
    cursor = Cursor("a.py", "python", 'def add(a, b):\n    return', "\n")
    assert cleaned_text("```python\n    return a + b", cursor, "```python\n    return") == " a + b"


def test_block_ends_where_indentation_returns():
    cursor = Cursor("a.py", "python", "def add(a, b):\n", "\n\nprint(add(1, 2))\n")
    text = cleaned_text("    total = a + b\n    return total\n\ndef other():\n    pass", cursor, "```python\n")
    assert text == "    total = a + b\n    return total"


def test_brace_block_keeps_its_closing_brace():
    cursor = Cursor("a.js", "javascript", "function f(a) {", "\n")
    assert cleaned_text("\n  return a;\n}\nfunction g() {}", cursor) == "\n  return a;\n}"


def test_mid_line_cursor_gets_one_line_without_the_existing_tail():
    cursor = Cursor("a.py", "python", "print(add(", "))\n")
    assert cleaned_text("1, 2))\nmore = 1", cursor) == "1, 2"


def test_copy_of_the_following_lines_is_cut():
    cursor = Cursor("a.py", "python", "def f():\n", "\n    x = 1\n    return x\n")
    assert cleaned_text("    y = 2\n    x = 1\n    return x", cursor) == "    y = 2"


def test_whitespace_only_or_repeated_text_gives_nothing_and_says_why():
    assert clean_completion("", ADD, "").why == "the model's answer was empty"
    assert cleaned_text("   \n  ", ADD) is None
    cursor = Cursor("a.py", "python", "x = ", "compute()\n")
    repeated = clean_completion("compute()", cursor, "")
    assert repeated.text is None and "repeats" in repeated.why


SORTED = Cursor("a.py", "python", "def f(items):\n    return sorted(", ")\n\n\nprint(f([2, 1]))\n")


def test_a_multi_line_answer_is_cut_where_the_file_parses_and_its_brackets_close():
    raw = "items,\n        key=lambda item: (item[0],\n                          item[1]"
    text = cleaned_text(raw, SORTED)
    assert text == "items,"
    assert brackets_balanced(text)


def test_an_answer_the_token_limit_cut_loses_its_unfinished_line():
    raw = "items, key=len)\n    total = sum(items)\n    retu"
    cursor = Cursor("a.py", "python", "def f(items):\n    ", "\n")
    assert cleaned_text("return sorted(items)\n    total = len(ite", cursor, complete=False) == "return sorted(items)"
    # Without its last word, `return sum(items) +` would break the file: withheld, not shown.
    assert "syntax errors" in clean_completion("return sum(items) + ite", cursor, "", complete=False).why
    assert cleaned_text("return sorted(items, key=le", cursor, complete=False) == "return sorted"
    assert clean_completion("return", cursor, "", complete=False).why == \
        "the token limit cut the answer's only line mid-word"
    assert cleaned_text(raw, SORTED, complete=True) == "items, key=len"


def test_a_block_that_would_break_the_file_is_withheld_with_the_reason():
    cursor = Cursor("a.py", "python", "def f(x):\n    if x:", "\n")
    broken = clean_completion("\n        y = x +* 2\n        return y", cursor, "")
    assert broken.text is None and "syntax errors" in broken.why


def test_a_one_line_answer_is_held_to_the_syntax_check_unless_the_model_is_meaningless():
    cursor = Cursor("a.py", "python", "def pairs(iterable):\n    for ", "\n        yield 1\n")
    broken = clean_completion("0, _ in enumerate(iterable):", cursor, "")
    assert broken.text is None and "syntax errors" in broken.why
    assert cleaned_text("i, _ in enumerate(iterable):", cursor) == "i, _ in enumerate(iterable):"
    assert clean_completion("0, _ in enumerate(iterable):", cursor, "", check_syntax=False).text is not None


def test_a_line_unfinished_before_the_answer_does_not_count_against_it():
    cursor = Cursor("a.py", "python", "def f(x):\n    if x", "\n        return 1\n")
    assert cleaned_text(" > 0", cursor) == " > 0"


def test_a_one_line_answer_may_open_a_block_whose_closer_is_below():
    cursor = Cursor("a.js", "javascript", "function f(x) {\n  if (x.len", "\n    return 1;\n  }\n}\n")
    assert cleaned_text(") {", cursor) == ") {"


def test_brackets_in_strings_do_not_count():
    assert brackets_balanced('print("(")')
    assert not brackets_balanced("f(a, [b)")
    assert brackets_balanced("a, b)")  # closes a bracket the line opened before the cursor


# What follows the cursor on its line, as each editor leaves it while the user types
# `print(f"total: {`: VS Code closes the bracket, the quote and the brace; Neovim (no plugin)
# closes nothing; the report had only the brace closed.
@pytest.mark.parametrize("editor, line_suffix", [("vscode", '}")'), ("brace only", "}"), ("neovim", "")])
@pytest.mark.parametrize("answer", ['total}")', "total}", "total"])
def test_the_rest_of_the_line_is_never_doubled(editor, line_suffix, answer):
    cursor = Cursor("a.py", "python", 'total = 3\nprint(f"total: {', line_suffix + "\n")
    document = accepted(cursor, answer)
    line = document.split("\n")[1]
    assert line.startswith('print(f"total: {total')
    assert line.count("}") <= 1 and line.count(")") <= 1 and line.count('"') <= 2


def test_a_suggestion_that_retypes_the_closers_replaces_them():
    assert replaced_length('total}")', "}") == 1
    assert replaced_length('total}")', '}")') == 0  # it ends with them: trimmed, no range needed
    assert replaced_length("x + 1", ")") == 0
    cursor = Cursor("a.py", "python", "items = [1]\nprint(len(", ")\n")
    assert accepted(cursor, "items))") == "items = [1]\nprint(len(items))\n"


def test_an_answer_stops_before_a_control_character():
    cursor = Cursor("a.py", "python", "x = ", "\n")
    assert cleaned_text("total\x02 + 1", cursor) == "total"
