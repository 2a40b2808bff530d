"""MXFP4 expert weights, the released gpt-oss checkpoint's format: packed, unpacked, checked, written.

Each expert projection is stored output-major as `{name}_blocks` (E, out, in/32, 16) uint8 and
`{name}_scales` (E, out, in/32) uint8. A block holds 32 consecutive inputs of one output: 16 bytes,
two E2M1 codes a byte (the low nibble is the even input), and one E8M0 scale s, so that
value = FP4_VALUES[code] * 2^(s - 127). Transformers' `integrations/mxfp4.py` is the reference.
The biases and every other tensor are bf16. This layout is already the fast runner's (E, out, in),
so the kernels read it as stored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from accelerate import init_empty_weights
from safetensors.torch import save_file
from transformers import AutoConfig, AutoModelForCausalLM

from osslsp.paths import build_once, bundled_data

# E2M1 codes 0..15: bit 3 is the sign, bits 2..1 the exponent, bit 0 the mantissa.
FP4_VALUES = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0)
# Midpoints between consecutive magnitudes: rounding to the nearest is a bucket search.
_FP4_MIDPOINTS = (0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0)
VALUES_PER_BLOCK = 32
BYTES_PER_BLOCK = VALUES_PER_BLOCK // 2
SCALE_BIAS = 127
EXPERT_PROJECTIONS = ("gate_up_proj", "down_proj")
INDEX_FILE = "model.safetensors.index.json"


class Mxfp4FormatError(ValueError):
    """A checkpoint's MXFP4 tensors are missing or misshapen; the message names the tensor."""


@dataclass(frozen=True)
class Mxfp4Weight:
    """One packed expert projection: blocks (E, out, in/32, 16) and scales (E, out, in/32), uint8."""

    blocks: torch.Tensor
    scales: torch.Tensor

    @property
    def shape(self) -> tuple[int, int, int]:
        """(E, out, in) of the unpacked weight."""
        experts, rows, groups, _ = self.blocks.shape
        return experts, rows, groups * VALUES_PER_BLOCK

    def nbytes(self) -> int:
        return self.blocks.nbytes + self.scales.nbytes


def quantize(weight: torch.Tensor) -> Mxfp4Weight:
    """weight (E, out, in) -> packed, each block of 32 inputs with the smallest power-of-two scale
    that brings its largest magnitude within E2M1's 6, each value rounded to the nearest code."""
    groups = weight.float().contiguous().unflatten(-1, (-1, VALUES_PER_BLOCK))  # (E, out, G, 32)
    amax = groups.abs().amax(dim=-1)  # (E, out, G)
    exponent = torch.ceil(torch.log2(amax / 6.0)).clamp(-SCALE_BIAS, SCALE_BIAS)  # all-zero blocks: -127
    scaled = groups / torch.exp2(exponent)[..., None]  # within [-6, 6]
    midpoints = torch.tensor(_FP4_MIDPOINTS, device=weight.device)
    codes = torch.bucketize(scaled.abs(), midpoints).to(torch.uint8)  # magnitude code 0..7
    codes |= (scaled < 0).to(torch.uint8) << 3
    blocks = codes[..., 0::2] | (codes[..., 1::2] << 4)  # (E, out, G, 16)
    return Mxfp4Weight(blocks.contiguous(), (exponent + SCALE_BIAS).to(torch.uint8))


def dequantize(weight: Mxfp4Weight, dtype: torch.dtype) -> torch.Tensor:
    """Packed -> (E, out, in) in `dtype`: each value exact in float32, rounded once to `dtype`,
    as Transformers' dequantization computes it."""
    lut = torch.tensor(FP4_VALUES, dtype=torch.float32, device=weight.blocks.device)
    low, high = weight.blocks & 0x0F, weight.blocks >> 4
    codes = torch.stack([low, high], dim=-1).flatten(-2).int()  # (E, out, G, 32), even inputs first
    scale = torch.exp2(weight.scales.float() - SCALE_BIAS)[..., None]  # (E, out, G, 1)
    return (lut[codes] * scale).flatten(-2).to(dtype)


# -- the released layout: names, shapes, checks -----------------------------------------------------


def expert_tensor_shapes(config) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    """Released name suffix -> (shape, dtype) of one layer's expert tensors."""
    experts, hidden, intermediate = config.num_local_experts, config.hidden_size, config.intermediate_size
    shapes = {}
    for name, rows, inputs in (("gate_up_proj", 2 * intermediate, hidden), ("down_proj", hidden, intermediate)):
        groups = inputs // VALUES_PER_BLOCK
        shapes[f"{name}_blocks"] = ((experts, rows, groups, BYTES_PER_BLOCK), torch.uint8)
        shapes[f"{name}_scales"] = ((experts, rows, groups), torch.uint8)
        shapes[f"{name}_bias"] = ((experts, rows), torch.bfloat16)
    return shapes


