"""Triton kernels for the fast gpt-oss runner (CUDA only; import this module lazily).

Every kernel reads positions, lengths and expert ids from device tensors, never from the host,
so that a decode step can be captured in a CUDA graph and replayed without a host sync.

Shapes use: H hidden (2880), I expert intermediate (2880), E experts (32), K top-k (4),
NQ query heads (64), NKV key/value heads (8), D head dim (64), T cache length (max context).
`window` is the sliding window of a layer, or NO_WINDOW for full attention.
Expert weights are in the "output-major" layout (E, out, in): each output is a contiguous dot
product, which is what makes the decode GEMVs run near memory bandwidth.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

NO_WINDOW = 1 << 30  # the `window` of a full-attention layer

# ---------------------------------------------------------------------------------------------
# RMSNorm with the residual add in front of it
# ---------------------------------------------------------------------------------------------


@triton.jit
def _add_rmsnorm_kernel(Residual, Delta, Weight, Normed, n_cols, eps,
                        HAS_DELTA: tl.constexpr, BLOCK: tl.constexpr):
    row = tl.program_id(0)
    cols = tl.arange(0, BLOCK)
    mask = cols < n_cols
    x = tl.load(Residual + row * n_cols + cols, mask=mask, other=0.0)
    if HAS_DELTA:
        # residual + delta in fp16, as the model's own `residual + hidden_states` rounds.
        x = x + tl.load(Delta + row * n_cols + cols, mask=mask, other=0.0)
        tl.store(Residual + row * n_cols + cols, x, mask=mask)
    xf = x.to(tl.float32)
    variance = tl.sum(xf * xf, axis=0) / n_cols
    w = tl.load(Weight + cols, mask=mask, other=0.0).to(tl.float32)
    y = w * (xf * tl.rsqrt(variance + eps))
    tl.store(Normed + row * n_cols + cols, y.to(Normed.dtype.element_ty), mask=mask)


def add_rmsnorm(residual: torch.Tensor, delta: torch.Tensor | None, weight: torch.Tensor, eps: float,
                normed: torch.Tensor) -> None:
    """residual (n, H) += delta (n, H) in place (if given); normed (n, H) = RMSNorm(residual)."""
    n_rows, n_cols = residual.shape
    _add_rmsnorm_kernel[(n_rows,)](
        residual, delta if delta is not None else residual, weight, normed, n_cols, eps,
        HAS_DELTA=delta is not None, BLOCK=triton.next_power_of_2(n_cols), num_warps=8,
    )


# ---------------------------------------------------------------------------------------------
# Rotary embedding of q and k, and the write of k and v into the static cache
# ---------------------------------------------------------------------------------------------


@triton.jit
def _rope_cache_kernel(QKV, Cos, Sin, Positions, QOut, KCache, VCache, cache_len,
                       NQ: tl.constexpr, NKV: tl.constexpr, D: tl.constexpr, HEADS_PAD: tl.constexpr):
    token = tl.program_id(0)  # one program rotates all heads of one token
    heads = tl.arange(0, HEADS_PAD)[:, None]  # query heads, then key heads
    half = tl.arange(0, D // 2)[None, :]
    pos = tl.load(Positions + token)
    cos = tl.load(Cos + pos * (D // 2) + half).to(tl.float32)  # (1, D/2)
    sin = tl.load(Sin + pos * (D // 2) + half).to(tl.float32)
    row = QKV + token * (NQ + 2 * NKV) * D
    rotated = heads < NQ + NKV
    x1 = tl.load(row + heads * D + half, mask=rotated, other=0.0).to(tl.float32)
    x2 = tl.load(row + heads * D + D // 2 + half, mask=rotated, other=0.0).to(tl.float32)
    out1 = x1 * cos - x2 * sin
    out2 = x2 * cos + x1 * sin
    is_q = heads < NQ
    q_row = QOut + token * NQ * D + heads * D
    tl.store(q_row + half, out1.to(QOut.dtype.element_ty), mask=is_q)
    tl.store(q_row + D // 2 + half, out2.to(QOut.dtype.element_ty), mask=is_q)
    is_k = rotated & (heads >= NQ)
    k_slot = KCache + (heads - NQ) * cache_len * D + pos * D  # cache (NKV, T, D)
    tl.store(k_slot + half, out1.to(KCache.dtype.element_ty), mask=is_k)
    tl.store(k_slot + D // 2 + half, out2.to(KCache.dtype.element_ty), mask=is_k)
    kv_heads = tl.arange(0, NKV)[:, None]
    dims = tl.arange(0, D)[None, :]
    v = tl.load(row + (NQ + NKV) * D + kv_heads * D + dims)
    tl.store(VCache + kv_heads * cache_len * D + pos * D + dims, v)


def rope_and_cache(qkv: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, positions: torch.Tensor,
                   q_out: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor) -> None:
    """qkv (n, (NQ+2NKV)*D) -> q_out (n, NQ*D) rotated; k rotated and v written at `positions` (n,)
    into k_cache/v_cache (NKV, T, D). cos/sin: (T, D/2), the model's own rotary tables."""
    n_kv, cache_len, head_dim = k_cache.shape
    n_q = q_out.shape[-1] // head_dim
    _rope_cache_kernel[(qkv.shape[0],)](
        qkv, cos, sin, positions, q_out, k_cache, v_cache, cache_len, NQ=n_q, NKV=n_kv, D=head_dim,
        HEADS_PAD=triton.next_power_of_2(n_q + n_kv), num_warps=4,
    )


