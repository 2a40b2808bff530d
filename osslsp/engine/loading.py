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
from safetensors import safe_open
from transformers import AutoConfig, AutoModelForCausalLM, GenerationConfig, Mxfp4Config, PreTrainedModel

from osslsp.engine import mxfp4
from osslsp.models import ModelSource, ensure_built

log = logging.getLogger(__name__)

DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}
EXPERTS = ("auto", "fp16", "mxfp4")
# GPU memory beyond weights and KV cache: CUDA context, an 8k prefill's activations, allocator slack.
WORKSPACE_GIB = 1.5


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
    experts: ExpertsChoice | None = None

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
            "experts": self.experts.describe() if self.experts else None,
        }


@dataclass(frozen=True)
class ExpertsChoice:
    """How the experts are held, and why: `fp16` (the model's dtype) or `mxfp4` (packed on the GPU)."""

    format: str
    reason: str
    fp16_gib: float = 0.0  # what each format needs on the GPU: weights, KV cache and workspace
    mxfp4_gib: float = 0.0

    def describe(self) -> str:
        return f"{self.format}: {self.reason}"


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
    model = AutoModelForCausalLM.from_pretrained(
        path,
        dtype=dtype,
        device_map=_device_map(device, max_gpu_memory_gib),
        max_memory=_max_memory(device, max_gpu_memory_gib),
        local_files_only=True,
        **extra,
    ).eval()
    for parameter in model.parameters():  # some versions dequantize MXFP4 experts to bf16 whatever `dtype`
        if parameter.is_floating_point() and parameter.dtype != dtype:
            parameter.data = parameter.data.to(dtype)
    return model


def _expert_parameter_counts(config) -> tuple[int, int]:
    """(expert weights, everything else) parameter counts of a model with this config."""
    with init_empty_weights():
        model = AutoModelForCausalLM.from_config(config)
    experts = rest = 0
    for name, parameter in model.named_parameters():
        if name.rsplit(".", 1)[-1] in mxfp4.EXPERT_PROJECTIONS:
            experts += parameter.numel()
        else:
            rest += parameter.numel()
    return experts, rest


def _needs_gib(config, max_context: int) -> tuple[float, float]:
    """GiB on the GPU with FP16 experts and with MXFP4 experts (17 bytes per 32 weights)."""
    experts, rest = _expert_parameter_counts(config)
    cache = config.num_hidden_layers * 2 * config.num_key_value_heads * max_context * config.head_dim * 2
    common = 2 * rest + cache + WORKSPACE_GIB * 2**30
    return (common + 2 * experts) / 2**30, (common + experts * 17 / 32) / 2**30


def _gpu_capacity_gib(max_gpu_memory_gib: float) -> tuple[float, float]:
    """(one GPU, all GPUs) free memory in GiB, each card counted at most `max_gpu_memory_gib`."""
    free = [torch.cuda.mem_get_info(index)[0] / 2**30 for index in range(torch.cuda.device_count())]
    if max_gpu_memory_gib:
        free = [min(gib, max_gpu_memory_gib) for gib in free]
    return free[0], sum(free)


def choose_experts(source: ModelSource, setting: str, device: str, max_gpu_memory_gib: float,
                   max_context: int) -> ExpertsChoice:
    """FP16 or MXFP4 experts for this source, device and memory, with the reason; ModelLoadError
    when asked for what cannot be (no MXFP4 checkpoint) or when neither format fits the card.
    Reads the config only: no weight is loaded."""
    if setting not in EXPERTS:
        raise ModelLoadError(f"experts = {setting!r}: choose one of {', '.join(EXPERTS)}")
    if not _has_mxfp4_experts(source):
        if setting == "mxfp4":
            raise ModelLoadError(f"experts = mxfp4 needs a checkpoint with MXFP4 experts (the released "
                                 f"gpt-oss layout); {source.spec} has none")
        return ExpertsChoice("fp16", "the checkpoint's experts are not MXFP4")
    if device != "cuda":
        return ExpertsChoice("fp16", "no CUDA GPU: the MXFP4 experts are dequantized at load")
    config = AutoConfig.for_model(**_config_without_quantization(source.weights))
    fp16_gib, mxfp4_gib = _needs_gib(config, max_context)
    one_gpu, all_gpus = _gpu_capacity_gib(max_gpu_memory_gib)
    choice = decide_experts(setting, fp16_gib, mxfp4_gib, one_gpu, all_gpus)
    if choice is None:
        raise ModelLoadError(
            f"{source.spec} does not fit: with a {max_context}-token cache it needs {mxfp4_gib:.1f} GiB on one "
            f"GPU with MXFP4 experts or {fp16_gib:.1f} GiB with FP16 experts, and the GPU has {one_gpu:.1f} GiB "
            f"free{' (maxGpuMemoryGib)' if max_gpu_memory_gib else ''}. Free the GPU (another editor window? set "
            "engine = \"shared\"), lower osslsp.contextTokens, or use a larger card")
    return choice