def check_expert_tensor(name: str, tensor: torch.Tensor | None, config) -> None:
    """Mxfp4FormatError naming `name` unless it is there with the released shape and dtype."""
    suffix = name.rsplit(".", 1)[-1]
    shape, dtype = expert_tensor_shapes(config)[suffix]
    if tensor is None:
        raise Mxfp4FormatError(f"the checkpoint has no tensor {name} (an MXFP4 checkpoint needs "
                               f"{suffix} {list(shape)} {str(dtype).removeprefix('torch.')} for every layer)")
    if tuple(tensor.shape) != shape:
        raise Mxfp4FormatError(f"tensor {name} has shape {list(tensor.shape)}; the config wants {list(shape)}")
    if suffix.endswith(("_blocks", "_scales")) and tensor.dtype != torch.uint8:
        raise Mxfp4FormatError(f"tensor {name} is {tensor.dtype}; MXFP4 blocks and scales are uint8")


def is_mxfp4_checkpoint(path: Path) -> bool:
    """The checkpoint's config says its experts are MXFP4 (the released gpt-oss layout)."""
    config = json.loads((path / "config.json").read_text())
    return config.get("quantization_config", {}).get("quant_method") == "mxfp4"


def checkpoint_files(path: Path) -> list[Path]:
    """The safetensors files of a checkpoint folder (sharded with an index, or one file)."""
    index = path / INDEX_FILE
    if index.exists():
        return [path / name for name in sorted(set(json.loads(index.read_text())["weight_map"].values()))]
    single = path / "model.safetensors"
    if not single.exists():
        raise Mxfp4FormatError(f"{path} has neither {INDEX_FILE} nor model.safetensors")
    return [single]


# -- writing a checkpoint in the released layout ----------------------------------------------------


def released_tensors(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A Transformers gpt-oss state dict (experts (E, in, out)) in the released layout: experts
    quantized to MXFP4, everything else bf16."""
    out = {}
    for name, tensor in state.items():
        if name.rsplit(".", 1)[-1] in EXPERT_PROJECTIONS:
            packed = quantize(tensor.transpose(1, 2))  # (E, out, in)
            out[f"{name}_blocks"], out[f"{name}_scales"] = packed.blocks.cpu(), packed.scales.cpu()
        else:
            out[name] = tensor.to(torch.bfloat16).cpu().contiguous()
    return out


def released_config(config: dict) -> dict:
    """A config with the released checkpoint's `quantization_config`."""
    real = json.loads((bundled_data("gpt-oss-20b") / "config.json").read_text())
    return {**config, "quantization_config": real["quantization_config"]}


def _random_layer_tensors(model, prefix: str, generator: torch.Generator, device: torch.device) -> dict:
    """Seeded random weights N(0, 0.02) for one module's parameters, norms included, as `random:`
    makes them. With norms of 1, 24 random layers are so sensitive that any two FP16
    implementations drift apart: our FP16 and MXFP4 runners agreed with each other exactly but were
    0.48 (relative) from Transformers' forward at 2k tokens, so no accuracy could be read off them."""
    module = model.get_submodule(prefix.rstrip(".")) if prefix else model
    tensors = {}
    for name, parameter in module.named_parameters(recurse=True):
        full = prefix + name
        if full.startswith("model.layers.") and not prefix:
            continue  # layers are written one shard each
        tensors[full] = torch.empty(parameter.shape, device=device).normal_(0.0, 0.02, generator=generator)
    return released_tensors(tensors)


def write_random_checkpoint(config_dir: Path, out_dir: Path, device: str | None = None, seed: int = 0) -> None:
    """Random weights with `config_dir`'s config, saved in the released layout (a shard a layer).

    Built on `device` (a GPU when there is one: the full-size model quantizes in seconds there)
    one layer at a time, so memory holds one layer's float weights at most.
    """
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    raw = json.loads((config_dir / "config.json").read_text())
    raw.pop("quantization_config", None)
    config = AutoConfig.for_model(**raw)
    with init_empty_weights():
        model = AutoModelForCausalLM.from_config(config)
    generator = torch.Generator(device).manual_seed(seed)
    weight_map = {}
    parts = [""] + [f"model.layers.{index}." for index in range(config.num_hidden_layers)]
    for number, prefix in enumerate(parts):
        shard = f"model-{number:05d}-of-{len(parts):05d}.safetensors"
        tensors = _random_layer_tensors(model, prefix, generator, device)
        save_file(tensors, out_dir / shard, metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(tensors, shard))
    (out_dir / "config.json").write_text(json.dumps(released_config(raw), indent=2))
    if (config_dir / "generation_config.json").exists():
        (out_dir / "generation_config.json").write_text((config_dir / "generation_config.json").read_text())
    (out_dir / INDEX_FILE).write_text(json.dumps({"metadata": {}, "weight_map": weight_map}, indent=2))


def ensure_random_checkpoint(config_dir: Path, out_dir: Path) -> Path:
    """Build the random released-layout checkpoint into `out_dir` unless it is there."""
    return build_once(out_dir, INDEX_FILE, lambda staging: write_random_checkpoint(config_dir, staging))
