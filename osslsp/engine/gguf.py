"""GGUF files: dequantized once through Transformers' GGUF support, then cached as a checkpoint.

Dequantizing SmolLM2's GGUF takes about 20 s on two cores; the cached safetensors load in under
a second, so every later start is fast. The cache folder is keyed by the file's hash.
"""

from __future__ import annotations

from pathlib import Path

from safetensors.torch import save_model
from transformers import AutoModelForCausalLM, AutoTokenizer

from osslsp.paths import build_once


def ensure_converted(gguf: Path, directory: Path) -> Path:
    """Write `gguf` as a safetensors checkpoint with its tokenizer into `directory`, once."""

    def convert(staging: Path) -> None:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
        tokenizer.save_pretrained(staging)
        # save_pretrained refuses models loaded from GGUF; their weights are plain tensors now.
        model.config.save_pretrained(staging)
        model.generation_config.save_pretrained(staging)
        save_model(model, str(staging / "model.safetensors"))

    return build_once(directory, "model.safetensors", convert)