def decide_experts(setting: str, fp16_gib: float, mxfp4_gib: float, one_gpu_gib: float,
                   all_gpus_gib: float) -> ExpertsChoice | None:
    """The experts for a released MXFP4 checkpoint on CUDA, given what each format needs and what
    is free (MXFP4 runs on one GPU; FP16 may be split across several); None when neither fits."""
    sizes = dict(fp16_gib=round(fp16_gib, 1), mxfp4_gib=round(mxfp4_gib, 1))
    if mxfp4_gib > one_gpu_gib and fp16_gib > all_gpus_gib:
        return None
    if setting in ("fp16", "mxfp4"):
        return ExpertsChoice(setting, f"asked for (experts = {setting})", **sizes)
    if fp16_gib <= all_gpus_gib:
        return ExpertsChoice("fp16", f"the GPU(s) hold FP16 experts ({fp16_gib:.1f} GiB of {all_gpus_gib:.1f} free)",
                             **sizes)
    return ExpertsChoice("mxfp4", f"FP16 experts need {fp16_gib:.1f} GiB and the GPU has {one_gpu_gib:.1f} free; "
                                  f"MXFP4 needs {mxfp4_gib:.1f}", **sizes)


def experts_report(source: ModelSource, setting: str = "auto", device: str = "auto", max_gpu_memory_gib: float = 0.0,
                   max_context: int = 8192) -> tuple[bool, str]:
    """For `osslsp doctor`: (fits, one line) on how the experts would be held and why, without loading."""
    try:
        choice = choose_experts(source, setting, choose_device(device), max_gpu_memory_gib, max_context)
    except ModelLoadError as error:
        return False, str(error)
    except OSError as error:  # a source built on first use (random-mxfp4) is not there yet
        return True, f"decided when the model is first built ({error.strerror})"
    sizes = f" (needs {choice.fp16_gib} GiB with FP16 experts, {choice.mxfp4_gib} with MXFP4)" if choice.fp16_gib else ""
    return True, choice.describe() + sizes


def _has_mxfp4_experts(source: ModelSource) -> bool:
    return source.kind in ("checkpoint", "random-mxfp4") and mxfp4.is_mxfp4_checkpoint(source.weights)


def _config_without_quantization(path: Path) -> dict:
    raw = json.loads((path / "config.json").read_text())
    raw.pop("quantization_config", None)
    return raw


