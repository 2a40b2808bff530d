"""Loading a model onto its device: the one code path for tiny, converted GGUF and real checkpoints."""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from accelerate import dispatch_model, infer_auto_device_map, init_empty_weights
from accelerate.utils import set_module_tensor_to_device
from transformers import AutoConfig, AutoModelForCausalLM, GenerationConfig, Mxfp4Config, PreTrainedModel

from osslsp.models import ModelSource, ensure_built

log = logging.getLogger(__name__)

DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}


class ModelLoadError(Exception):
    """The model could not be loaded; the message says why and what to do."""


@dataclass
class LoadedModel:
    """A model on its device, and what the status and benchmarks report about it."""

    model: PreTrainedModel
    device: torch.device  # where inputs go (the first layer's device)
    dtype: torch.dtype
    load_seconds: float
    stop_ids: frozenset[int]  # the generation config's end-of-sequence ids

    def describe(self) -> dict[str, object]:
        memory = {}
        if self.device.type == "cuda":
            for index in range(torch.cuda.device_count()):
                memory[f"cuda:{index}"] = f"{torch.cuda.memory_allocated(index) / 2**30:.1f} GiB"
        return {
            "device": str(self.device),
            "dtype": str(self.dtype).removeprefix("torch."),
            "parameters": sum(p.numel() for p in self.model.parameters()),
            "load_seconds": round(self.load_seconds, 2),
            "memory": memory,
        }


def choose_device(device: str) -> str:
    """`auto` means CUDA when there is a GPU, else the CPU."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ModelLoadError("--device cuda was asked for, but torch sees no CUDA GPU (see `osslsp doctor`)")
    return device


def limit_cpu_threads() -> None:
    """Leave half the cores to the server and the indexer: with every core busy, OpenMP threads
    spinning against them made decode steps 20x slower on a 2-core machine."""
    torch.set_num_threads(max(1, min(8, (os.cpu_count() or 2) // 2)))


def choose_dtype(dtype: str, device: str) -> torch.dtype:
    """FP16 on GPUs; float32 on the CPU when FP16 was only the default, since CPUs run it slowly."""
    if device == "cpu" and dtype == "float16":
        log.info("float16 is slow on the CPU: running in float32")
        return torch.float32
    return DTYPES[dtype]


def _device_map(device: str, max_gpu_memory_gib: float) -> dict | str:
    """One GPU: everything on it. Several GPUs or a cap per card: accelerate splits the layers."""
    if device == "cpu":
        return {"": "cpu"}
    count = torch.cuda.device_count()
    if count == 1 and not max_gpu_memory_gib:
        return {"": 0}
    return "auto"


def _max_memory(device: str, max_gpu_memory_gib: float) -> dict | None:
    if device == "cpu" or not max_gpu_memory_gib:
        return None
    return {index: f"{max_gpu_memory_gib}GiB" for index in range(torch.cuda.device_count())}


def _stop_ids(model: PreTrainedModel) -> frozenset[int]:
    eos = model.generation_config.eos_token_id if model.generation_config else None
    eos = eos if eos is not None else model.config.eos_token_id
    return frozenset([eos] if isinstance(eos, int) else (eos or []))


def _random_model(config_dir: Path, dtype: torch.dtype, device: str, max_gpu_memory_gib: float) -> PreTrainedModel:
    """Random weights with a real config (benchmarks of real shapes), made on the devices themselves.

    Placed like a checkpoint would be: one device, or layers split by accelerate across GPUs
    within `max_gpu_memory_gib` each. Every weight gets small noise (untouched memory can hold NaNs).
    """
    raw = json.loads((config_dir / "config.json").read_text())
    raw.pop("quantization_config", None)  # random weights are not quantized
    config = AutoConfig.for_model(**raw)
    placement = _device_map(device, max_gpu_memory_gib)
    with init_empty_weights():
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    if placement == "auto":
        placement = infer_auto_device_map(model, max_memory=_max_memory(device, max_gpu_memory_gib),
                                          no_split_module_classes=model._no_split_modules, dtype=dtype)
    generators: dict[str, torch.Generator] = {}
    for prefix, where in placement.items():
        module = model.get_submodule(prefix) if prefix else model
        where = torch.device(f"cuda:{where}" if isinstance(where, int) else where)
        generator = generators.setdefault(str(where), torch.Generator(where).manual_seed(0))
        for name, parameter in module.named_parameters():
            value = torch.empty(parameter.shape, dtype=dtype, device=where).normal_(0.0, 0.02, generator=generator)
            set_module_tensor_to_device(module, name, where, value=value)
    model = dispatch_model(model, device_map=placement) if len(set(placement.values())) > 1 else model.to(where)
    if (config_dir / "generation_config.json").exists():
        model.generation_config = GenerationConfig.from_pretrained(config_dir)
    return model.eval()


def _from_checkpoint(path: Path, dtype: torch.dtype, device: str, max_gpu_memory_gib: float) -> PreTrainedModel:
    config = json.loads((path / "config.json").read_text())
    extra = {}
    if config.get("quantization_config", {}).get("quant_method") == "mxfp4":
        # The released gpt-oss checkpoint: experts in MXFP4, dequantized to the chosen dtype.
        extra["quantization_config"] = Mxfp4Config(dequantize=True)
    return AutoModelForCausalLM.from_pretrained(
        path,
        dtype=dtype,
        device_map=_device_map(device, max_gpu_memory_gib),
        max_memory=_max_memory(device, max_gpu_memory_gib),
        local_files_only=True,
        **extra,
    ).eval()


def _out_of_memory_message(source: ModelSource, error: Exception) -> str:
    free = ""
    if torch.cuda.is_available():
        free_bytes, total = torch.cuda.mem_get_info()
        free = f" (GPU has {free_bytes / 2**30:.1f} of {total / 2**30:.1f} GiB free)"
    return (
        f"not enough memory to load {source.spec}{free}: {error}. gpt-oss-20b needs 41.8 GB in FP16: "
        "one 48 GB+ GPU, or two 24 GB GPUs (set maxGpuMemoryGib). If another editor window already "
        "holds the model, set engine = \"shared\" so that windows share one copy."
    )


def load_model(source: ModelSource, dtype: str = "float16", device: str = "auto",
               max_gpu_memory_gib: float = 0.0) -> LoadedModel:
    """Load the model a source names; ModelLoadError with the reason and the fix on failure."""
    started = time.perf_counter()
    device = choose_device(device)
    if device == "cpu":
        limit_cpu_threads()
    torch_dtype = choose_dtype(dtype, device)
    try:
        ensure_built(source)
        if source.kind == "random":
            model = _random_model(source.weights, torch_dtype, device, max_gpu_memory_gib)
        else:
            weights = source.text_dir if source.kind == "gguf" else source.weights
            model = _from_checkpoint(weights, torch_dtype, device, max_gpu_memory_gib)
    except torch.OutOfMemoryError as error:
        raise ModelLoadError(_out_of_memory_message(source, error)) from error
    except (OSError, ValueError, KeyError) as error:
        raise ModelLoadError(f"could not load {source.spec} from {source.weights}: {error}") from error
    placement = getattr(model, "hf_device_map", {}) or {}
    if any(where in ("cpu", "disk") for where in placement.values()) and device == "cuda":
        log.warning("the model did not fit on the GPU(s): some layers run on the CPU and will be slow")
    return LoadedModel(
        model=model,
        device=model.get_input_embeddings().weight.device,
        dtype=torch_dtype,
        load_seconds=time.perf_counter() - started,
        stop_ids=_stop_ids(model),
    )