# ---------------------------------------------------------------------------------------------
# Attention with sinks: decode (one query, split over the keys) and prefill (flash attention)
# ---------------------------------------------------------------------------------------------


@triton.jit
def _attend_block(q, k, v, visible, scale, m_i, l_i, acc):
    """One key block of flash attention: scores of the visible keys folded into the running max
    m_i (rows,), sum l_i (rows,) and unnormalised output acc (rows, D)."""
    s = tl.where(visible, tl.dot(q, tl.trans(k)) * scale, float("-inf"))  # (rows, BLOCK_N)
    m_new = tl.maximum(m_i, tl.max(s, axis=1))
    alpha = tl.exp(m_i - m_new)
    p = tl.exp(s - m_new[:, None])
    l_i = l_i * alpha + tl.sum(p, axis=1)
    acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v)
    return m_new, l_i, acc


@triton.jit
def _decode_attention_split_kernel(Q, KCache, VCache, Position, PartAcc, PartMax, PartSum,
                                   cache_len, window, scale,
                                   GROUP: tl.constexpr, GROUP_PAD: tl.constexpr, D: tl.constexpr,
                                   N_SPLIT: tl.constexpr, BLOCK_N: tl.constexpr):
    kv = tl.program_id(0)
    split = tl.program_id(1)
    seq_len = tl.load(Position) + 1  # the new token is already in the cache
    lo = tl.maximum(seq_len - window, 0)
    chunk = tl.cdiv(tl.cdiv(seq_len - lo, N_SPLIT), BLOCK_N) * BLOCK_N
    start = lo + split * chunk
    end = tl.minimum(start + chunk, seq_len)

    rows = tl.arange(0, GROUP_PAD)  # the GROUP query heads that share this kv head, padded for tl.dot
    dims = tl.arange(0, D)
    q = tl.load(Q + (kv * GROUP + rows[:, None]) * D + dims[None, :], mask=rows[:, None] < GROUP, other=0.0)
    m_i = tl.full([GROUP_PAD], -1.0e30, tl.float32)
    l_i = tl.zeros([GROUP_PAD], tl.float32)
    acc = tl.zeros([GROUP_PAD, D], tl.float32)
    base = kv * cache_len * D
    for block in range(start, end, BLOCK_N):
        keys = block + tl.arange(0, BLOCK_N)
        valid = keys < end
        k = tl.load(KCache + base + keys[:, None] * D + dims[None, :], mask=valid[:, None], other=0.0)
        v = tl.load(VCache + base + keys[:, None] * D + dims[None, :], mask=valid[:, None], other=0.0)
        m_i, l_i, acc = _attend_block(q, k, v, valid[None, :], scale, m_i, l_i, acc)
    part = (kv * N_SPLIT + split) * GROUP_PAD
    tl.store(PartAcc + (part + rows[:, None]) * D + dims[None, :], acc)
    tl.store(PartMax + part + rows, m_i)
    tl.store(PartSum + part + rows, l_i)


