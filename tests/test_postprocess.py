"""Post-processing: from what a chat model writes to what the editor shows."""

from __future__ import annotations

from osslsp.prompts.completion import Cursor
from osslsp.prompts.postprocess import clean_completion, final_channel

ADD = Cursor("a.py", "python", 'def add(a, b):\n    """Return the sum."""\n    ret', "\n\nprint(add(1, 2))\n")


def test_harmony_markers_and_analysis_are_dropped():
    raw = "<|channel|>analysis<|message|>think<|end|><|start|>assistant<|channel|>final<|message|>urn a + b<|return|>"
    assert final_channel(raw) == "urn a + b"
    assert final_channel("thinking so far", started_in_final=False) == ""


def test_closing_fence_and_prose_after_it_are_dropped():
    assert clean_completion("urn a + b\n```\nThis adds the numbers.", ADD, "```python\n    ret") == "urn a + b"


def test_a_restated_prefill_is_removed():
    assert clean_completion("```python\n    return a + b", ADD, "```python\n    return") == " a + b"


def test_block_ends_where_indentation_returns():
    cursor = Cursor("a.py", "python", "def add(a, b):\n", "\n\nprint(add(1, 2))\n")
    text = clean_completion("    total = a + b\n    return total\n\ndef other():\n    pass", cursor, "```python\n")
    assert text == "    total = a + b\n    return total"


def test_brace_block_keeps_its_closing_brace():
    cursor = Cursor("a.js", "javascript", "function f(a) {", "\n")
    assert clean_completion("\n  return a;\n}\nfunction g() {}", cursor, "") == "\n  return a;\n}"


def test_mid_line_cursor_gets_one_line_without_the_existing_tail():
    cursor = Cursor("a.py", "python", "print(add(", "))\n")
    assert clean_completion("1, 2))\nmore = 1", cursor, "") == "1, 2"


def test_copy_of_the_following_lines_is_cut():
    cursor = Cursor("a.py", "python", "def f():\n", "    x = 1\n    return x\n")
    assert clean_completion("    y = 2\n    x = 1\n    return x", cursor, "") == "    y = 2"


def test_whitespace_only_or_repeated_text_gives_nothing():
    assert clean_completion("   \n  ", ADD, "") is None
    cursor = Cursor("a.py", "python", "x = ", "compute()\n")
    assert clean_completion("compute()", cursor, "") is None
