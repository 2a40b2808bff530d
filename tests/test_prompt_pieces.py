"""The small pure pieces prompts are made of: the harmony format, the budget search, the block test,
and the one sampling record the API's parameters derive from."""

from __future__ import annotations

import pytest

from osslsp.backends import GenerationSettings
from osslsp.prompts.budget import fit_tail, most_that_fits
from osslsp.prompts.completion_prompt import Cursor
from osslsp.prompts.harmony import FINAL_CHANNEL, final_message_ended, is_harmony_template
from osslsp.prompts.postprocess import block_finished
from osslsp.remote.protocol import sampling_params
from osslsp.sampling import Sampling


def test_the_final_message_has_ended_only_after_the_final_channel_closes():
    assert not final_message_ended("<|channel|>analysis<|message|>think<|end|>")
    assert not final_message_ended(f"<|channel|>analysis<|message|>x<|end|><|start|>assistant{FINAL_CHANNEL}a + b")
    assert final_message_ended(f"<|channel|>analysis<|message|>x<|end|><|start|>assistant{FINAL_CHANNEL}a + b<|end|>")


def test_a_template_is_harmony_only_with_channels_its_tokenizer_knows():
    assert is_harmony_template("{{ '<|channel|>' }}", 200005)
    assert not is_harmony_template("{{ '<|channel|>' }}", None)
    assert not is_harmony_template("{{ '<|im_start|>' }}", 1)


@pytest.mark.parametrize("limit", [0, 1, 7, 99, 100])
def test_the_search_finds_the_last_count_that_fits(limit):
    asked = []

    def fits(n: int) -> bool:
        asked.append(n)
        return n <= limit

    assert most_that_fits(100, fits) == limit
    assert len(asked) <= 8  # a binary search: log2(100) questions, not 100


def test_fitting_lines_keeps_whole_lines_nearest_the_end():
    text = "".join(f"line {n}\n" for n in range(10))
    assert fit_tail(text, 3, lambda part: part.count("\n")) == "line 7\nline 8\nline 9\n"


def test_a_block_is_finished_at_its_fence_or_past_its_last_line():
    cursor = Cursor("a.py", "python", "def add(a, b):\n    ", "\n")
    assert not block_finished("return a + b", cursor, "")
    assert block_finished("return a + b\n```", cursor, "")
    assert block_finished("return a + b\n\nprint(add(1, 2))\n", cursor, "")


def test_one_sampling_record_under_every_generation():
    api = sampling_params({"max_tokens": 5, "temperature": 0.5, "seed": 3}, 16)
    assert isinstance(api, Sampling) and isinstance(GenerationSettings(), Sampling)
    assert (api.max_new_tokens, api.max_tokens, api.temperature, api.top_p, api.seed) == (5, 5, 0.5, 1.0, 3)