@triton.jit
def _decode_attention_combine_kernel(PartAcc, PartMax, PartSum, Sinks, Out,
                                     GROUP: tl.constexpr, GROUP_PAD: tl.constexpr, D: tl.constexpr,
                                     N_SPLIT: tl.constexpr):
    head = tl.program_id(0)
    kv = head // GROUP
    row = head % GROUP
    splits = tl.arange(0, N_SPLIT)
    dims = tl.arange(0, D)
    part = (kv * N_SPLIT + splits) * GROUP_PAD + row  # (N_SPLIT,)
    m = tl.load(PartMax + part)
    l = tl.load(PartSum + part)
    acc = tl.load(PartAcc + part[:, None] * D + dims[None, :])
    sink = tl.load(Sinks + head).to(tl.float32)
    m_all = tl.maximum(tl.max(m, axis=0), sink)
    w = tl.exp(m - m_all)
    denominator = tl.sum(w * l, axis=0) + tl.exp(sink - m_all)  # the sink takes its share, adds nothing
    out = tl.sum(w[:, None] * acc, axis=0) / denominator
    tl.store(Out + head * D + dims, out.to(Out.dtype.element_ty))


class DecodeAttention:
    """Flash-decoding for one new token: the keys are split into N_SPLIT chunks per kv head, each
    chunk reduced by one program, then the chunks and the head's sink are combined."""

    N_SPLIT = 16
    BLOCK_N = 64

    def __init__(self, n_q: int, n_kv: int, head_dim: int, device: torch.device):
        self.group = n_q // n_kv
        self.group_pad = max(16, triton.next_power_of_2(self.group))
        self.n_kv, self.head_dim = n_kv, head_dim
        shape = (n_kv, self.N_SPLIT, self.group_pad)
        self.part_acc = torch.empty(*shape, head_dim, dtype=torch.float32, device=device)
        self.part_max = torch.empty(shape, dtype=torch.float32, device=device)
        self.part_sum = torch.empty(shape, dtype=torch.float32, device=device)

    def __call__(self, q: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor, position: torch.Tensor,
                 window: int, sinks: torch.Tensor, scale: float, out: torch.Tensor) -> None:
        """q (NQ*D,) of the token at `position` (1,) -> out (NQ*D,); caches (NKV, T, D)."""
        cache_len = k_cache.shape[1]
        _decode_attention_split_kernel[(self.n_kv, self.N_SPLIT)](
            q, k_cache, v_cache, position, self.part_acc, self.part_max, self.part_sum,
            cache_len, window, scale,
            GROUP=self.group, GROUP_PAD=self.group_pad, D=self.head_dim,
            N_SPLIT=self.N_SPLIT, BLOCK_N=self.BLOCK_N, num_warps=4,
        )
        _decode_attention_combine_kernel[(self.n_kv * self.group,)](
            self.part_acc, self.part_max, self.part_sum, sinks, out,
            GROUP=self.group, GROUP_PAD=self.group_pad, D=self.head_dim, N_SPLIT=self.N_SPLIT, num_warps=2,
        )


