"""Plain PyTorch versions of the fast runner's kernels (same functions, same arguments).

They run anywhere (the CPU tests drive the fast runner's steps through them) and are the oracle
the Triton kernels are checked against on the GPU. They follow the model's own arithmetic
(Transformers' gpt-oss modeling code) step by step, not the kernels' tiling.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from osslsp.engine.mxfp4 import dequantize

NO_WINDOW = 1 << 30  # the `window` of a full-attention layer


class NextNorm(NamedTuple):
    """What follows the experts of a layer at decode: residual (H,) += their output, then normed
    (H,) = RMSNorm(residual) with `weight`: the next layer's input norm, or the final norm."""

    residual: torch.Tensor
    weight: torch.Tensor
    eps: float
    normed: torch.Tensor


def add_rmsnorm(residual: torch.Tensor, delta: torch.Tensor | None, weight: torch.Tensor, eps: float,
                normed: torch.Tensor, pairs: torch.Tensor | None = None) -> None:
    """`pairs` is for the Triton kernels' packed GEMVs, which this module does not have: never read."""
    if delta is not None:
        residual += delta
    x = residual.float()
    y = weight.float() * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))
    normed.copy_(y.to(normed.dtype))


def rope_and_cache(qkv: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, positions: torch.Tensor,
                   q_out: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor) -> None:
    n_kv, _, head_dim = k_cache.shape
    n = qkv.shape[0]
    n_q = q_out.shape[-1] // head_dim
    heads = qkv.view(n, n_q + 2 * n_kv, head_dim)
    cos_p, sin_p = cos[positions][:, None].float(), sin[positions][:, None].float()  # (n, 1, D/2)
    first, second = heads[:, : n_q + n_kv].float().chunk(2, dim=-1)
    rotated = torch.cat([first * cos_p - second * sin_p, second * cos_p + first * sin_p], dim=-1).to(qkv.dtype)
    q_out.copy_(rotated[:, :n_q].reshape(n, n_q * head_dim))
    k_cache[:, positions] = rotated[:, n_q:].transpose(0, 1)  # (NKV, n, D)
    v_cache[:, positions] = heads[:, n_q + n_kv:].transpose(0, 1)


def decode_qkv_rope(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                    position: torch.Tensor, q_out: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor) -> None:
    rope_and_cache(F.linear(x, weight, bias), cos, sin, position, q_out, k_cache, v_cache)


def decode_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, out: torch.Tensor) -> None:
    out.copy_(F.linear(x, weight, bias))


def rope_and_cache_slots(qkv: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, positions: torch.Tensor,
                         slots: torch.Tensor, q_out: torch.Tensor, k_cache: torch.Tensor,
                         v_cache: torch.Tensor) -> None:
    """Each row of qkv (B, ...) through rope_and_cache on its own slot of caches (S, NKV, T, D)."""
    for row, slot in enumerate(slots.tolist()):
        rope_and_cache(qkv[row:row + 1], cos, sin, positions[row:row + 1], q_out[row:row + 1],
                       k_cache[slot], v_cache[slot])


