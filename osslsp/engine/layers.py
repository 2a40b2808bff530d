"""A gpt-oss decoder layer as the fast runners read it: views of the loaded model's parameters in
the layouts the kernels want (experts output-major, q/k/v fused), and its slice of the KV cache."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from osslsp.engine.mxfp4 import Mxfp4Weight


@dataclass
class Layer:
    """One decoder layer's weights (views of the model's parameters) and its slice of the KV cache."""

    device: torch.device
    input_norm: torch.Tensor  # (H,)
    post_norm: torch.Tensor  # (H,)
    qkv_weight: torch.Tensor  # ((NQ + 2 NKV) D, H)
    qkv_bias: torch.Tensor  # ((NQ + 2 NKV) D,)
    o_weight: torch.Tensor  # (H, NQ D)
    o_bias: torch.Tensor  # (H,)
    sinks: torch.Tensor  # (NQ,)
    window: int  # sliding window, or kernels.NO_WINDOW
    router_weight: torch.Tensor  # (E, H)
    router_bias: torch.Tensor  # (E,)
    gate_up: torch.Tensor | Mxfp4Weight  # (E, 2I, H), rows interleaved gate0, up0, gate1, ...
    gate_up_bias: torch.Tensor  # (E, 2I)
    down: torch.Tensor | Mxfp4Weight  # (E, H, I)
    down_bias: torch.Tensor  # (E, H)
    k_cache: torch.Tensor  # (NKV, T, D)
    v_cache: torch.Tensor  # (NKV, T, D)


def experts_to_output_major(experts: torch.nn.Module) -> None:
    """(E, in, out) -> (E, out, in) in place, one expert at a time (no second copy of the weights)."""
    if not getattr(experts, "is_transposed", True):
        return  # already done (a second runner on the same model)
    with torch.no_grad():
        for name in ("gate_up_proj", "down_proj"):
            parameter = getattr(experts, name)
            n_experts, d_in, d_out = parameter.shape
            flat = parameter.data.view(n_experts, d_in * d_out)
            for expert in range(n_experts):
                flat[expert].copy_(parameter.data[expert].t().contiguous().view(-1))
            parameter.data = parameter.data.view(n_experts, d_out, d_in)
    experts.is_transposed = False  # what Transformers' grouped_mm/batched_mm read


def packed_experts(experts: torch.nn.Module) -> tuple[Mxfp4Weight, Mxfp4Weight] | None:
    """(gate_up, down) of experts loaded packed from an MXFP4 checkpoint, or None for FP16 experts."""
    if not hasattr(experts, "gate_up_proj_blocks"):
        return None
    return (Mxfp4Weight(experts.gate_up_proj_blocks, experts.gate_up_proj_scales),
            Mxfp4Weight(experts.down_proj_blocks, experts.down_proj_scales))


def fuse_qkv(attention: torch.nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """One (q|k|v) matrix and bias; the three projections become views of it (memory unchanged)."""
    projections = (attention.q_proj, attention.k_proj, attention.v_proj)
    weight = torch.cat([p.weight.data for p in projections])
    bias = torch.cat([p.bias.data for p in projections])
    start = 0
    for projection in projections:
        rows = projection.weight.shape[0]
        projection.weight.data = weight[start:start + rows]
        projection.bias.data = bias[start:start + rows]
        start += rows
    return weight, bias
