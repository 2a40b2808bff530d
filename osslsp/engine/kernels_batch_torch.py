"""Plain PyTorch versions of kernels_batch (same functions, same arguments): the batched runner on
the CPU, and the oracle its Triton kernels are checked against. Each row goes through the
single-sequence twin in kernels_torch on its own slot's cache."""

from __future__ import annotations

import torch

from osslsp.engine import kernels_torch


def rope_and_cache_slots(qkv: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, positions: torch.Tensor,
                         slots: torch.Tensor, q_out: torch.Tensor, k_cache: torch.Tensor,
                         v_cache: torch.Tensor) -> None:
    """qkv (B, (NQ+2NKV)*D) -> q_out (B, NQ*D); k/v of each row into its slot of caches (S, NKV, T, D)."""
    for row, slot in enumerate(slots.tolist()):
        kernels_torch.rope_and_cache(qkv[row:row + 1], cos, sin, positions[row:row + 1], q_out[row:row + 1],
                                     k_cache[slot], v_cache[slot])


class SlotsDecodeAttention:
    def __init__(self, n_q: int, n_kv: int, head_dim: int, max_rows: int, device: torch.device):
        pass

    def __call__(self, q: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor, positions: torch.Tensor,
                 slots: torch.Tensor, window: int, sinks: torch.Tensor, scale: float, out: torch.Tensor) -> None:
        """q (B, NQ*D) -> out (B, NQ*D): each row attends to its own slot up to its position."""
        for row, slot in enumerate(slots.tolist()):
            kernels_torch.prefill_attention(q[row:row + 1], k_cache[slot], v_cache[slot], positions[row:row + 1],
                                            window, sinks, scale, out[row:row + 1])