def _attention(q: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor, q_positions: torch.Tensor,
               window: int, sinks: torch.Tensor, scale: float) -> torch.Tensor:
    """Eager attention with sinks, as the model computes it: q (n, NQ D) at q_positions (n,)."""
    n_kv, _, head_dim = k_cache.shape
    n = q.shape[0]
    n_q = q.shape[1] // head_dim
    length = int(q_positions.max()) + 1
    keys = k_cache[:, :length].float().repeat_interleave(n_q // n_kv, dim=0)  # (NQ, L, D)
    values = v_cache[:, :length].float().repeat_interleave(n_q // n_kv, dim=0)
    queries = q.view(n, n_q, head_dim).transpose(0, 1).float()  # (NQ, n, D)
    scores = queries @ keys.transpose(1, 2) * scale  # (NQ, n, L)
    key_positions = torch.arange(length, device=q.device)
    visible = (key_positions[None] <= q_positions[:, None]) & (key_positions[None] > q_positions[:, None] - window)
    scores = scores.masked_fill(~visible, float("-inf"))
    sink = sinks.float()[:, None, None].expand(n_q, n, 1)
    probs = torch.softmax(torch.cat([scores, sink], dim=-1), dim=-1)[..., :-1]  # the sink's share is dropped
    return (probs @ values).transpose(0, 1).reshape(n, n_q * head_dim)


class DecodeAttention:
    def __init__(self, n_q: int, n_kv: int, head_dim: int, device: torch.device):
        pass

    def __call__(self, q, k_cache, v_cache, position, window, sinks, scale, out) -> None:
        out.copy_(_attention(q[None], k_cache, v_cache, position, window, sinks, scale)[0])


class SlotsDecodeAttention:
    def __init__(self, n_q: int, n_kv: int, head_dim: int, max_rows: int, device: torch.device):
        pass

    def __call__(self, q, k_cache, v_cache, positions, slots, window, sinks, scale, out) -> None:
        """q (B, NQ*D) -> out (B, NQ*D): each row attends to its own slot up to its position."""
        for row, slot in enumerate(slots.tolist()):
            prefill_attention(q[row:row + 1], k_cache[slot], v_cache[slot], positions[row:row + 1],
                              window, sinks, scale, out[row:row + 1])


def prefill_attention(q, k_cache, v_cache, positions, window, sinks, scale, out) -> None:
    out.copy_(_attention(q, k_cache, v_cache, positions, window, sinks, scale))


def _expert(x, gate_up, gate_up_bias, down, down_bias, limit, alpha):
    """One expert on rows x (m, H); weights in the runner's (out, in) layout."""
    gate_up_out = x @ gate_up.t() + gate_up_bias  # (m, 2I), gate and up interleaved
    gate = gate_up_out[..., ::2].clamp(max=limit)
    up = gate_up_out[..., 1::2].clamp(min=-limit, max=limit)
    return ((up + 1) * (gate * torch.sigmoid(gate * alpha))) @ down.t() + down_bias


def prefill_experts(x, expert_ids, expert_weights, gate_up, gate_up_bias, down, down_bias, limit, alpha,
                    n_real=None):
    """x (n, H), expert_ids/weights (n, K) -> (n, H), experts in ascending order like the model's loop.
    Packed MXFP4 experts are dequantized to x's dtype first, as Transformers' loading does.
    n_real (1,): rows from this one on pad the call and come out equal to row n_real - 1."""
    if hasattr(gate_up, "blocks"):
        gate_up, down = dequantize(gate_up, x.dtype), dequantize(down, x.dtype)
    out = torch.zeros_like(x)
    for expert in expert_ids.unique().tolist():
        token, slot = torch.where(expert_ids == expert)
        y = _expert(x[token], gate_up[expert], gate_up_bias[expert], down[expert], down_bias[expert], limit, alpha)
        out.index_add_(0, token, (y * expert_weights[token, slot, None]).to(x.dtype))
    if n_real is not None:
        out = out[torch.minimum(torch.arange(x.shape[0], device=x.device), n_real - 1)]  # (n, H)
    return out


class DecodeExperts:
    x_pairs = None  # no word pairs wanted from add_rmsnorm

    def __init__(self, hidden: int, intermediate: int, top_k: int, dtype: torch.dtype, device: torch.device):
        pass

    def __call__(self, x, gate_up, gate_up_bias, down, down_bias, expert_ids, expert_weights, limit, alpha,
                 out, x_pairs_ready: bool = False, then_norm: NextNorm | None = None) -> None:
        out.copy_(prefill_experts(x[None], expert_ids[None], expert_weights[None], gate_up, gate_up_bias, down,
                                  down_bias, limit, alpha)[0])
        if then_norm is not None:
            add_rmsnorm(then_norm.residual, out, then_norm.weight, then_norm.eps, then_norm.normed)


DecodeExpertsMxfp4 = DecodeExperts  # prefill_experts reads either format


class DecodeRouter:
    def __init__(self, top_k: int, dtype: torch.dtype, device: torch.device):
        self.top_k = top_k

    def __call__(self, x, weight, bias) -> tuple[torch.Tensor, torch.Tensor]:
        top_values, top_ids = torch.topk(F.linear(x, weight, bias), self.top_k)  # (K,)
        return top_ids, torch.softmax(top_values, dim=-1, dtype=top_values.dtype)


class GreedyPick:
    def __init__(self, device: torch.device):
        pass

    def __call__(self, logits, token, position, pick, non_finite: int) -> None:
        """As kernels.GreedyPick, in device ops only (it can be captured in a CUDA graph)."""
        best = logits.reshape(-1).argmax().reshape(1)  # (1,)
        finite = torch.isfinite(logits).all()
        token.copy_(torch.where(finite, best, 0))
        pick.copy_(torch.where(finite, best, non_finite))
        position.add_(1)
