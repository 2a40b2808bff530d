"""Triton kernels for a batched decode step over a slotted KV cache (CUDA only; import lazily).

The batched runner keeps one cache slot per sequence: caches are (S, NKV, T, D) per layer, and
each row of a step names its slot and position in device tensors (so that the step is captured in
a CUDA graph and replayed with new rows, no host sync). A row is a running sequence's new token,
or one token of a short prompt chunk whose earlier tokens were written by earlier rows of the same
step (rows are written into the cache before any row attends).

Shapes: B rows, S slots, NQ query heads, NKV key/value heads, D head dim, T cache length.
`kernels_batch_torch` holds the same functions in plain PyTorch (the CPU path and the oracle).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from osslsp.engine.kernels import _attend_block


@triton.jit
def _rope_cache_slots_kernel(QKV, Cos, Sin, Positions, Slots, QOut, KCache, VCache, cache_len,
                             NQ: tl.constexpr, NKV: tl.constexpr, D: tl.constexpr, HEADS_PAD: tl.constexpr):
    row_index = tl.program_id(0)  # one program rotates all heads of one row
    heads = tl.arange(0, HEADS_PAD)[:, None]  # query heads, then key heads
    half = tl.arange(0, D // 2)[None, :]
    pos = tl.load(Positions + row_index)
    slot = tl.load(Slots + row_index).to(tl.int64)
    cos = tl.load(Cos + pos * (D // 2) + half).to(tl.float32)  # (1, D/2)
    sin = tl.load(Sin + pos * (D // 2) + half).to(tl.float32)
    row = QKV + row_index * (NQ + 2 * NKV) * D
    rotated = heads < NQ + NKV
    x1 = tl.load(row + heads * D + half, mask=rotated, other=0.0).to(tl.float32)
    x2 = tl.load(row + heads * D + D // 2 + half, mask=rotated, other=0.0).to(tl.float32)
    out1 = x1 * cos - x2 * sin
    out2 = x2 * cos + x1 * sin
    is_q = heads < NQ
    q_row = QOut + row_index * NQ * D + heads * D
    tl.store(q_row + half, out1.to(QOut.dtype.element_ty), mask=is_q)
    tl.store(q_row + D // 2 + half, out2.to(QOut.dtype.element_ty), mask=is_q)
    slot_base = slot * NKV * cache_len * D  # cache (S, NKV, T, D)
    is_k = rotated & (heads >= NQ)
    k_at = KCache + slot_base + (heads - NQ) * cache_len * D + pos * D
    tl.store(k_at + half, out1.to(KCache.dtype.element_ty), mask=is_k)
    tl.store(k_at + D // 2 + half, out2.to(KCache.dtype.element_ty), mask=is_k)
    kv_heads = tl.arange(0, NKV)[:, None]
    dims = tl.arange(0, D)[None, :]
    v = tl.load(row + (NQ + NKV) * D + kv_heads * D + dims)
    tl.store(VCache + slot_base + kv_heads * cache_len * D + pos * D + dims, v)


def rope_and_cache_slots(qkv: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, positions: torch.Tensor,
                         slots: torch.Tensor, q_out: torch.Tensor, k_cache: torch.Tensor,
                         v_cache: torch.Tensor) -> None:
    """qkv (B, (NQ+2NKV)*D) -> q_out (B, NQ*D) rotated; each row's k (rotated) and v written at its
    position (B,) into its slot (B,) of k_cache/v_cache (S, NKV, T, D). cos/sin: (T, D/2)."""
    _, n_kv, cache_len, head_dim = k_cache.shape
    n_q = q_out.shape[-1] // head_dim
    _rope_cache_slots_kernel[(qkv.shape[0],)](
        qkv, cos, sin, positions, slots, q_out, k_cache, v_cache, cache_len, NQ=n_q, NKV=n_kv, D=head_dim,
        HEADS_PAD=triton.next_power_of_2(n_q + n_kv), num_warps=4,
    )


@triton.jit
def _slots_attention_split_kernel(Q, KCache, VCache, Positions, Slots, PartAcc, PartMax, PartSum,
                                  cache_len, window, scale,
                                  NKV: tl.constexpr, GROUP: tl.constexpr, GROUP_PAD: tl.constexpr, D: tl.constexpr,
                                  N_SPLIT: tl.constexpr, BLOCK_N: tl.constexpr):
    row_index = tl.program_id(0)
    kv = tl.program_id(1)
    split = tl.program_id(2)
    seq_len = tl.load(Positions + row_index) + 1  # the row's own token is already in the cache
    slot = tl.load(Slots + row_index).to(tl.int64)
    lo = tl.maximum(seq_len - window, 0)
    chunk = tl.cdiv(tl.cdiv(seq_len - lo, N_SPLIT), BLOCK_N) * BLOCK_N
    start = lo + split * chunk
    end = tl.minimum(start + chunk, seq_len)

    rows = tl.arange(0, GROUP_PAD)  # the GROUP query heads that share this kv head, padded for tl.dot
    dims = tl.arange(0, D)
    q_base = Q + row_index * NKV * GROUP * D
    q = tl.load(q_base + (kv * GROUP + rows[:, None]) * D + dims[None, :], mask=rows[:, None] < GROUP, other=0.0)
    m_i = tl.full([GROUP_PAD], -1.0e30, tl.float32)
    l_i = tl.zeros([GROUP_PAD], tl.float32)
    acc = tl.zeros([GROUP_PAD, D], tl.float32)
    base = (slot * NKV + kv) * cache_len * D
    for block in range(start, end, BLOCK_N):
        keys = block + tl.arange(0, BLOCK_N)
        valid = keys < end
        k = tl.load(KCache + base + keys[:, None] * D + dims[None, :], mask=valid[:, None], other=0.0)
        v = tl.load(VCache + base + keys[:, None] * D + dims[None, :], mask=valid[:, None], other=0.0)
        m_i, l_i, acc = _attend_block(q, k, v, valid[None, :], scale, m_i, l_i, acc)
    part = ((row_index * NKV + kv) * N_SPLIT + split) * GROUP_PAD
    tl.store(PartAcc + (part + rows[:, None]) * D + dims[None, :], acc)
    tl.store(PartMax + part + rows, m_i)
    tl.store(PartSum + part + rows, l_i)


@triton.jit
def _slots_attention_combine_kernel(PartAcc, PartMax, PartSum, Sinks, Out,
                                    NKV: tl.constexpr, GROUP: tl.constexpr, GROUP_PAD: tl.constexpr,
                                    D: tl.constexpr, N_SPLIT: tl.constexpr):
    row_index = tl.program_id(0)
    head = tl.program_id(1)
    kv = head // GROUP
    row = head % GROUP
    splits = tl.arange(0, N_SPLIT)
    dims = tl.arange(0, D)
    part = ((row_index * NKV + kv) * N_SPLIT + splits) * GROUP_PAD + row  # (N_SPLIT,)
    m = tl.load(PartMax + part)
    l = tl.load(PartSum + part)
    acc = tl.load(PartAcc + part[:, None] * D + dims[None, :])
    sink = tl.load(Sinks + head).to(tl.float32)
    m_all = tl.maximum(tl.max(m, axis=0), sink)
    w = tl.exp(m - m_all)
    denominator = tl.sum(w * l, axis=0) + tl.exp(sink - m_all)  # the sink takes its share, adds nothing
    out = tl.sum(w[:, None] * acc, axis=0) / denominator
    tl.store(Out + (row_index * NKV * GROUP + head) * D + dims, out.to(Out.dtype.element_ty))


class SlotsDecodeAttention:
    """Flash-decoding for B rows, each in its own slot at its own position: per row and kv head the
    keys are split into N_SPLIT chunks, reduced by one program each, then combined with the sink."""

    N_SPLIT = 16
    BLOCK_N = 64

    def __init__(self, n_q: int, n_kv: int, head_dim: int, max_rows: int, device: torch.device):
        self.group = n_q // n_kv
        self.group_pad = max(16, triton.next_power_of_2(self.group))
        self.n_kv, self.head_dim = n_kv, head_dim
        shape = (max_rows, n_kv, self.N_SPLIT, self.group_pad)
        self.part_acc = torch.empty(*shape, head_dim, dtype=torch.float32, device=device)
        self.part_max = torch.empty(shape, dtype=torch.float32, device=device)
        self.part_sum = torch.empty(shape, dtype=torch.float32, device=device)

    def __call__(self, q: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor, positions: torch.Tensor,
                 slots: torch.Tensor, window: int, sinks: torch.Tensor, scale: float, out: torch.Tensor) -> None:
        """q (B, NQ*D) of rows at positions (B,) in slots (B,) -> out (B, NQ*D); caches (S, NKV, T, D)."""
        n_rows = q.shape[0]
        cache_len = k_cache.shape[2]
        _slots_attention_split_kernel[(n_rows, self.n_kv, self.N_SPLIT)](
            q, k_cache, v_cache, positions, slots, self.part_acc, self.part_max, self.part_sum,
            cache_len, window, scale,
            NKV=self.n_kv, GROUP=self.group, GROUP_PAD=self.group_pad, D=self.head_dim,
            N_SPLIT=self.N_SPLIT, BLOCK_N=self.BLOCK_N, num_warps=4,
        )
        _slots_attention_combine_kernel[(n_rows, self.n_kv * self.group)](
            self.part_acc, self.part_max, self.part_sum, sinks, out,
            NKV=self.n_kv, GROUP=self.group, GROUP_PAD=self.group_pad, D=self.head_dim, N_SPLIT=self.N_SPLIT,
            num_warps=2,
        )