def _from_released_layout(path: Path, dtype: torch.dtype, device: str, keep_packed: bool) -> PreTrainedModel:
    """A checkpoint in the released MXFP4 layout, read by us: every other tensor in `dtype`; the
    experts kept packed (buffers `{proj}_blocks`/`{proj}_scales` in place of the parameter `{proj}`,
    for the fast runner's MXFP4 kernels) or dequantized exactly as Transformers does."""
    config = AutoConfig.for_model(**_config_without_quantization(path))
    with init_empty_weights():
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    where = torch.device("cuda:0" if device == "cuda" else device)
    wanted = {name for name, _ in model.named_parameters()}
    experts_tensors: dict[str, torch.Tensor] = {}
    for file in mxfp4.checkpoint_files(path):
        with safe_open(str(file), framework="pt", device=str(where)) as stream:
            for name in stream.keys():
                if ".mlp.experts." in name:
                    experts_tensors[name] = stream.get_tensor(name)
                elif name in wanted:
                    value = stream.get_tensor(name)
                    expected = model.get_parameter(name).shape
                    if value.shape != expected:
                        raise mxfp4.Mxfp4FormatError(
                            f"tensor {name} has shape {list(value.shape)}; the config wants {list(expected)}")
                    set_module_tensor_to_device(model, name, where, value=value.to(dtype))
                    wanted.discard(name)
    for index, layer in enumerate(model.model.layers):
        prefix = f"model.layers.{index}.mlp.experts."
        for projection in mxfp4.EXPERT_PROJECTIONS:
            names = [prefix + projection + suffix for suffix in ("_blocks", "_scales", "_bias")]
            for name in names:
                mxfp4.check_expert_tensor(name, experts_tensors.get(name), config)
            blocks, scales, bias = (experts_tensors.pop(name) for name in names)
            _set_experts(layer.mlp.experts, projection, mxfp4.Mxfp4Weight(blocks, scales), keep_packed, dtype)
            set_module_tensor_to_device(model, names[2], where, value=bias.to(dtype))
            wanted -= {names[2], prefix + projection}
    if wanted:
        raise mxfp4.Mxfp4FormatError(f"the checkpoint has no tensor {sorted(wanted)[0]} "
                                     f"({len(wanted)} tensors of the model are missing)")
    model.to(where)  # the buffers made at construction (rotary tables)
    if (path / "generation_config.json").exists():
        model.generation_config = GenerationConfig.from_pretrained(path)
    return model.eval()


def _set_experts(experts: torch.nn.Module, projection: str, packed: mxfp4.Mxfp4Weight, keep_packed: bool,
                 dtype: torch.dtype) -> None:
    """One projection of one layer's experts: packed buffers, or the dequantized parameter (E, in, out)."""
    if keep_packed:
        del experts._parameters[projection]
        experts.register_buffer(f"{projection}_blocks", packed.blocks)
        experts.register_buffer(f"{projection}_scales", packed.scales)
    else:
        weight = mxfp4.dequantize(packed, dtype).transpose(1, 2).contiguous()  # Transformers' (E, in, out)
        experts._parameters[projection] = torch.nn.Parameter(weight, requires_grad=False)


def cap_gpu_memory(max_gpu_memory_gib: float) -> None:
    """Allocate at most `max_gpu_memory_gib` on each GPU, so that a smaller card can be simulated."""
    for index in range(torch.cuda.device_count()):
        total = torch.cuda.get_device_properties(index).total_memory
        torch.cuda.set_per_process_memory_fraction(min(1.0, max_gpu_memory_gib * 2**30 / total), index)


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
               max_gpu_memory_gib: float = 0.0, experts: str = "auto", max_context: int = 8192) -> LoadedModel:
    """Load the model a source names; ModelLoadError with the reason and the fix on failure.
    `experts` (auto, fp16, mxfp4) and `max_context` (the KV cache's length) decide how a released
    MXFP4 checkpoint's experts are held; see `choose_experts`."""
    device = choose_device(device)
    if device == "cpu":
        limit_cpu_threads()
    torch_dtype = choose_dtype(dtype, device)
    if device == "cuda" and max_gpu_memory_gib:
        cap_gpu_memory(max_gpu_memory_gib)
    try:
        ensure_built(source)
        started = time.perf_counter()  # building a source (tiny, GGUF, random-mxfp4) is not loading it
        choice = choose_experts(source, experts, device, max_gpu_memory_gib, max_context)
        log.info("experts: %s", choice.describe())
        if source.kind == "random":
            model = _random_model(source.weights, torch_dtype, device, max_gpu_memory_gib)
        elif choice.format == "mxfp4" or (device == "cpu" and _has_mxfp4_experts(source)):
            model = _from_released_layout(source.weights, torch_dtype, device, keep_packed=choice.format == "mxfp4")
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
        experts=choice,
    )