@triton.jit(do_not_specialize=["n_new"])  # one compiled variant for every prompt length
def _prefill_attention_kernel(Q, KCache, VCache, Sinks, Positions, Out, n_new, cache_len, window, scale,
                              NQ: tl.constexpr, GROUP: tl.constexpr, D: tl.constexpr,
                              BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    block_m = tl.program_id(0)
    head = tl.program_id(1)
    kv = head // GROUP
    rows = block_m * BLOCK_M + tl.arange(0, BLOCK_M)  # index among the new tokens
    row_ok = rows < n_new
    q_pos = tl.load(Positions + rows, mask=row_ok, other=0)
    dims = tl.arange(0, D)
    q = tl.load(Q + rows[:, None] * NQ * D + head * D + dims[None, :], mask=row_ok[:, None], other=0.0)
    hi = tl.max(tl.where(row_ok, q_pos, 0), axis=0) + 1  # one past the last query's position
    first = tl.min(tl.where(row_ok, q_pos, 1 << 40), axis=0)
    lo = tl.maximum(first - window + 1, 0) // BLOCK_N * BLOCK_N
    m_i = tl.full([BLOCK_M], -1.0e30, tl.float32)
    l_i = tl.zeros([BLOCK_M], tl.float32)
    acc = tl.zeros([BLOCK_M, D], tl.float32)
    base = kv * cache_len * D
    for block in range(lo, hi, BLOCK_N):
        keys = block + tl.arange(0, BLOCK_N)
        k = tl.load(KCache + base + keys[:, None] * D + dims[None, :], mask=keys[:, None] < hi, other=0.0)
        v = tl.load(VCache + base + keys[:, None] * D + dims[None, :], mask=keys[:, None] < hi, other=0.0)
        visible = (keys[None, :] <= q_pos[:, None]) & (keys[None, :] > q_pos[:, None] - window)
        m_i, l_i, acc = _attend_block(q, k, v, visible, scale, m_i, l_i, acc)
    sink = tl.load(Sinks + head).to(tl.float32)
    m_all = tl.maximum(m_i, sink)
    alpha = tl.exp(m_i - m_all)
    l_all = l_i * alpha + tl.exp(sink - m_all)
    out = acc * (alpha / l_all)[:, None]
    tl.store(Out + rows[:, None] * NQ * D + head * D + dims[None, :], out.to(Out.dtype.element_ty),
             mask=row_ok[:, None])


def prefill_attention(q: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor, positions: torch.Tensor,
                      window: int, sinks: torch.Tensor, scale: float, out: torch.Tensor) -> None:
    """Causal (optionally sliding-window) attention with sinks for n new tokens at `positions` (n,)
    (ascending), against the cache that already holds them. q, out: (n, NQ*D)."""
    n_kv, cache_len, head_dim = k_cache.shape
    n_new = q.shape[0]
    n_q = q.shape[1] // head_dim
    block_m = 64 if n_new > 16 else 16
    _prefill_attention_kernel[(triton.cdiv(n_new, block_m), n_q)](
        q, k_cache, v_cache, sinks, positions, out, n_new, cache_len, window, scale,
        NQ=n_q, GROUP=n_q // n_kv, D=head_dim, BLOCK_M=block_m, BLOCK_N=64, num_warps=4, num_stages=3,
    )


# ---------------------------------------------------------------------------------------------
# Experts at decode: GEMVs over the top-k experts' rows, picked by index on the device
# ---------------------------------------------------------------------------------------------


@triton.jit
def _swiglu(gate, up, limit, alpha):
    """gpt-oss's clamped SwiGLU: (clamp(up) + 1) * g * sigmoid(alpha * g), g = min(gate, limit)."""
    gate = tl.minimum(gate, limit)
    up = tl.minimum(tl.maximum(up, -limit), limit)
    return (up + 1.0) * (gate * tl.sigmoid(gate * alpha))


@triton.jit
def _expert_gate_up_gemv_kernel(X, W, Bias, ExpertIds, Act, limit, alpha,
                                H: tl.constexpr, I: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_K: tl.constexpr):
    block_m = tl.program_id(0)
    slot = tl.program_id(1)  # which of the top-k experts
    expert = tl.load(ExpertIds + slot).to(tl.int64)
    rows = block_m * BLOCK_M + tl.arange(0, BLOCK_M)  # intermediate index; gate row 2j, up row 2j+1
    cols = tl.arange(0, BLOCK_K)
    gate_rows = W + expert * (2 * I * H) + (2 * rows[:, None]) * H + cols[None, :]
    acc_gate = tl.zeros([BLOCK_M, BLOCK_K], tl.float32)
    acc_up = tl.zeros([BLOCK_M, BLOCK_K], tl.float32)
    for k in range(0, H, BLOCK_K):
        in_range = (k + cols) < H
        x = tl.load(X + k + cols, mask=in_range, other=0.0).to(tl.float32)
        w_gate = tl.load(gate_rows + k, mask=in_range[None, :], other=0.0)
        w_up = tl.load(gate_rows + H + k, mask=in_range[None, :], other=0.0)
        acc_gate += w_gate.to(tl.float32) * x[None, :]
        acc_up += w_up.to(tl.float32) * x[None, :]
    gate = tl.sum(acc_gate, axis=1) + tl.load(Bias + expert * 2 * I + 2 * rows).to(tl.float32)
    up = tl.sum(acc_up, axis=1) + tl.load(Bias + expert * 2 * I + 2 * rows + 1).to(tl.float32)
    tl.store(Act + slot * I + rows, _swiglu(gate, up, limit, alpha).to(Act.dtype.element_ty))


@triton.jit
def _expert_down_gemv_kernel(Act, W, Bias, ExpertIds, ExpertWeights, Out,
                             H: tl.constexpr, I: tl.constexpr, TOP_K: tl.constexpr,
                             BLOCK_M: tl.constexpr, BLOCK_K: tl.constexpr):
    # out = sum_k w_k (W_k a_k + b_k) = sum_k W_k (w_k a_k) + sum_k w_k b_k: one accumulator, and the
    # TOP_K experts' tiles are loaded in the same iteration (more bytes in flight per program).
    rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)  # hidden index
    cols = tl.arange(0, BLOCK_K)
    acc = tl.zeros([BLOCK_M, BLOCK_K], tl.float32)
    for k in range(0, I, BLOCK_K):
        in_range = (k + cols) < I
        for slot in tl.static_range(TOP_K):
            expert = tl.load(ExpertIds + slot).to(tl.int64)
            a = tl.load(Act + slot * I + k + cols, mask=in_range, other=0.0).to(tl.float32)
            a = a * tl.load(ExpertWeights + slot).to(tl.float32)
            w = tl.load(W + expert * (H * I) + rows[:, None] * I + k + cols[None, :], mask=in_range[None, :],
                        other=0.0)
            acc += w.to(tl.float32) * a[None, :]
    total = tl.sum(acc, axis=1)
    for slot in tl.static_range(TOP_K):
        expert = tl.load(ExpertIds + slot).to(tl.int64)
        total += tl.load(ExpertWeights + slot).to(tl.float32) * tl.load(Bias + expert * H + rows).to(tl.float32)
    tl.store(Out + rows, total.to(Out.dtype.element_ty))


