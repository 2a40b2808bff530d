"""The tiny model: a random-weight gpt-oss checkpoint for tests and smoke tests.

It has the real architecture (sliding and full attention, sinks, experts, YaRN rope) at toy size,
a small byte-level BPE tokenizer carrying the real harmony special tokens, and the real chat
template. It is built deterministically and saved like any checkpoint, then loaded through the
same code as a real one. Its text is meaningless.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import GenerationConfig, GptOssConfig, GptOssForCausalLM, PreTrainedTokenizerFast

from osslsp.paths import RANDOM_WEIGHTS_MARKER, build_once, bundled_data

VOCAB_SIZE = 768
# A fixed corpus, so the same tokenizer comes out everywhere.
_CORPUS = [
    "def add(a, b):\n    \"\"\"Return the sum of a and b.\"\"\"\n    return a + b\n",
    "class Point:\n    def __init__(self, x: int, y: int) -> None:\n        self.x = x\n        self.y = y\n",
    "for i in range(10):\n    if i % 2 == 0:\n        print(i)\n",
    "function render(items) {\n  return items.map((item) => `<li>${item}</li>`).join('');\n}\n",
    "func (c *Client) Fetch(url string) (*Response, error) {\n\treturn nil, nil\n}\n",
    "impl Point {\n    pub fn new(x: i32, y: i32) -> Self {\n        Self { x, y }\n    }\n}\n",
    "The function returns the sum of its two arguments. It is used by the parser.\n",
]


def _special_tokens() -> list[str]:
    """The real gpt-oss special tokens, in id order."""
    config = json.loads((bundled_data("gpt-oss-20b") / "tokenizer_config.json").read_text())
    decoder = config["added_tokens_decoder"]
    return [decoder[key]["content"] for key in sorted(decoder, key=int)]


def build_tokenizer() -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer trained on the fixed corpus, with the harmony specials."""
    template = (bundled_data("gpt-oss-20b") / "chat_template.jinja").read_text()
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=_special_tokens(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(_CORPUS * 4 + [template], trainer=trainer)
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<|startoftext|>",
        eos_token="<|return|>",
        pad_token="<|endoftext|>",
    )
    wrapped.chat_template = template
    return wrapped


def build_model(tokenizer: PreTrainedTokenizerFast) -> GptOssForCausalLM:
    """A two-layer gpt-oss (one sliding, one full attention layer) with seeded random weights."""
    real = json.loads((bundled_data("gpt-oss-20b") / "config.json").read_text())
    stop_ids = tokenizer.convert_tokens_to_ids(["<|return|>", "<|endoftext|>"])
    config = GptOssConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        num_local_experts=4,
        num_experts_per_tok=2,
        sliding_window=8,  # small, so tests cross the window
        layer_types=["sliding_attention", "full_attention"],
        max_position_embeddings=real["max_position_embeddings"],
        rope_theta=real["rope_theta"],
        rope_scaling=real["rope_scaling"],
        swiglu_limit=real["swiglu_limit"],
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=stop_ids,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    model = GptOssForCausalLM(config)
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id, eos_token_id=stop_ids, pad_token_id=tokenizer.pad_token_id
    )
    return model


def ensure_tiny(directory: Path) -> Path:
    """Build the tiny checkpoint into `directory` unless it is there."""

    def build(staging: Path) -> None:
        tokenizer = build_tokenizer()
        tokenizer.save_pretrained(staging)
        build_model(tokenizer).save_pretrained(staging)
        (staging / "README.txt").write_text("osslsp's tiny test model: random weights, meaningless text.\n")
        (staging / RANDOM_WEIGHTS_MARKER).write_text("random weights: this model's text is meaningless\n")

    return build_once(directory, "model.safetensors", build)
