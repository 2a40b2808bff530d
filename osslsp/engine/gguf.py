"""GGUF files: dequantized once through Transformers' GGUF support, then cached as a checkpoint.

Dequantizing SmolLM2's GGUF takes about 20 s on two cores; the cached safetensors load in under
a second, so every later start is fast. The cache folder is keyed by the file's hash.
"""

from __future__ import annotations

import sys
from pathlib import Path

from osslsp.paths import build_once


def announce_conversion(gguf: Path, directory: Path) -> None:
    """Say on stderr that the first use converts `gguf`, unless it is converted already.
    Said when the model is resolved, before torch and Transformers are imported: importing them
    and converting take long enough that a silent first run looks hung."""
    if not (directory / "model.safetensors").exists():
        print(f"osslsp: the first use of {gguf.name} converts it to a checkpoint in {directory} "
              "(once, 20-60 s)", file=sys.stderr, flush=True)


def ensure_converted(gguf: Path, directory: Path) -> Path:
    """Write `gguf` as a safetensors checkpoint with its tokenizer into `directory`, once."""

    def convert(staging: Path) -> None:
        from safetensors.torch import save_model
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
        tokenizer.save_pretrained(staging)
        # save_pretrained refuses models loaded from GGUF; their weights are plain tensors now.
        model.config.save_pretrained(staging)
        model.generation_config.save_pretrained(staging)
        save_model(model, str(staging / "model.safetensors"))

    return build_once(directory, "model.safetensors", convert)