class DecodeExperts:
    """The top-k experts of one token: gate/up GEMV + SwiGLU, then down GEMV + weighted sum."""

    def __init__(self, hidden: int, intermediate: int, top_k: int, dtype: torch.dtype, device: torch.device,
                 gate_up_block: tuple[int, int, int] = (16, 256, 8), down_block: tuple[int, int, int] = (1, 1024, 4)):
        self.hidden, self.intermediate, self.top_k = hidden, intermediate, top_k
        self.gate_up_block, self.down_block = gate_up_block, down_block
        self.act = torch.empty(top_k, intermediate, dtype=dtype, device=device)  # (K, I)

    def __call__(self, x: torch.Tensor, gate_up: torch.Tensor, gate_up_bias: torch.Tensor, down: torch.Tensor,
                 down_bias: torch.Tensor, expert_ids: torch.Tensor, expert_weights: torch.Tensor,
                 limit: float, alpha: float, out: torch.Tensor) -> None:
        """x (H,); gate_up (E, 2I, H) interleaved gate/up rows; down (E, H, I); expert_ids/weights (K,);
        out (H,) = sum_k weight_k * expert_k(x)."""
        self.gate_up(x, gate_up, gate_up_bias, expert_ids, limit, alpha)
        self.down(down, down_bias, expert_ids, expert_weights, out)

    def gate_up(self, x, gate_up, gate_up_bias, expert_ids, limit: float, alpha: float) -> None:
        """self.act (K, I) = SwiGLU of each chosen expert's gate/up projection of x (H,)."""
        bm, bk, warps = self.gate_up_block
        _expert_gate_up_gemv_kernel[(triton.cdiv(self.intermediate, bm), self.top_k)](
            x, gate_up, gate_up_bias, expert_ids, self.act, limit, alpha,
            H=self.hidden, I=self.intermediate, BLOCK_M=bm, BLOCK_K=bk, num_warps=warps,
        )

    def down(self, down, down_bias, expert_ids, expert_weights, out) -> None:
        """out (H,) = sum over the chosen experts of weight_k * (down_k @ act_k + bias_k)."""
        bm, bk, warps = self.down_block
        _expert_down_gemv_kernel[(triton.cdiv(self.hidden, bm),)](
            self.act, down, down_bias, expert_ids, expert_weights, out,
            H=self.hidden, I=self.intermediate, TOP_K=self.top_k, BLOCK_M=bm, BLOCK_K=bk, num_warps=warps,
        )


