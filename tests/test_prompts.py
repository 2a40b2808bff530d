"""Prompts: rendered exactly like the official chat template, and always within budget."""

from __future__ import annotations

import hashlib

import pytest
from transformers import AutoTokenizer

from osslsp.paths import bundled_data
from osslsp.prompts.completion_prompt import Cursor, build_completion_prompt
from osslsp.prompts.harmony import FINAL_CHANNEL
from osslsp.prompts.modeltext import Message

# sha256 of chat_template.jinja as openai/gpt-oss-20b publishes it
OFFICIAL_TEMPLATE_SHA256 = "a4c9919cbbd4acdd51ccffe22da049264b1b73e59055fa58811a99efbd7c8146"


def test_bundled_template_is_the_official_one():
    bundled = (bundled_data("gpt-oss-20b") / "chat_template.jinja").read_bytes()
    assert hashlib.sha256(bundled).hexdigest() == OFFICIAL_TEMPLATE_SHA256


@pytest.mark.parametrize("effort", ["low", "medium", "high"])
def test_render_matches_transformers_byte_for_byte(tiny_dir, tiny_text, effort):
    messages = [Message("developer", "Complete the code.\nOnly code."),
                Message("user", 'def add(a, b):\n    """Sum «ü» {{ not jinja }}"""\n    return')]
    official = AutoTokenizer.from_pretrained(tiny_dir).apply_chat_template(
        [{"role": m.role, "content": m.content} for m in messages],
        tokenize=False, add_generation_prompt=True, reasoning_effort=effort)
    assert tiny_text.render(messages, reasoning_effort=effort) == official
    assert official.startswith("<|start|>system<|message|>") and f"Reasoning: {effort}" in official


def test_completion_prompt_prefills_the_final_channel_with_the_current_line(tiny_text):
    cursor = Cursor("a.py", "python", "import os\n\ndef main():\n    pri", "\n\nmain()\n")
    prompt = build_completion_prompt(tiny_text, cursor, 1024)
    assert prompt.text.endswith(FINAL_CHANNEL + "```python\n    pri")
    assert prompt.prefill == "```python\n    pri"
    # Suffix before prefix: typing only appends to the prompt.
    assert prompt.text.index("main()") < prompt.text.index("import os")
    assert prompt.ids == tiny_text.encode(prompt.text)


@pytest.fixture(scope="module")
def big_file() -> str:
    return "".join(f"def function_{i}(value):\n    return value * {i}\n\n" for i in range(3334))[:-1]


@pytest.mark.parametrize("budget", [1024, 2048, 8192])  # the tiny tokenizer needs ~510 for the instructions
def test_budget_holds_on_a_10000_line_file(tiny_text, big_file, budget):
    assert big_file.count("\n") + 1 >= 10_000
    middle = big_file.index("def function_1700(")
    cursor = Cursor("big.py", "python", big_file[:middle] + "def function_1700(va", big_file[middle + 20:])
    prompt = build_completion_prompt(tiny_text, cursor, budget, guide="Use snake_case.")
    assert len(prompt.ids) <= budget
    # Nearest first: the lines just above and below the cursor are in; the file's ends are not.
    assert "def function_1699(value):" in prompt.text
    assert "return value * 1700" in prompt.text
    assert "def function_0(" not in prompt.text and "def function_3333(" not in prompt.text
    assert prompt.sections["prefix"] > prompt.sections["suffix"]


def test_a_budget_too_small_for_the_instructions_is_a_clear_error(tiny_text):
    with pytest.raises(ValueError, match="cannot hold"):
        build_completion_prompt(tiny_text, Cursor("a.py", "python", "x = ", ""), 100)
