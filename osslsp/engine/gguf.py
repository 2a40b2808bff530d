"""GGUF files: dequantized once through Transformers' GGUF support, then cached as a checkpoint.

Dequantizing SmolLM2's GGUF takes about 20 s on two cores; the cached safetensors load in under
a second, so every later start is fast. The cache folder is keyed by the file's hash.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from safetensors.torch import save_model
from transformers import AutoModelForCausalLM, AutoTokenizer


def ensure_converted(gguf: Path, directory: Path) -> Path:
    """Write `gguf` as a safetensors checkpoint with its tokenizer into `directory`, once."""
    if (directory / "config.json").exists():
        return directory
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".gguf-", dir=directory.parent))
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
        tokenizer.save_pretrained(staging)
        # save_pretrained refuses models loaded from GGUF; their weights are plain tensors now.
        model.config.save_pretrained(staging)
        model.generation_config.save_pretrained(staging)
        save_model(model, str(staging / "model.safetensors"))
        try:
            staging.rename(directory)
        except OSError:  # converted meanwhile by another process
            if not (directory / "config.json").exists():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return directory