# ---------------------------------------------------------------------------------------------
# Experts at prefill: grouped GEMMs over (token, expert) pairs sorted by expert
# ---------------------------------------------------------------------------------------------


@triton.jit(do_not_specialize=["n_pairs"])
def _expert_gate_up_gemm_kernel(X, W, Bias, SortedPairs, BlockExpert, Act, n_pairs, limit, alpha,
                                H: tl.constexpr, I: tl.constexpr, E: tl.constexpr, TOP_K: tl.constexpr,
                                BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
    block = tl.program_id(0)
    expert = tl.load(BlockExpert + block).to(tl.int64)
    if expert >= E:  # a block past the last expert's padded rows
        return
    slots = block * BLOCK_M + tl.arange(0, BLOCK_M)
    pairs = tl.load(SortedPairs + slots)
    valid = pairs < n_pairs
    tokens = (pairs // TOP_K).to(tl.int64)
    cols = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)  # intermediate index
    col_ok = cols < I
    ks = tl.arange(0, BLOCK_K)
    x_ptrs = X + tokens[:, None] * H + ks[None, :]
    gate_ptrs = W + expert * (2 * I * H) + (2 * cols[None, :]) * H + ks[:, None]  # (BLOCK_K, BLOCK_N)
    acc_gate = tl.zeros([BLOCK_M, BLOCK_N], tl.float32)
    acc_up = tl.zeros([BLOCK_M, BLOCK_N], tl.float32)
    for k in range(0, H, BLOCK_K):
        k_ok = (k + ks) < H
        x = tl.load(x_ptrs + k, mask=valid[:, None] & k_ok[None, :], other=0.0)
        w_ok = k_ok[:, None] & col_ok[None, :]
        acc_gate = tl.dot(x, tl.load(gate_ptrs + k, mask=w_ok, other=0.0), acc_gate)
        acc_up = tl.dot(x, tl.load(gate_ptrs + H + k, mask=w_ok, other=0.0), acc_up)
    gate = acc_gate + tl.load(Bias + expert * 2 * I + 2 * cols, mask=col_ok, other=0.0)[None, :].to(tl.float32)
    up = acc_up + tl.load(Bias + expert * 2 * I + 2 * cols + 1, mask=col_ok, other=0.0)[None, :].to(tl.float32)
    tl.store(Act + slots[:, None] * I + cols[None, :], _swiglu(gate, up, limit, alpha).to(Act.dtype.element_ty),
             mask=col_ok[None, :])


@triton.jit(do_not_specialize=["n_pairs"])
def _expert_down_gemm_kernel(Act, W, Bias, SortedPairs, BlockExpert, PairWeights, PairOut, n_pairs,
                             H: tl.constexpr, I: tl.constexpr, E: tl.constexpr,
                             BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
    block = tl.program_id(0)
    expert = tl.load(BlockExpert + block).to(tl.int64)
    if expert >= E:
        return
    slots = block * BLOCK_M + tl.arange(0, BLOCK_M)
    pairs = tl.load(SortedPairs + slots)
    valid = pairs < n_pairs
    cols = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)  # hidden index
    col_ok = cols < H
    ks = tl.arange(0, BLOCK_K)
    a_ptrs = Act + slots[:, None].to(tl.int64) * I + ks[None, :]
    w_ptrs = W + expert * (H * I) + cols[None, :] * I + ks[:, None]  # (BLOCK_K, BLOCK_N)
    acc = tl.zeros([BLOCK_M, BLOCK_N], tl.float32)
    for k in range(0, I, BLOCK_K):
        k_ok = (k + ks) < I
        a = tl.load(a_ptrs + k, mask=k_ok[None, :], other=0.0)
        acc = tl.dot(a, tl.load(w_ptrs + k, mask=k_ok[:, None] & col_ok[None, :], other=0.0), acc)
    y = acc + tl.load(Bias + expert * H + cols, mask=col_ok, other=0.0)[None, :].to(tl.float32)
    y = y * tl.load(PairWeights + pairs, mask=valid, other=0.0)[:, None].to(tl.float32)
    tl.store(PairOut + pairs[:, None].to(tl.int64) * H + cols[None, :], y.to(PairOut.dtype.element_ty),
             mask=valid[:, None] & col_ok[None, :])


def _align_pairs_by_expert(expert_ids: torch.Tensor, n_experts: int, block_m: int):
    """Sort (token, slot) pairs by expert and pad each expert's run to a multiple of block_m, on the
    device with no host sync. expert_ids (n, K) -> sorted_pairs (P,) int32 (pad value n*K) and
    block_expert (P / block_m,) int32 (n_experts past the end)."""
    flat = expert_ids.reshape(-1)  # (S,)
    n_pairs = flat.numel()
    device = flat.device
    counts = torch.zeros(n_experts, dtype=torch.int64, device=device)
    counts.scatter_add_(0, flat, torch.ones_like(flat))
    padded = (counts + block_m - 1) // block_m * block_m
    padded_end = padded.cumsum(0)
    padded_start = padded_end - padded
    raw_start = counts.cumsum(0) - counts
    order = torch.argsort(flat, stable=True)  # (S,) pair indices, grouped by expert
    sorted_experts = flat[order]
    rank = torch.arange(n_pairs, device=device) - raw_start[sorted_experts]
    capacity = triton.cdiv(n_pairs + n_experts * (block_m - 1), block_m) * block_m
    sorted_pairs = torch.full((capacity,), n_pairs, dtype=torch.int32, device=device)
    sorted_pairs[padded_start[sorted_experts] + rank] = order.to(torch.int32)
    block_starts = torch.arange(0, capacity, block_m, device=device)
    block_expert = torch.searchsorted(padded_end, block_starts, right=True).to(torch.int32)
    return sorted_pairs, block_expert


# (most pairs, (BLOCK_M, BLOCK_N, BLOCK_K, num_warps, num_stages)), measured on an H200
# (benchmarks/ENGINE_NOTES.md): a keystroke's few pairs want many small programs deep in K; a
# prompt's thousands want big tiles.
PREFILL_EXPERTS_TILES = (
    (256, (16, 32, 256, 2, 4)),
    (4096, (64, 64, 64, 4, 4)),
    (1 << 62, (128, 128, 64, 8, 3)),
)


def prefill_experts(x: torch.Tensor, expert_ids: torch.Tensor, expert_weights: torch.Tensor,
                    gate_up: torch.Tensor, gate_up_bias: torch.Tensor, down: torch.Tensor, down_bias: torch.Tensor,
                    limit: float, alpha: float, config: tuple[int, int, int, int, int] | None = None) -> torch.Tensor:
    """x (n, H); expert_ids/weights (n, K); gate_up (E, 2I, H); down (E, H, I) -> (n, H)."""
    n_tokens, hidden = x.shape
    top_k = expert_ids.shape[1]
    n_experts, two_i, _ = gate_up.shape
    intermediate = two_i // 2
    n_pairs = n_tokens * top_k
    if config is None:
        config = next(tiles for most, tiles in PREFILL_EXPERTS_TILES if n_pairs <= most)
    block_m, block_n, block_k, warps, stages = config
    sorted_pairs, block_expert = _align_pairs_by_expert(expert_ids, n_experts, block_m)
    n_blocks = block_expert.shape[0]
    act = torch.empty(sorted_pairs.shape[0], intermediate, dtype=x.dtype, device=x.device)  # (P, I)
    _expert_gate_up_gemm_kernel[(n_blocks, triton.cdiv(intermediate, block_n))](
        x, gate_up, gate_up_bias, sorted_pairs, block_expert, act, n_pairs, limit, alpha,
        H=hidden, I=intermediate, E=n_experts, TOP_K=top_k,
        BLOCK_M=block_m, BLOCK_N=block_n, BLOCK_K=block_k, num_warps=warps, num_stages=stages,
    )
    pair_out = torch.empty(n_pairs, hidden, dtype=x.dtype, device=x.device)  # (S, H), row = token*K + slot
    _expert_down_gemm_kernel[(n_blocks, triton.cdiv(hidden, block_n))](
        act, down, down_bias, sorted_pairs, block_expert, expert_weights.reshape(-1), pair_out, n_pairs,
        H=hidden, I=intermediate, E=n_experts,
        BLOCK_M=block_m, BLOCK_N=block_n, BLOCK_K=block_k, num_warps=warps, num_stages=stages,
    )
    return pair_out.view(n_tokens, top_k, hidden).sum(dim=1)  # fp32 accumulation, like the model's
