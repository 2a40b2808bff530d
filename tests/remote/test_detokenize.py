"""The answer's text decoded a few ids at a time equals decoding all its ids after every token,
with the real tokenizers (gpt-oss's o200k, the tiny model's byte-level BPE, SmolLM2's)."""

from __future__ import annotations

import random

import pytest

from osslsp.prompts.gpt_oss_tokenizer import gpt_oss_text, o200k_ranks
from osslsp.prompts.harmony import final_channel
from osslsp.prompts.modeltext import ModelText
from osslsp.remote.detokenize import IncrementalText

CORPUS = [
    "def add(a, b):\n    return a + b\n",
    "# Größe: 10 € — naïve café, 日本語のテキスト, Ελληνικά, 🙂🚀 and 👩‍👩‍👧 joined\n",
    "    s = '多字节字符串' + \"\\u00e9\"\n\tif x >= 0x1F600: pass  # emoji 😀\n",
    "<|start|>assistant<|channel|>final<|message|>print('ok')<|end|>",
]


def _random_ids(text: ModelText, count: int, seed: int) -> list[int]:
    """Ids drawn anywhere in the vocabulary: byte tokens that split characters, special tokens."""
    rng = random.Random(seed)
    return [rng.randrange(text.tokenizer.get_vocab_size(with_added_tokens=True)) for _ in range(count)]


def _check_every_prefix(decode, ids: list[int], shape=None) -> None:
    view = IncrementalText(decode, shape)
    for end in range(len(ids) + 1):
        whole = decode(ids[:end])
        assert view(ids[:end]) == (shape(whole) if shape else whole), f"after {end} ids"


@pytest.fixture(scope="module")
def gpt_oss() -> ModelText:
    return gpt_oss_text()


@pytest.mark.parametrize("skip_special", [False, True])
def test_equals_whole_decoding_with_gpt_oss_tokenizer(gpt_oss, skip_special):
    decode = lambda ids: gpt_oss.decode(ids, skip_special=skip_special)  # noqa: E731
    for sample in CORPUS:
        ids = gpt_oss.encode(sample)
        _check_every_prefix(decode, ids)
    _check_every_prefix(decode, _random_ids(gpt_oss, 400, seed=1))


def test_characters_split_across_tokens_appear_whole(gpt_oss):
    """A 4-byte emoji's bytes as separate tokens: nothing of it shows until its last byte."""
    ranks = o200k_ranks()  # a byte's rank is its token's id
    ids = [ranks[bytes([byte])] for byte in "a😀b€".encode()]
    _check_every_prefix(gpt_oss.decode, ids)
    view = IncrementalText(gpt_oss.decode)
    texts = [view(ids[:end]) for end in range(len(ids) + 1)]
    assert texts[-1] == "a😀b€"
    assert all(text.rstrip("\ufffd") in ("", "a", "a😀", "a😀b", "a😀b€") for text in texts)


def test_harmony_final_channel_view(gpt_oss):
    ids = gpt_oss.encode("<|channel|>analysis<|message|>think é<|end|><|start|>assistant<|channel|>final"
                         "<|message|>answer 日本<|return|>")
    _check_every_prefix(gpt_oss.decode, ids, lambda whole: final_channel(whole, started_in_final=False))


def test_equals_whole_decoding_with_tiny_tokenizer(tiny_text):
    for sample in CORPUS:
        _check_every_prefix(tiny_text.decode, tiny_text.encode(sample))
    _check_every_prefix(tiny_text.decode, _random_ids(tiny_text, 300, seed=2))


def test_a_list_that_does_not_grow_starts_over(gpt_oss):
    view = IncrementalText(gpt_oss.decode)
    first, second = gpt_oss.encode("hello world"), gpt_oss.encode("other text")
    assert view(first) == "hello world"
    assert view(second) == "other text"
    assert view(second[:1]) == gpt_oss.decode(second[:1])
