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

import contextlib
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import torch
import triton
import triton.language as tl

from osslsp.engine.kernels_torch import NextNorm  # the same argument for both sets of kernels

NO_WINDOW = 1 << 30  # the `window` of a full-attention layer


# ---------------------------------------------------------------------------------------------
# Programmatic dependent launch (PDL): a kernel starts while the one before it finishes
# ---------------------------------------------------------------------------------------------
# A decode step is ~200 launches of a few microseconds each, so the gap between two of them (the
# drain of one, the launch and ramp-up of the next) is a large part of the step; a prefill has more
# launches. With PDL (Hopper and later) every kernel of this module is launched as soon as every
# program of the previous kernel has passed its own `_inputs_ready`. Before its own, a kernel may
# only read what no kernel of the step writes (weights; or what a kernel two or more launches back
# wrote), e.g. load or prefetch its weights; after it, the previous kernel has finished and its
# writes are visible. Every program calls `_inputs_ready` before it writes anything or returns, so
# that "finished" stays transitive along the chain.


def _pdl_supported() -> bool:
    if os.environ.get("TRITON_INTERPRET") == "1" or not torch.cuda.is_available():
        return False
    return torch.cuda.get_device_capability()[0] >= 9


PDL = _pdl_supported()  # read at every launch; a benchmark or test may switch it off


def _pdl() -> dict:
    """The launch arguments of a kernel that calls `_inputs_ready`: its PDL constant, and the launch
    attribute that lets it start early."""
    return {"PDL": True, "launch_pdl": True} if PDL else {"PDL": False}


@triton.jit
def _inputs_ready(PDL: tl.constexpr):
    """Wait until the previous kernel has finished (its writes visible), then let the next one start."""
    if PDL:
        tl.extra.cuda.gdc_wait()
        tl.extra.cuda.gdc_launch_dependents()


@triton.jit
def _prefetch_l2(pointers, PDL: tl.constexpr):
    """Ask L2 for the lines at `pointers` (any shape) without waiting for them: weights a kernel
    reads after `_inputs_ready` come in while the previous kernel still runs."""
    if PDL:
        tl.inline_asm_elementwise("prefetch.global.L2 [$1]; mov.u32 $0, 0;", "=r,l", [pointers],
                                  dtype=tl.int32, is_pure=False, pack=1)

# ---------------------------------------------------------------------------------------------
# Compiling every variant a start-up needs at once
# ---------------------------------------------------------------------------------------------
# A first start (empty Triton cache) compiles some 35 variants of these kernels. Compiled one at a
# time, as launches meet them, that took 29-40 s on an H200 host; Triton's compiler releases the GIL
# for most of a compile, so a pool of threads compiles them side by side.


@contextlib.contextmanager
def compile_only(threads: int | None = None) -> Iterator[None]:
    """Within it, a launch of any kernel of this module compiles the variant it needs on a pool of
    `threads` (default: the CPUs, at most 16) and returns without running: a dry pass of a
    start-up's steps then compiles all their variants in parallel, and the real steps after it
    find them compiled. The dry pass's kernels write nothing, so its steps must not act on their
    outputs (no host reads, no indexing by them). On leaving it every compile has finished; a
    variant that failed to compile is left to the real launch, which reports the error."""
    try:
        from triton.runtime._async_compile import AsyncCompileMode, FutureKernel  # Triton 3.4 and later
    except ImportError:  # an older Triton: the real steps compile one variant at a time
        yield
        return
    kernels = [value for value in globals().values() if isinstance(value, triton.runtime.jit.JITFunction)]
    workers = threads or min(16, os.cpu_count() or 1)
    try:
        with ThreadPoolExecutor(workers, thread_name_prefix="triton-compile") as pool, \
                AsyncCompileMode(pool, ignore_errors=True):
            for kernel in kernels:  # kernel[grid](...) calls the instance's `run`, this one
                kernel.run = lambda *args, kernel=kernel, warmup, **kwargs: type(kernel).run(
                    kernel, *args, warmup=True, **kwargs)
            yield
    finally:
        for kernel in kernels:
            kernel.__dict__.pop("run", None)
            for cache in kernel.device_caches.values():  # (kernel_cache, ...): drop failed compiles, so
                failed = [key for key, value in cache[0].items() if isinstance(value, FutureKernel)]
                for key in failed:  # that a real launch compiles them again and reports the error
                    del cache[0][key]


# ---------------------------------------------------------------------------------------------
# RMSNorm with the residual add in front of it
# ---------------------------------------------------------------------------------------------


@triton.jit
def _add_rmsnorm_kernel(Residual, Delta, Weight, Normed, Pairs16, n_cols, eps,
                        HAS_DELTA: tl.constexpr, PAIRS: tl.constexpr, BLOCK: tl.constexpr, PDL: tl.constexpr):
    _inputs_ready(PDL)
    row = tl.program_id(0)
    cols = tl.arange(0, BLOCK)
    mask = cols < n_cols
    x = tl.load(Residual + row * n_cols + cols, mask=mask, other=0.0)
    if HAS_DELTA:
        # residual + delta in fp16, as the model's own `residual + hidden_states` rounds.
        x = x + tl.load(Delta + row * n_cols + cols, mask=mask, other=0.0)
        tl.store(Residual + row * n_cols + cols, x, mask=mask)
    _rmsnorm_store(x, Weight, Normed + row * n_cols, Pairs16 + row * n_cols, cols, mask, n_cols, eps, PAIRS)


@triton.jit
def _add_rmsnorm_row(Residual, Delta, Weight, Normed, eps, H: tl.constexpr, BLOCK_H: tl.constexpr):
    """Residual (H,) += Delta (H,), which other programs of the launch wrote; Normed = its RMSNorm
    (no word pairs: the next norm feeds qkv's F.linear or the LM head)."""
    cols = tl.arange(0, BLOCK_H)
    mask = cols < H
    # residual + delta in the activations' dtype, as the model's own `residual + hidden_states`;
    # .cg: Delta from L2, not from a stale L1 line
    x = tl.load(Residual + cols, mask=mask, other=0.0) + tl.load(Delta + cols, mask=mask, other=0.0,
                                                                  cache_modifier=".cg")
    tl.store(Residual + cols, x, mask=mask)
    _rmsnorm_store(x, Weight, Normed, Normed, cols, mask, H, eps, False)


@triton.jit
def _rmsnorm_store(x, Weight, Normed, Pairs16, cols, mask, n_cols, eps, PAIRS: tl.constexpr):
    """Normed[cols] = RMSNorm of one row x (BLOCK,) (zero where not mask), and its word pairs."""
    xf = x.to(tl.float32)
    variance = tl.sum(xf * xf, axis=0) / n_cols
    w = tl.load(Weight + cols, mask=mask, other=0.0).to(tl.float32)
    y = (w * (xf * tl.rsqrt(variance + eps))).to(Normed.dtype.element_ty)
    tl.store(Normed + cols, y, mask=mask)
    if PAIRS:  # the packed GEMVs' x: the same values as word pairs
        _store_word_pairs(Pairs16, cols, y, n_cols, mask)


def add_rmsnorm(residual: torch.Tensor, delta: torch.Tensor | None, weight: torch.Tensor, eps: float,
                normed: torch.Tensor, pairs: torch.Tensor | None = None) -> None:
    """residual (n, H) += delta (n, H) in place (if given); normed (n, H) = RMSNorm(residual);
    pairs (n, 4, H/8) int32, if given: normed's word pairs (see word_pairs), in float16."""
    n_rows, n_cols = residual.shape
    _add_rmsnorm_kernel[(n_rows,)](
        residual, delta if delta is not None else residual, weight, normed,
        pairs.view(torch.float16) if pairs is not None else normed, n_cols, eps,
        HAS_DELTA=delta is not None, PAIRS=pairs is not None, BLOCK=triton.next_power_of_2(n_cols), num_warps=8,
        **_pdl(),
    )


# ---------------------------------------------------------------------------------------------
# Rotary embedding of q and k, and the write of k and v into the static cache
# ---------------------------------------------------------------------------------------------


@triton.jit
def _rope_cache_kernel(QKV, Cos, Sin, Positions, Slots, QOut, KCache, VCache, cache_len,
                       NQ: tl.constexpr, NKV: tl.constexpr, D: tl.constexpr, HEADS_PAD: tl.constexpr,
                       SLOTTED: tl.constexpr, PDL: tl.constexpr):
    _inputs_ready(PDL)
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
    cache_base = 0  # cache (NKV, T, D)
    if SLOTTED:  # caches (S, NKV, T, D): the token's own slot
        cache_base = tl.load(Slots + token).to(tl.int64) * NKV * cache_len * D
    is_k = rotated & (heads >= NQ)
    k_at = KCache + cache_base + (heads - NQ) * cache_len * D + pos * D
    tl.store(k_at + half, out1.to(KCache.dtype.element_ty), mask=is_k)
    tl.store(k_at + D // 2 + half, out2.to(KCache.dtype.element_ty), mask=is_k)
    kv_heads = tl.arange(0, NKV)[:, None]
    dims = tl.arange(0, D)[None, :]
    v = tl.load(row + (NQ + NKV) * D + kv_heads * D + dims)
    tl.store(VCache + cache_base + kv_heads * cache_len * D + pos * D + dims, v)


def _rope(qkv: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, positions: torch.Tensor,
          slots: torch.Tensor | None, q_out: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor) -> None:
    n_kv, cache_len, head_dim = k_cache.shape[-3:]
    n_q = q_out.shape[-1] // head_dim
    _rope_cache_kernel[(qkv.shape[0],)](
        qkv, cos, sin, positions, positions if slots is None else slots, q_out, k_cache, v_cache, cache_len,
        NQ=n_q, NKV=n_kv, D=head_dim, HEADS_PAD=triton.next_power_of_2(n_q + n_kv), SLOTTED=slots is not None,
        num_warps=4, **_pdl(),
    )


def rope_and_cache(qkv: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, positions: torch.Tensor,
                   q_out: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor) -> None:
    """qkv (n, (NQ+2NKV)*D) -> q_out (n, NQ*D) rotated; k rotated and v written at `positions` (n,)
    into k_cache/v_cache (NKV, T, D). cos/sin: (T, D/2), the model's own rotary tables."""
    _rope(qkv, cos, sin, positions, None, q_out, k_cache, v_cache)


def rope_and_cache_slots(qkv: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, positions: torch.Tensor,
                         slots: torch.Tensor, q_out: torch.Tensor, k_cache: torch.Tensor,
                         v_cache: torch.Tensor) -> None:
    """As rope_and_cache for B rows, each written at its position (B,) into its slot (B,) of
    k_cache/v_cache (S, NKV, T, D)."""
    _rope(qkv, cos, sin, positions, slots, q_out, k_cache, v_cache)


# ---------------------------------------------------------------------------------------------
# Decode GEMVs of the FP16 attention projections: qkv with its rotary embedding and cache write, o_proj
# ---------------------------------------------------------------------------------------------
# cuBLAS cannot start before the kernel in front of it has finished; these load their weights
# before `_inputs_ready`, while it still runs. A tile is (ROWS, num_warps): ROWS output rows a
# program, whose whole (ROWS, K) weight slice is loaded into registers first (ROWS * K fp16 over 32
# num_warps threads, which must fit without spills; K in two power-of-two pieces, the second
# masked: 2880 = 2048 + 832 of 1024, a third less than 4096).
# The fastest of 6 tiles each on the H200 (benchmarks/gpu_dense_gemv.py, with PDL): qkv 9.7 us a
# layer with its rope and cache write (cuBLAS + rope_and_cache: ~12.5), o_proj 7.1 us (cuBLAS: 12.2).
# Prefetching the slice to L2 instead and reading it in a K loop after `_inputs_ready` was slower at
# every tile (qkv 10.4-18.9 us, o_proj 10.4-23.6).
DECODE_QKV_TILE = (4, 4)  # decode_qkv_rope: (ROWS, num_warps); ROWS even, dividing D
DECODE_LINEAR_TILE = (8, 4)  # decode_linear


@triton.jit
def _gemv_rows(X, W, rows, ROWS: tl.constexpr, K: tl.constexpr, K_HEAD: tl.constexpr, K_TAIL: tl.constexpr,
               PDL: tl.constexpr):
    """W[rows] (ROWS, K) @ X (K,) -> (ROWS,) float32; the weights loaded before `_inputs_ready`, X
    (which the previous kernel writes) after it. K = K_HEAD (a power of two) + what K_TAIL (a power
    of two, or 0) holds."""
    row_at = W + rows[:, None] * K  # (ROWS, 1)
    cols = tl.arange(0, K_HEAD)[None, :]
    w = tl.load(row_at + cols)  # (ROWS, K_HEAD)
    if K_TAIL > 0:
        tail = K_HEAD + tl.arange(0, K_TAIL)[None, :]
        w_tail = tl.load(row_at + tail, mask=tail < K, other=0.0)  # (ROWS, K_TAIL)
    _inputs_ready(PDL)
    dot = tl.sum(w.to(tl.float32) * tl.load(X + cols).to(tl.float32), axis=1)
    if K_TAIL > 0:
        x_tail = tl.load(X + tail, mask=tail < K, other=0.0)
        dot += tl.sum(w_tail.to(tl.float32) * x_tail.to(tl.float32), axis=1)
    return dot


@triton.jit
def _decode_qkv_rope_kernel(X, W, Bias, Cos, Sin, Position, QOut, KCache, VCache, cache_len,
                            NQ: tl.constexpr, NKV: tl.constexpr, D: tl.constexpr, ROWS: tl.constexpr,
                            K: tl.constexpr, K_HEAD: tl.constexpr, K_TAIL: tl.constexpr, PDL: tl.constexpr):
    # A program owns ROWS rows of one head: the dims `half` of its first half and their rope
    # partners D/2 further, interleaved (element 2i: half[i], 2i+1: half[i] + D/2).
    PARTS: tl.constexpr = D // ROWS
    head = tl.program_id(0) // PARTS
    first_dim = (tl.program_id(0) % PARTS) * (ROWS // 2)
    half = first_dim + tl.arange(0, ROWS // 2)  # (ROWS/2,)
    element = tl.arange(0, ROWS)
    rows = head * D + first_dim + element // 2 + (element % 2) * (D // 2)
    y = _gemv_rows(X, W, rows, ROWS, K, K_HEAD, K_TAIL, PDL)
    # qkv rounded to the activations' dtype after the bias, as the model's F.linear output is
    y = (y + tl.load(Bias + rows).to(tl.float32)).to(X.dtype.element_ty).to(tl.float32)
    first, second = tl.split(tl.reshape(y, (ROWS // 2, 2)))  # (ROWS/2,) each
    pos = tl.load(Position)
    if head < NQ + NKV:  # q and k heads are rotated, v heads are not
        cos = tl.load(Cos + pos * (D // 2) + half).to(tl.float32)
        sin = tl.load(Sin + pos * (D // 2) + half).to(tl.float32)
        first, second = first * cos - second * sin, second * cos + first * sin
    if head < NQ:
        out = QOut + head * D
    elif head < NQ + NKV:
        out = KCache + ((head - NQ) * cache_len + pos) * D  # cache (NKV, T, D)
    else:
        out = VCache + ((head - NQ - NKV) * cache_len + pos) * D
    tl.store(out + half, first.to(out.dtype.element_ty))
    tl.store(out + D // 2 + half, second.to(out.dtype.element_ty))


@triton.jit
def _decode_linear_kernel(X, W, Bias, Out, N: tl.constexpr, ROWS: tl.constexpr,
                          K: tl.constexpr, K_HEAD: tl.constexpr, K_TAIL: tl.constexpr, PDL: tl.constexpr):
    wanted = tl.program_id(0) * ROWS + tl.arange(0, ROWS)
    rows = tl.minimum(wanted, N - 1)  # the last program's spare rows read row N-1 again and store nothing
    y = _gemv_rows(X, W, rows, ROWS, K, K_HEAD, K_TAIL, PDL)
    y = y + tl.load(Bias + rows).to(tl.float32)
    tl.store(Out + wanted, y.to(Out.dtype.element_ty), mask=wanted < N)


def _gemv_constants(weight: torch.Tensor, tile: tuple[int, int]) -> dict:
    """The launch constants of a _gemv_rows kernel on weight (N, K) with `tile`."""
    rows, num_warps = tile
    k = weight.shape[1]
    k_head = 1 << (k.bit_length() - 1)  # the largest power of two <= K
    return {"ROWS": rows, "K": k, "K_HEAD": k_head, "K_TAIL": triton.next_power_of_2(k - k_head) if k > k_head else 0,
            "num_warps": num_warps, **_pdl()}


def decode_qkv_rope(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                    position: torch.Tensor, q_out: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor):
    """F.linear(x, weight, bias) then rope_and_cache, in one launch: x (1, H); weight (R, H), bias
    (R,), R = (NQ + 2 NKV) D; cos/sin (T, D/2); position (1,) -> q_out (1, NQ D) rotated, k rotated
    and v written at position into k_cache/v_cache (NKV, T, D). Tiles: DECODE_QKV_TILE. Returns the
    compiled kernel (its n_regs and n_spills)."""
    n_kv, cache_len, head_dim = k_cache.shape
    constants = _gemv_constants(weight, DECODE_QKV_TILE)
    return _decode_qkv_rope_kernel[(weight.shape[0] // constants["ROWS"],)](
        x, weight, bias, cos, sin, position, q_out, k_cache, v_cache, cache_len,
        NQ=q_out.shape[-1] // head_dim, NKV=n_kv, D=head_dim, **constants,
    )


def decode_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, out: torch.Tensor):
    """out (1, N) = x (1, K) @ weight (N, K).T + bias (N,), in one launch. Tiles: DECODE_LINEAR_TILE.
    Returns the compiled kernel (its n_regs and n_spills)."""
    n = weight.shape[0]
    constants = _gemv_constants(weight, DECODE_LINEAR_TILE)
    return _decode_linear_kernel[(triton.cdiv(n, constants["ROWS"]),)](x, weight, bias, out, N=n, **constants)


# ---------------------------------------------------------------------------------------------
# Attention with sinks: decode (one query a row, split over the keys) and prefill (flash attention)
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
def _decode_attention_split_kernel(Q, KCache, VCache, Positions, Slots, PartAcc, PartMax, PartSum,
                                  Sinks, Out, Counters, cache_len, window, scale,
                                  NKV: tl.constexpr, GROUP: tl.constexpr, GROUP_PAD: tl.constexpr, D: tl.constexpr,
                                  N_SPLIT: tl.constexpr, BLOCK_N: tl.constexpr, COMBINE: tl.constexpr,
                                  GROUP_P2: tl.constexpr, PDL: tl.constexpr):
    # With COMBINE, the last of a (row, kv head)'s N_SPLIT programs to finish (an atomic ticket, as
    # in _route_kernel) combines their partial results into Out: no combine launch.
    _inputs_ready(PDL)
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
    if COMBINE:
        tl.debug_barrier()  # every thread's partials are written before the ticket is taken
        counter = Counters + row_index * NKV + kv
        if tl.atomic_add(counter, 1, sem="acq_rel") == N_SPLIT - 1:
            _combine_group(PartAcc, PartMax, PartSum, Sinks, Out, row_index, kv, NKV, GROUP, GROUP_PAD, GROUP_P2, D,
                           N_SPLIT)
            tl.store(counter, 0)


@triton.jit
def _combine_group(PartAcc, PartMax, PartSum, Sinks, Out, row_index, kv,
                   NKV: tl.constexpr, GROUP: tl.constexpr, GROUP_PAD: tl.constexpr, GROUP_P2: tl.constexpr,
                   D: tl.constexpr, N_SPLIT: tl.constexpr):
    """Out of the GROUP query heads of kv head `kv` of a row: its N_SPLIT partials combined, with the
    sink; heads in a tile of GROUP_P2 (GROUP to a power of 2), partials in one of GROUP_PAD."""
    splits = tl.arange(0, N_SPLIT)
    heads = tl.arange(0, GROUP_P2)
    head_ok = heads < GROUP
    dims = tl.arange(0, D)
    part = ((row_index * NKV + kv) * N_SPLIT + splits[:, None]) * GROUP_PAD + heads[None, :]  # (N_SPLIT, G)
    # .cg: partials other programs wrote, read from L2 rather than a stale L1 line
    m = tl.load(PartMax + part, mask=head_ok[None, :], other=-1.0e30, cache_modifier=".cg")
    l = tl.load(PartSum + part, mask=head_ok[None, :], other=0.0, cache_modifier=".cg")
    acc = tl.load(PartAcc + part[:, :, None] * D + dims[None, None, :], mask=head_ok[None, :, None], other=0.0,
                  cache_modifier=".cg")  # (N_SPLIT, G, D)
    sink = tl.load(Sinks + kv * GROUP + heads, mask=head_ok, other=0.0).to(tl.float32)  # (G,)
    m_all = tl.maximum(tl.max(m, axis=0), sink)
    w = tl.exp(m - m_all[None, :])  # (N_SPLIT, G)
    denominator = tl.sum(w * l, axis=0) + tl.exp(sink - m_all)  # the sink takes its share, adds nothing
    out = tl.sum(w[:, :, None] * acc, axis=0) / denominator[:, None]  # (G, D)
    tl.store(Out + (row_index * NKV * GROUP + kv * GROUP + heads[:, None]) * D + dims[None, :],
             out.to(Out.dtype.element_ty), mask=head_ok[:, None])


@triton.jit
def _decode_attention_combine_kernel(PartAcc, PartMax, PartSum, Sinks, Out,
                                    NKV: tl.constexpr, GROUP: tl.constexpr, GROUP_PAD: tl.constexpr,
                                    GROUP_P2: tl.constexpr, D: tl.constexpr, N_SPLIT: tl.constexpr, PDL: tl.constexpr):
    _inputs_ready(PDL)
    _combine_group(PartAcc, PartMax, PartSum, Sinks, Out, tl.program_id(0), tl.program_id(1), NKV, GROUP, GROUP_PAD,
                   GROUP_P2, D, N_SPLIT)


class SlotsDecodeAttention:
    """Flash-decoding for B rows, each in its own slot at its own position: per row and kv head the
    keys are split into N_SPLIT chunks, reduced by one program each, then combined with the sink:
    by the last of them to finish (`combine_in_split`, one launch) or by a combine launch."""

    def __init__(self, n_q: int, n_kv: int, head_dim: int, max_rows: int, device: torch.device,
                 combine_in_split: bool = True, n_split: int = 16, block_n: int = 64):
        self.n_split, self.block_n = n_split, block_n
        self.group = n_q // n_kv
        self.group_pad = max(16, triton.next_power_of_2(self.group))
        self.n_kv, self.head_dim = n_kv, head_dim
        self.combine_in_split = combine_in_split
        shape = (max_rows, n_kv, self.n_split, self.group_pad)
        self.part_acc = torch.empty(*shape, head_dim, dtype=torch.float32, device=device)
        self.part_max = torch.empty(shape, dtype=torch.float32, device=device)
        self.part_sum = torch.empty(shape, dtype=torch.float32, device=device)
        self.counters = torch.zeros(max_rows, n_kv, dtype=torch.int32, device=device)  # tickets, reset by their last

    def __call__(self, q: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor, positions: torch.Tensor,
                 slots: torch.Tensor, window: int, sinks: torch.Tensor, scale: float, out: torch.Tensor) -> None:
        """q (B, NQ*D) of rows at positions (B,) in slots (B,) -> out (B, NQ*D); caches (S, NKV, T, D)."""
        n_rows = q.shape[0]
        cache_len = k_cache.shape[2]
        _decode_attention_split_kernel[(n_rows, self.n_kv, self.n_split)](
            q, k_cache, v_cache, positions, slots, self.part_acc, self.part_max, self.part_sum,
            sinks, out, self.counters, cache_len, window, scale,
            NKV=self.n_kv, GROUP=self.group, GROUP_PAD=self.group_pad, D=self.head_dim,
            N_SPLIT=self.n_split, BLOCK_N=self.block_n, COMBINE=self.combine_in_split,
            GROUP_P2=triton.next_power_of_2(self.group), num_warps=4, **_pdl(),
        )
        if not self.combine_in_split:
            _decode_attention_combine_kernel[(n_rows, self.n_kv)](
                self.part_acc, self.part_max, self.part_sum, sinks, out,
                NKV=self.n_kv, GROUP=self.group, GROUP_PAD=self.group_pad, GROUP_P2=triton.next_power_of_2(self.group),
                D=self.head_dim, N_SPLIT=self.n_split, num_warps=4, **_pdl(),
            )


class DecodeAttention:
    """Flash-decoding for one new token: the batched case with one row, in slot 0 of its cache. One
    row has 8 kv heads of programs only: 32 splits of 32-key blocks keep more of the GPU busy than
    the batched case's 16 of 64 (decode step at 2k on the H200: 1.680 against 1.725 ms)."""

    def __init__(self, n_q: int, n_kv: int, head_dim: int, device: torch.device, combine_in_split: bool = True,
                 n_split: int = 32, block_n: int = 32):
        self._rows = SlotsDecodeAttention(n_q, n_kv, head_dim, 1, device, combine_in_split, n_split, block_n)
        self._slot = torch.zeros(1, dtype=torch.long, device=device)

    def __call__(self, q: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor, position: torch.Tensor,
                 window: int, sinks: torch.Tensor, scale: float, out: torch.Tensor) -> None:
        """q (NQ*D,) of the token at `position` (1,) -> out (NQ*D,); caches (NKV, T, D)."""
        self._rows(q.view(1, -1), k_cache.unsqueeze(0), v_cache.unsqueeze(0), position, self._slot,
                   window, sinks, scale, out.view(1, -1))


@triton.jit(do_not_specialize=["n_new"])  # one compiled variant for every prompt length
def _prefill_attention_kernel(Q, KCache, VCache, Sinks, Positions, Out, n_new, cache_len, window, scale,
                              NQ: tl.constexpr, GROUP: tl.constexpr, D: tl.constexpr,
                              BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, PDL: tl.constexpr):
    _inputs_ready(PDL)
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
        NQ=n_q, GROUP=n_q // n_kv, D=head_dim, BLOCK_M=block_m, BLOCK_N=64, num_warps=4, num_stages=3, **_pdl(),
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
                                H: tl.constexpr, I: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_K: tl.constexpr,
                                PDL: tl.constexpr):
    _inputs_ready(PDL)
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
                             BLOCK_M: tl.constexpr, BLOCK_K: tl.constexpr, PDL: tl.constexpr):
    # out = sum_k w_k (W_k a_k + b_k) = sum_k W_k (w_k a_k) + sum_k w_k b_k: one accumulator, and the
    # TOP_K experts' tiles are loaded in the same iteration (more bytes in flight per program).
    _inputs_ready(PDL)
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

    x_pairs = None  # (the packed GEMVs take x as word pairs; these take x itself)

    def __init__(self, hidden: int, intermediate: int, top_k: int, dtype: torch.dtype, device: torch.device,
                 gate_up_block: tuple[int, int, int] = (16, 256, 8), down_block: tuple[int, int, int] = (1, 1024, 4)):
        self.hidden, self.intermediate, self.top_k = hidden, intermediate, top_k
        self.gate_up_block, self.down_block = gate_up_block, down_block
        self.act = torch.empty(top_k, intermediate, dtype=dtype, device=device)  # (K, I)

    def __call__(self, x: torch.Tensor, gate_up: torch.Tensor, gate_up_bias: torch.Tensor, down: torch.Tensor,
                 down_bias: torch.Tensor, expert_ids: torch.Tensor, expert_weights: torch.Tensor,
                 limit: float, alpha: float, out: torch.Tensor, x_pairs_ready: bool = False,
                 then_norm: NextNorm | None = None) -> None:
        """x (H,); gate_up (E, 2I, H) interleaved gate/up rows; down (E, H, I); expert_ids/weights (K,);
        out (H,) = sum_k weight_k * expert_k(x). x_pairs_ready: x_pairs (where there is one) already
        holds x's word pairs. then_norm: out is also added to its residual, and its normed written."""
        self.gate_up(x, gate_up, gate_up_bias, expert_ids, limit, alpha)
        self.down(down, down_bias, expert_ids, expert_weights, out)
        if then_norm is not None:  # 2880 programs a launch here: a ticket would queue on one address
            add_rmsnorm(then_norm.residual[None], out[None], then_norm.weight, then_norm.eps, then_norm.normed[None])

    def gate_up(self, x, gate_up, gate_up_bias, expert_ids, limit: float, alpha: float) -> None:
        """self.act (K, I) = SwiGLU of each chosen expert's gate/up projection of x (H,)."""
        bm, bk, warps = self.gate_up_block
        _expert_gate_up_gemv_kernel[(triton.cdiv(self.intermediate, bm), self.top_k)](
            x, gate_up, gate_up_bias, expert_ids, self.act, limit, alpha,
            H=self.hidden, I=self.intermediate, BLOCK_M=bm, BLOCK_K=bk, num_warps=warps, **_pdl(),
        )

    def down(self, down, down_bias, expert_ids, expert_weights, out) -> None:
        """out (H,) = sum over the chosen experts of weight_k * (down_k @ act_k + bias_k)."""
        bm, bk, warps = self.down_block
        _expert_down_gemv_kernel[(triton.cdiv(self.hidden, bm),)](
            self.act, down, down_bias, expert_ids, expert_weights, out,
            H=self.hidden, I=self.intermediate, TOP_K=self.top_k, BLOCK_M=bm, BLOCK_K=bk, num_warps=warps, **_pdl(),
        )


# ---------------------------------------------------------------------------------------------
# Experts at prefill: grouped GEMMs over (token, expert) pairs sorted by expert
# ---------------------------------------------------------------------------------------------


@triton.jit
def _block_pairs(BlockExpert, SortedPairs, n_pairs, first_expert, BLOCK_M: tl.constexpr):
    """This program's expert, counted from first_expert (the first of the weights given; outside
    0..E-1 the block is another call's), and its BLOCK_M sorted (token, slot) pairs, with which of
    them are real (the rest pad the expert's run)."""
    block = tl.program_id(0)
    expert = tl.load(BlockExpert + block).to(tl.int64) - first_expert
    slots = block * BLOCK_M + tl.arange(0, BLOCK_M)
    pairs = tl.load(SortedPairs + slots)
    return expert, slots, pairs, pairs < n_pairs


@triton.jit(do_not_specialize=["n_pairs", "first_expert"])
def _expert_gate_up_gemm_kernel(X, W, Bias, SortedPairs, BlockExpert, Act, n_pairs, first_expert, limit, alpha,
                                H: tl.constexpr, I: tl.constexpr, E: tl.constexpr, TOP_K: tl.constexpr,
                                BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, PDL: tl.constexpr):
    _inputs_ready(PDL)
    expert, slots, pairs, valid = _block_pairs(BlockExpert, SortedPairs, n_pairs, first_expert, BLOCK_M)
    if (expert < 0) | (expert >= E):  # another chunk's block, or past the last expert's padded rows
        return
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


@triton.jit(do_not_specialize=["n_pairs", "first_expert"])
def _expert_down_gemm_kernel(Act, W, Bias, SortedPairs, BlockExpert, PairWeights, PairOut, n_pairs, first_expert,
                             H: tl.constexpr, I: tl.constexpr, E: tl.constexpr,
                             BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, PDL: tl.constexpr):
    _inputs_ready(PDL)
    expert, slots, pairs, valid = _block_pairs(BlockExpert, SortedPairs, n_pairs, first_expert, BLOCK_M)
    if (expert < 0) | (expert >= E):  # another chunk's block, or past the last expert's padded rows
        return
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


ALIGN_CHUNK = 1024  # pairs a step of the alignment's one program (its one-hot tile: 1024 x 32)


@triton.jit(do_not_specialize=["n_pairs", "capacity"])
def _align_pairs_kernel(ExpertIds, NReal, SortedPairs, BlockExpert, n_pairs, capacity,
                        E: tl.constexpr, E_PAD: tl.constexpr, TOP_K: tl.constexpr, BLOCK_M: tl.constexpr,
                        CHUNK: tl.constexpr, HAS_N_REAL: tl.constexpr, PDL: tl.constexpr):
    # One program, CHUNK pairs at a time: count each expert's pairs, pad every count to BLOCK_M,
    # then place each pair after the earlier pairs of its expert (a stable counting sort) and name
    # each block's expert. One launch instead of some twenty small ones (a sort among them) a layer.
    # Pairs of padding tokens (past NReal tokens) take expert E: they match no expert, so they get
    # no slot and no block.
    _inputs_ready(PDL)
    n_real_pairs = n_pairs
    if HAS_N_REAL:
        n_real_pairs = tl.minimum(tl.load(NReal).to(tl.int32) * TOP_K, n_pairs)
    ids = tl.arange(0, E_PAD)
    counts = tl.zeros([E_PAD], tl.int32)
    for first in range(0, n_pairs, CHUNK):
        pairs = first + tl.arange(0, CHUNK)
        experts = tl.load(ExpertIds + pairs, mask=pairs < n_real_pairs, other=E).to(tl.int32)  # (CHUNK,)
        counts += tl.sum(((experts[:, None] == ids[None, :]) & (ids[None, :] < E)).to(tl.int32), axis=0)
    padded = (counts + BLOCK_M - 1) // BLOCK_M * BLOCK_M  # (E_PAD,)
    padded_end = tl.cumsum(padded, axis=0)
    for first in range(0, capacity, CHUNK):  # every slot a padding slot, until a pair takes it
        slots = first + tl.arange(0, CHUNK)
        tl.store(SortedPairs + slots, tl.zeros([CHUNK], tl.int32) + n_pairs, mask=slots < capacity)
    tl.debug_barrier()  # the padding stores land before the pairs' own
    placed = padded_end - padded  # (E_PAD,) the next free slot of each expert
    for first in range(0, n_pairs, CHUNK):
        pairs = first + tl.arange(0, CHUNK)
        experts = tl.load(ExpertIds + pairs, mask=pairs < n_real_pairs, other=E).to(tl.int32)
        onehot = ((experts[:, None] == ids[None, :]) & (ids[None, :] < E)).to(tl.int32)  # (CHUNK, E_PAD)
        earlier = tl.cumsum(onehot, axis=0) - onehot  # pairs of the same expert before it in the chunk
        slot = tl.sum(onehot * (placed[None, :] + earlier), axis=1)  # (CHUNK,)
        tl.store(SortedPairs + slot, pairs, mask=experts < E)
        placed += tl.sum(onehot, axis=0)
    for first in range(0, capacity // BLOCK_M, CHUNK):
        blocks = first + tl.arange(0, CHUNK)
        ended = (padded_end[None, :] <= blocks[:, None] * BLOCK_M) & (ids[None, :] < E)  # (CHUNK, E_PAD)
        tl.store(BlockExpert + blocks, tl.sum(ended.to(tl.int32), axis=1), mask=blocks < capacity // BLOCK_M)


def _align_pairs_by_expert(expert_ids: torch.Tensor, n_experts: int, block_m: int,
                           n_real: torch.Tensor | None = None):
    """Sort (token, slot) pairs by expert and pad each expert's run to a multiple of block_m, on the
    device with no host sync. expert_ids (n, K) -> sorted_pairs (P,) int32 (pad value n*K) and
    block_expert (P / block_m,) int32 (n_experts past the end). n_real (1,): tokens from this one
    on only pad the call to a captured size; their pairs get no slot, so no block reads weights
    for them."""
    n_tokens, top_k = expert_ids.shape
    n_pairs = n_tokens * top_k
    expert_ids = expert_ids.contiguous()  # the kernel reads it as a flat (S,) vector
    capacity = triton.cdiv(n_pairs + n_experts * (block_m - 1), block_m) * block_m
    sorted_pairs = torch.empty(capacity, dtype=torch.int32, device=expert_ids.device)
    block_expert = torch.empty(capacity // block_m, dtype=torch.int32, device=expert_ids.device)
    _align_pairs_kernel[(1,)](
        expert_ids, sorted_pairs if n_real is None else n_real, sorted_pairs, block_expert, n_pairs, capacity,
        E=n_experts, E_PAD=triton.next_power_of_2(n_experts), TOP_K=top_k, BLOCK_M=block_m,
        CHUNK=min(ALIGN_CHUNK, max(16, triton.next_power_of_2(n_pairs))), HAS_N_REAL=n_real is not None,
        num_warps=8 if n_pairs > 256 else 4, **_pdl(),
    )
    return sorted_pairs, block_expert


@triton.jit
def _sum_pairs_kernel(PairOut, NReal, Out, H: tl.constexpr, TOP_K: tl.constexpr, BLOCK: tl.constexpr,
                      PDL: tl.constexpr):
    # Program (token, BLOCK hidden units): out[t] = sum over k of pair_out[s*K + k] in fp32, where
    # s = min(t, NReal - 1): a padding token copies the last real token's output, so that it stays
    # an exact copy of it (same residual, same keys and values written to the same cache slot).
    _inputs_ready(PDL)
    token = tl.program_id(0)
    source = tl.minimum(token, tl.load(NReal).to(tl.int32) - 1).to(tl.int64)
    cols = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    ok = cols < H
    acc = tl.zeros([BLOCK], tl.float32)
    for k in tl.static_range(TOP_K):
        acc += tl.load(PairOut + (source * TOP_K + k) * H + cols, mask=ok, other=0.0).to(tl.float32)
    tl.store(Out + token.to(tl.int64) * H + cols, acc.to(Out.dtype.element_ty), mask=ok)


def _sum_pairs(pair_out: torch.Tensor, n_tokens: int, n_real: torch.Tensor | None) -> torch.Tensor:
    """pair_out (n*K, H), row token*K + slot -> (n, H), the sum over each token's K pairs (fp32
    accumulation, like the model's); with n_real (1,), tokens from n_real on copy token n_real - 1
    (their own pairs were never computed)."""
    hidden = pair_out.shape[1]
    if n_real is None:
        return pair_out.view(n_tokens, -1, hidden).sum(dim=1)
    out = torch.empty(n_tokens, hidden, dtype=pair_out.dtype, device=pair_out.device)
    block = 1024
    _sum_pairs_kernel[(n_tokens, triton.cdiv(hidden, block))](
        pair_out, n_real, out, H=hidden, TOP_K=pair_out.shape[0] // n_tokens, BLOCK=block, num_warps=4, **_pdl())
    return out


# (most pairs, (BLOCK_M, BLOCK_N, BLOCK_K, num_warps, num_stages)), measured on an H200
# (benchmarks/ENGINE_NOTES.md): a keystroke's few pairs want many small programs deep in K; a
# prompt's thousands want big tiles.
PREFILL_EXPERTS_TILES = (
    (256, (16, 32, 256, 2, 4)),
    (4096, (64, 64, 64, 4, 4)),
    (1 << 62, (128, 128, 64, 8, 3)),
)


# (most pairs, tiles) for packed MXFP4 experts past the grouped GEMVs: the weights-first packed GEMMs
# (_mxfp4_gate_up_gemm_t_kernel, _mxfp4_down_gemm_t_kernel), tiles (BLOCK_M pairs, BLOCK_N packed
# weight rows, BLOCK_K, num_warps, num_stages). Past the last row, prompts take
# _prefill_experts_dequantized. One layer of gpt-oss-20b (random top-4 of 32), CUDA graph replays on
# an H200, 2026-12-02 (benchmarks/results/h200-2026-12-02-s11d-prefill.log): 512 tokens (2,048
# pairs) 0.631 ms at (64, 64, 64, 4, 3) (0.620 at (128, 64, 64, 4, 3)) against 1.122 ms through
# FP16 scratch; 2,048 tokens (8,192 pairs) 1.545 ms at (128, 128, 64, 4, 4) against 1.680; 8,192
# tokens (32,768 pairs) 5.702 ms at that tile against 4.345 through FP16 scratch.
MXFP4_PREFILL_EXPERTS_TILES = (
    (4096, (64, 64, 64, 4, 3)),
    (8192, (128, 128, 64, 4, 4)),
)
DEQUANTIZED_EXPERTS_CHUNK = 8  # experts unpacked to FP16 at a time: 0.4 GiB of scratch for gpt-oss-20b


def prefill_experts(x: torch.Tensor, expert_ids: torch.Tensor, expert_weights: torch.Tensor,
                    gate_up, gate_up_bias: torch.Tensor, down, down_bias: torch.Tensor,
                    limit: float, alpha: float, config: tuple[int, int, int, int, int] | None = None,
                    n_real: torch.Tensor | None = None) -> torch.Tensor:
    """x (n, H); expert_ids/weights (n, K); gate_up (E, 2I, H); down (E, H, I) -> (n, H).
    gate_up and down are FP16 tensors, or packed MXFP4 (mxfp4.Mxfp4Weight: blocks and scales).
    config: grouped-GEMM tiles (5 numbers; for packed experts, the weights-first GEMMs' tiles, see
    MXFP4_PREFILL_EXPERTS_TILES), or for packed experts grouped-GEMV tiles (4 numbers, see
    MXFP4_GROUPED_GEMV); by default chosen on the number of (token, expert) pairs.
    n_real (1,) on the device: the tokens from this one on pad the call to a captured size; no
    expert weights are read for them and their rows come out equal to row n_real - 1."""
    n_tokens, hidden = x.shape
    n_pairs = expert_ids.numel()
    packed = hasattr(gate_up, "blocks")
    if packed and (config is None and n_pairs <= MXFP4_GROUPED_GEMV[0] or config is not None and len(config) == 4):
        return _prefill_experts_gemv(x, expert_ids, expert_weights, gate_up, gate_up_bias, down, down_bias,
                                     limit, alpha, config or MXFP4_GROUPED_GEMV[1], n_real)
    if packed and n_pairs > MXFP4_PREFILL_EXPERTS_TILES[-1][0] and config is None:
        return _prefill_experts_dequantized(x, expert_ids, expert_weights, gate_up, gate_up_bias, down, down_bias,
                                            limit, alpha, n_real)
    if config is None:
        config = next(tiles for most, tiles in (MXFP4_PREFILL_EXPERTS_TILES if packed else PREFILL_EXPERTS_TILES)
                      if n_pairs <= most)
    sorted_pairs, block_expert = _align_pairs_by_expert(expert_ids, gate_up.shape[0], config[0], n_real)
    act = torch.empty(sorted_pairs.shape[0], gate_up.shape[1] // 2, dtype=x.dtype, device=x.device)  # (P, I)
    pair_out = torch.empty(n_pairs, hidden, dtype=x.dtype, device=x.device)  # (S, H), row = token*K + slot
    _grouped_gemms(x, expert_weights, gate_up, gate_up_bias, down, down_bias, sorted_pairs, block_expert, act,
                   pair_out, limit, alpha, config)
    return _sum_pairs(pair_out, n_tokens, n_real)


def _grouped_gemms(x, expert_weights, gate_up, gate_up_bias, down, down_bias, sorted_pairs, block_expert, act,
                   pair_out, limit: float, alpha: float, config: tuple[int, int, int, int, int],
                   first_expert: int = 0) -> None:
    """act (P, I) = SwiGLU(gate/up GEMM), then pair_out (S, H) = weighted down GEMM, for the blocks
    of experts first_expert .. first_expert + E - 1, E = gate_up's experts (the weights given are
    those experts'; the other blocks are skipped: they belong to another call). Packed weights take
    the weights-first kernels, whose gate/up BLOCK_N counts packed rows (BLOCK_N/2 units); FP16
    weights the FP16 grouped GEMMs."""
    n_experts, two_i, hidden = gate_up.shape
    intermediate = two_i // 2
    block_m, block_n, block_k, warps, stages = config
    packed = hasattr(gate_up, "blocks")
    gate_up_kernel, down_kernel = ((_mxfp4_gate_up_gemm_t_kernel, _mxfp4_down_gemm_t_kernel) if packed
                                   else (_expert_gate_up_gemm_kernel, _expert_down_gemm_kernel))
    gate_up_weight = (gate_up.blocks, gate_up.scales) if packed else (gate_up,)
    down_weight = (down.blocks, down.scales) if packed else (down,)
    n_pairs = pair_out.shape[0]
    n_blocks = block_expert.shape[0]
    gate_up_kernel[(n_blocks, triton.cdiv(two_i if packed else intermediate, block_n))](
        x, *gate_up_weight, gate_up_bias, sorted_pairs, block_expert, act, n_pairs, first_expert, limit, alpha,
        H=hidden, I=intermediate, E=n_experts, TOP_K=n_pairs // x.shape[0],
        BLOCK_M=block_m, BLOCK_N=block_n, BLOCK_K=block_k, num_warps=warps, num_stages=stages, **_pdl(),
    )
    down_kernel[(n_blocks, triton.cdiv(hidden, block_n))](
        act, *down_weight, down_bias, sorted_pairs, block_expert, expert_weights.reshape(-1), pair_out, n_pairs,
        first_expert, H=hidden, I=intermediate, E=n_experts,
        BLOCK_M=block_m, BLOCK_N=block_n, BLOCK_K=block_k, num_warps=warps, num_stages=stages, **_pdl(),
    )


def _prefill_experts_dequantized(x, expert_ids, expert_weights, gate_up, gate_up_bias, down, down_bias,
                                 limit: float, alpha: float, n_real: torch.Tensor | None) -> torch.Tensor:
    """prefill_experts for packed experts past MXFP4_PREFILL_EXPERTS_TILES' last row: experts
    DEQUANTIZED_EXPERTS_CHUNK at a time unpacked to FP16 scratch, then the FP16 grouped GEMMs on that
    chunk's pairs. Unpacking once beats unpacking in every block of pairs when there are many blocks
    an expert."""
    n_experts, two_i, hidden = gate_up.shape
    n_pairs = expert_ids.numel()
    config = next(tiles for most, tiles in PREFILL_EXPERTS_TILES if n_pairs <= most)
    sorted_pairs, block_expert = _align_pairs_by_expert(expert_ids, n_experts, config[0], n_real)
    act = torch.empty(sorted_pairs.shape[0], two_i // 2, dtype=x.dtype, device=x.device)  # (P, I)
    pair_out = torch.empty(n_pairs, hidden, dtype=x.dtype, device=x.device)  # (S, H)
    chunk = DEQUANTIZED_EXPERTS_CHUNK
    gate_up_chunk = torch.empty(chunk, two_i, hidden, dtype=x.dtype, device=x.device)  # (C, 2I, H)
    down_chunk = torch.empty(chunk, hidden, two_i // 2, dtype=x.dtype, device=x.device)  # (C, H, I)
    for first in range(0, n_experts, chunk):  # 4 launches a chunk: 2 unpacks, 2 grouped GEMMs
        count = min(chunk, n_experts - first)
        _grouped_gemms(x, expert_weights, dequantize_mxfp4(gate_up, first, count, gate_up_chunk),
                       gate_up_bias[first:first + count], dequantize_mxfp4(down, first, count, down_chunk),
                       down_bias[first:first + count], sorted_pairs, block_expert, act, pair_out,
                       limit, alpha, config, first_expert=first)
    return _sum_pairs(pair_out, x.shape[0], n_real)


# ---------------------------------------------------------------------------------------------
# MXFP4 experts: the same GEMV and grouped GEMMs reading packed weights, unpacked in registers
# ---------------------------------------------------------------------------------------------
# Packed weights (the released layout, osslsp/engine/mxfp4.py): blocks (E, out, in/2) bytes, the low
# nibble the even input, and scales (E, out, in/32) E8M0 bytes. A byte tile of BLOCK_B bytes covers
# 2 BLOCK_B inputs: its low nibbles meet the even inputs and its high nibbles the odd ones.


@triton.jit
def _fp4_halves(packed):
    """Bytes of two E2M1 codes -> (low, high) codes as float16 values times 2^-14, in a few integer
    ops: an E2M1 code's exponent and mantissa bits, put at the top of float16's (bits 10..9), read
    as float16 with its bias of 15 instead of E2M1's 1, are the value times 2^-14 (code 1, a
    subnormal in both, too). _fp4_scaled takes the 2^14 back."""
    p = packed.to(tl.uint16)
    low = (((p & 0x07) << 9) | ((p & 0x08) << 12)).to(tl.float16, bitcast=True)
    high = (((p & 0x70) << 5) | ((p & 0x80) << 8)).to(tl.float16, bitcast=True)
    return low, high


@triton.jit
def _scale_factors(scales):
    """E8M0 scale bytes -> float16 2^(s - 127) * 2^7, for _fp4_scaled. Capped at 2^15 (float16's
    largest power of two: scales past 2^8 would mean weights past 1,536, which no model has), and 0
    below float16's range, where every value of the block is 0 in float16 anyway."""
    exact = (scales.to(tl.int32) << 23).to(tl.float32, bitcast=True) * 128.0
    return tl.minimum(exact, 32768.0).to(tl.float16)


@triton.jit
def _fp4_scaled(code, factor):
    """A code from _fp4_halves (value * 2^-14) times its block's _scale_factors, in float16: the
    first product (value * 2^-7) is exact, the second rounds once, as float32 then float16 would,
    with no conversion per value."""
    return (code * 128.0) * factor


# Packed GEMVs read the blocks as 32-bit words (8 E2M1 codes). Word w of a row holds inputs
# 8w..8w+7, low nibble first; in registers it becomes 4 fp16x2 pairs (code_j, code_{j+4}), j = 0..3
# (_unpack8), each multiplied by the fp16x2 pair (x_j, x_{j+4}) of the same inputs (_fma8). The x
# side comes pre-arranged as "word pairs" (see word_pairs): P[j, w] = (x_{8w+j}, x_{8w+j+4}), so that
# a thread loads the pairs of its block's 4 words with one 128-bit load each, in the very layout of
# the packed tile, and nothing changes layout (no shared memory, no barrier) inside the loop.

# Nibbles j and j+4 of a word sit 16 bits apart: one shift puts both magnitudes at float16 bits
# 9..11 and another both signs at bit 15; read as float16 that is the E2M1 value times 2^-14 (the
# subnormal code 0.5 too), and one fp16x2 multiply by 2^14 makes it exact.
_UNPACK8_ASM = tl.constexpr("""
{
.reg .b32 a, b, two14;
mov.b32 two14, 0x74007400;
shl.b32 a, $4, 9;
shl.b32 b, $4, 12;
and.b32 b, b, 0x80008000;
lop3.b32 $0, a, b, 0x0E000E00, 0xEC;
mul.rn.f16x2 $0, $0, two14;
shl.b32 a, $4, 5;
shl.b32 b, $4, 8;
and.b32 b, b, 0x80008000;
lop3.b32 $1, a, b, 0x0E000E00, 0xEC;
mul.rn.f16x2 $1, $1, two14;
shl.b32 a, $4, 1;
shl.b32 b, $4, 4;
and.b32 b, b, 0x80008000;
lop3.b32 $2, a, b, 0x0E000E00, 0xEC;
mul.rn.f16x2 $2, $2, two14;
shr.b32 a, $4, 3;
and.b32 b, $4, 0x80008000;
lop3.b32 $3, a, b, 0x0E000E00, 0xEC;
mul.rn.f16x2 $3, $3, two14;
}
""")

# The 8 products of a word, summed in fp16x2 (4 lanes deep), then the two lanes in float32.
_FMA8_ASM = tl.constexpr("""
{
.reg .b32 acc;
.reg .b16 lo, hi;
.reg .f32 flo, fhi;
mul.rn.f16x2 acc, $1, $5;
fma.rn.f16x2 acc, $2, $6, acc;
fma.rn.f16x2 acc, $3, $7, acc;
fma.rn.f16x2 acc, $4, $8, acc;
mov.b32 {lo, hi}, acc;
cvt.f32.f16 flo, lo;
cvt.f32.f16 fhi, hi;
add.f32 $0, flo, fhi;
}
""")


@triton.jit
def _unpack8(packed):
    """Packed words -> 4 int32 words each, the fp16x2 pairs (code_j, code_{j+4}), j = 0..3."""
    return tl.inline_asm_elementwise(_UNPACK8_ASM, "=r,=r,=r,=r,r", [packed],
                                     dtype=(tl.int32, tl.int32, tl.int32, tl.int32), is_pure=True, pack=1)


@triton.jit
def _fma8(m0, m1, m2, m3, p0, p1, p2, p3):
    """sum_j m_j . p_j over fp16x2 pairs (_unpack8's codes, word pairs of x), as float32."""
    return tl.inline_asm_elementwise(_FMA8_ASM, "=r,r,r,r,r,r,r,r,r", [m0, m1, m2, m3, p0, p1, p2, p3],
                                     dtype=tl.float32, is_pure=True, pack=1)


@triton.jit
def _e8m0(scales):
    """E8M0 scale bytes -> 2^(s - 127) as float32 (s = 0, below float32's normals, reads as 0)."""
    return (scales.to(tl.int32) << 23).to(tl.float32, bitcast=True)


@triton.jit
def _row_dot_step(acc, XP, words, ok, N_WORDS: tl.constexpr, m0, m1, m2, m3, scale):
    """acc (R, BG) += one x row's dot with an unpacked tile of words (R, 4 BG), block by block, times
    the blocks' scales (R, BG). XP: that row's word pairs (4, N_WORDS) int32; words: (R, 4 BG) word
    indices (the tile's shape, so that the pairs load in the tile's layout)."""
    p0 = tl.load(XP + words, mask=ok, other=0)
    p1 = tl.load(XP + N_WORDS + words, mask=ok, other=0)
    p2 = tl.load(XP + 2 * N_WORDS + words, mask=ok, other=0)
    p3 = tl.load(XP + 3 * N_WORDS + words, mask=ok, other=0)
    dots = _fma8(m0, m1, m2, m3, p0, p1, p2, p3)  # (R, 4 BG)
    return acc + tl.sum(tl.reshape(dots, (acc.shape[0], acc.shape[1], 4)), axis=2) * scale


@triton.jit
def _packed_rows_dot(Words, Scales, scale_row, rows, X0, X1, X2, X3, N_GROUPS: tl.constexpr,
                     BLOCK_G: tl.constexpr, N_X: tl.constexpr):
    """Dot products of the packed rows `rows` (R,) (int64 indices into (rows, 4G) words and (rows, G)
    scales) with N_X (1..4) x rows given as word pairs X0..X3 (each (4, 4G) int32; the ones past N_X
    are not read): four (R,) float32 sums, zeros past N_X. Each weight tile is loaded and unpacked
    once for every x row. Tiles are (R, 4 BLOCK_G) words, contiguous along a row, so that every
    Triton version lays a warp along a row's words (128-bit loads, a block a thread); the loop is
    unrolled, so that the next step's loads are issued while this one computes. scale_row: G, given
    at run time (not as a constant) so that the scale loads are not vectorized: one byte a thread,
    in the layout of the tile's block sums."""
    n_words: tl.constexpr = 4 * N_GROUPS
    shape: tl.constexpr = (rows.shape[0], 4 * BLOCK_G)
    columns = tl.arange(0, 4 * BLOCK_G)[None, :]  # (1, 4 BG)
    blocks = tl.arange(0, BLOCK_G)[None, :]  # (1, BG)
    row_words = Words + rows[:, None] * n_words  # (R, 1)
    row_scales = Scales + rows[:, None] * scale_row
    acc0 = tl.zeros((rows.shape[0], BLOCK_G), tl.float32)
    acc1 = tl.zeros((rows.shape[0], BLOCK_G), tl.float32)
    acc2 = tl.zeros((rows.shape[0], BLOCK_G), tl.float32)
    acc3 = tl.zeros((rows.shape[0], BLOCK_G), tl.float32)
    for g0 in tl.static_range(0, N_GROUPS, BLOCK_G):
        words = tl.broadcast_to(4 * g0 + columns, shape)  # word index in a row
        ok = words < n_words
        packed = tl.load(row_words + words, mask=ok, other=0)  # (R, 4 BG)
        scale = _e8m0(tl.load(row_scales + g0 + blocks, mask=g0 + blocks < N_GROUPS, other=0))  # (R, BG)
        m0, m1, m2, m3 = _unpack8(packed)
        acc0 = _row_dot_step(acc0, X0, words, ok, n_words, m0, m1, m2, m3, scale)
        if N_X > 1:
            acc1 = _row_dot_step(acc1, X1, words, ok, n_words, m0, m1, m2, m3, scale)
        if N_X > 2:
            acc2 = _row_dot_step(acc2, X2, words, ok, n_words, m0, m1, m2, m3, scale)
        if N_X > 3:
            acc3 = _row_dot_step(acc3, X3, words, ok, n_words, m0, m1, m2, m3, scale)
    return tl.sum(acc0, axis=1), tl.sum(acc1, axis=1), tl.sum(acc2, axis=1), tl.sum(acc3, axis=1)


@triton.jit
def _store_word_pairs(Pairs16, units, values, n, mask=None):
    """Store values (m,) of entries `units` (m,) of a vector of n into its word pairs, read as
    float16 (4, n/8, 2): entry 8w + 4h + j goes to [j, w, h]."""
    tl.store(Pairs16 + ((units % 4) * (n // 8) + units // 8) * 2 + (units % 8) // 4, values.to(tl.float16),
             mask=mask)


@triton.jit
def _gate_up_gemv_kernel(XP, Words, Scales, scale_row, Bias, ExpertIds, ActPairs16, limit, alpha,
                         H: tl.constexpr, I: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_G: tl.constexpr,
                         PDL: tl.constexpr):
    _inputs_ready(PDL)  # the router, just before, chose the experts
    slot = tl.program_id(1)  # which of the top-k experts
    expert = tl.load(ExpertIds + slot).to(tl.int64)
    # 2 BLOCK_M consecutive packed rows: gate and up of BLOCK_M intermediate units, interleaved.
    rows = expert * 2 * I + tl.program_id(0) * 2 * BLOCK_M + tl.arange(0, 2 * BLOCK_M)
    dots = _packed_rows_dot(Words, Scales, scale_row, rows, XP, XP, XP, XP, H // 32, BLOCK_G, 1)[0]
    gate, up = tl.split(tl.reshape(dots + tl.load(Bias + rows).to(tl.float32), (BLOCK_M, 2)))
    units = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    _store_word_pairs(ActPairs16 + slot * I, units, _swiglu(gate, up, limit, alpha), I)


@triton.jit
def _down_gemv_kernel(ActPairs, Words, Scales, scale_row, Bias, ExpertIds, ExpertWeights, Out,
                      Residual, NormWeight, Normed, Counter, eps,
                      H: tl.constexpr, I: tl.constexpr, TOP_K: tl.constexpr,
                      BLOCK_M: tl.constexpr, BLOCK_G: tl.constexpr, NORM: tl.constexpr, BLOCK_H: tl.constexpr,
                      ROW_LINES: tl.constexpr, PDL: tl.constexpr):
    # Every chosen expert in one program: out (H,) is written once, in the activations' dtype. With
    # NORM the last program to finish (an atomic ticket) adds out to Residual and writes the next
    # RMSNorm of it to Normed.
    units = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)  # hidden index
    # The experts were chosen two launches back (the router, before the gate/up GEMV): their rows
    # can be on their way to L2 while the gate/up GEMV finishes.
    lines = tl.arange(0, ROW_LINES)[None, :]  # the 128-byte lines of a row's I/2 bytes, rounded up
    for slot in tl.static_range(TOP_K):
        rows = tl.load(ExpertIds + slot).to(tl.int64) * H + units
        _prefetch_l2(Words + rows[:, None] * (I // 8) + tl.minimum(lines * 32, I // 8 - 1), PDL)
        _prefetch_l2(Scales + rows * scale_row, PDL)
    _inputs_ready(PDL)
    total = tl.zeros([BLOCK_M], tl.float32)
    for slot in tl.static_range(TOP_K):
        expert = tl.load(ExpertIds + slot).to(tl.int64)
        rows = expert * H + units
        act = ActPairs + slot * (I // 2)  # (K, 4, I/8) int32
        dots = _packed_rows_dot(Words, Scales, scale_row, rows, act, act, act, act, I // 32, BLOCK_G, 1)[0]
        dots += tl.load(Bias + rows).to(tl.float32)
        total += tl.load(ExpertWeights + slot).to(tl.float32) * dots
    tl.store(Out + units, total.to(Out.dtype.element_ty))
    if NORM:
        tl.debug_barrier()  # every thread's rows are written before the ticket is taken
        if tl.atomic_add(Counter, 1, sem="acq_rel") == tl.num_programs(0) - 1:
            _add_rmsnorm_row(Residual, Out, NormWeight, Normed, eps, H, BLOCK_H)
            tl.store(Counter, 0)


def _packed(weight) -> tuple[torch.Tensor, torch.Tensor, int]:
    """A packed weight as the GEMVs take it: blocks (E, out, G, 16) bytes as (E, out, 4G) int32
    words (a view), scales (E, out, G), G."""
    experts, rows, groups, _ = weight.blocks.shape
    return weight.blocks.view(torch.int32).view(experts, rows, 4 * groups), weight.scales, groups


def word_pairs(x: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """x (..., n) -> its word pairs (..., 4, n/8) int32, the float16 pairs (x_{8w+j}, x_{8w+j+4}) at
    [j, w]: the x side of the packed GEMVs."""
    pairs = x.to(torch.float16).unflatten(-1, (-1, 2, 4)).movedim(-1, -3)  # (..., 4, n/8, 2)
    if out is None:
        return pairs.contiguous().view(torch.int32).squeeze(-1)
    out.view(torch.float16).view(pairs.shape).copy_(pairs)
    return out


class DecodeExpertsMxfp4(DecodeExperts):
    """DecodeExperts for packed experts (mxfp4.Mxfp4Weight), reading 32-bit words; tiles are
    (rows, blocks a step, num_warps), the defaults the best measured on an H200 (benchmarks/MXFP4.md).
    The activations between the two GEMVs are float16 word pairs; `x_pairs` (4, H/8) takes x's
    word pairs from whoever computes x (add_rmsnorm's `pairs`), else __call__ arranges them."""

    def __init__(self, hidden: int, intermediate: int, top_k: int, dtype: torch.dtype, device: torch.device,
                 gate_up_block: tuple[int, int, int] = (2, 16, 1), down_block: tuple[int, int, int] = (2, 16, 1)):
        super().__init__(hidden, intermediate, top_k, torch.float16, device, gate_up_block, down_block)
        self.x_pairs = torch.empty(4, hidden // 8, dtype=torch.int32, device=device)
        self.act_pairs = torch.empty(top_k, 4, intermediate // 8, dtype=torch.int32, device=device)
        self.counter = torch.zeros(1, dtype=torch.int32, device=device)  # the down GEMV's ticket

    def __call__(self, x, gate_up, gate_up_bias, down, down_bias, expert_ids, expert_weights, limit, alpha, out,
                 x_pairs_ready: bool = False, then_norm: NextNorm | None = None) -> None:
        if not x_pairs_ready:
            word_pairs(x, self.x_pairs)
        self.gate_up(x, gate_up, gate_up_bias, expert_ids, limit, alpha)
        self.down(down, down_bias, expert_ids, expert_weights, out, then_norm)

    def gate_up(self, x, gate_up, gate_up_bias, expert_ids, limit: float, alpha: float) -> None:
        """self.act_pairs = SwiGLU of each chosen expert's gate/up projection of self.x_pairs (x unused)."""
        bm, bg, warps = self.gate_up_block
        _gate_up_gemv_kernel[(triton.cdiv(self.intermediate, bm), self.top_k)](
            self.x_pairs, *_packed(gate_up), gate_up_bias, expert_ids,
            self.act_pairs.view(torch.float16), limit, alpha,
            H=self.hidden, I=self.intermediate, BLOCK_M=bm, BLOCK_G=bg, num_warps=warps, **_pdl(),
        )

    def down(self, down, down_bias, expert_ids, expert_weights, out, then_norm: NextNorm | None = None) -> None:
        bm, bg, warps = self.down_block
        norm = then_norm or NextNorm(out, out, 0.0, out)  # (not read without then_norm)
        _down_gemv_kernel[(triton.cdiv(self.hidden, bm),)](
            self.act_pairs, *_packed(down), down_bias, expert_ids, expert_weights, out,
            norm.residual, norm.weight, norm.normed, self.counter, norm.eps,
            H=self.hidden, I=self.intermediate, TOP_K=self.top_k, BLOCK_M=bm, BLOCK_G=bg,
            NORM=then_norm is not None, BLOCK_H=triton.next_power_of_2(self.hidden),
            ROW_LINES=triton.next_power_of_2(triton.cdiv(self.intermediate // 2, 128)), num_warps=warps, **_pdl(),
        )


# -- experts of a few tokens: grouped GEMVs, each weight tile unpacked once for up to 4 rows ----------


@triton.jit
def _block_rows(SortedPairs, n_pairs, N_X: tl.constexpr):
    """This program's first sorted slot and the pairs of its N_X (<= 4) slots (n_pairs past N_X)."""
    first = tl.program_id(0) * N_X
    pair0 = tl.load(SortedPairs + first)
    pair1 = tl.load(SortedPairs + first + 1) if N_X > 1 else n_pairs
    pair2 = tl.load(SortedPairs + first + 2) if N_X > 2 else n_pairs
    pair3 = tl.load(SortedPairs + first + 3) if N_X > 3 else n_pairs
    return first, pair0, pair1, pair2, pair3


@triton.jit
def _grouped_gate_up_gemv_kernel(XP, Words, Scales, scale_row, Bias, SortedPairs, BlockExpert, ActPairs16, n_pairs,
                                 limit, alpha, H: tl.constexpr, I: tl.constexpr, E: tl.constexpr,
                                 TOP_K: tl.constexpr, N_X: tl.constexpr, BLOCK_M: tl.constexpr,
                                 BLOCK_G: tl.constexpr, PDL: tl.constexpr):
    # Program (block of N_X sorted pairs of one expert, BLOCK_M intermediate units) -> the block's
    # act rows, as word pairs (P, 4, I/8). A padding pair reads token 0; its act row is never read.
    _inputs_ready(PDL)
    expert = tl.load(BlockExpert + tl.program_id(0)).to(tl.int64)
    if expert >= E:  # a block past the last expert's padded rows
        return
    first, pair0, pair1, pair2, pair3 = _block_rows(SortedPairs, n_pairs, N_X)
    row = H // 2  # a token's word pairs (4, H/8) int32
    x0 = XP + tl.where(pair0 < n_pairs, pair0 // TOP_K, 0).to(tl.int64) * row
    x1 = XP + tl.where(pair1 < n_pairs, pair1 // TOP_K, 0).to(tl.int64) * row
    x2 = XP + tl.where(pair2 < n_pairs, pair2 // TOP_K, 0).to(tl.int64) * row
    x3 = XP + tl.where(pair3 < n_pairs, pair3 // TOP_K, 0).to(tl.int64) * row
    rows = expert * 2 * I + tl.program_id(1) * 2 * BLOCK_M + tl.arange(0, 2 * BLOCK_M)  # gate, up interleaved
    dots = _packed_rows_dot(Words, Scales, scale_row, rows, x0, x1, x2, x3, H // 32, BLOCK_G, N_X)
    bias = tl.load(Bias + rows).to(tl.float32)
    units = tl.program_id(1) * BLOCK_M + tl.arange(0, BLOCK_M)
    for r in tl.static_range(N_X):
        gate, up = tl.split(tl.reshape(dots[r] + bias, (BLOCK_M, 2)))
        _store_word_pairs(ActPairs16 + (first + r).to(tl.int64) * I, units, _swiglu(gate, up, limit, alpha), I)


@triton.jit
def _grouped_down_gemv_kernel(ActPairs, Words, Scales, scale_row, Bias, SortedPairs, BlockExpert, PairWeights, PairOut,
                              n_pairs, H: tl.constexpr, I: tl.constexpr, E: tl.constexpr,
                              N_X: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_G: tl.constexpr, PDL: tl.constexpr):
    # Program (block of N_X sorted pairs of one expert, BLOCK_M hidden units) -> pair_out rows (S, H).
    _inputs_ready(PDL)
    expert = tl.load(BlockExpert + tl.program_id(0)).to(tl.int64)
    if expert >= E:
        return
    first, pair0, pair1, pair2, pair3 = _block_rows(SortedPairs, n_pairs, N_X)
    row = I // 2  # a slot's act word pairs (4, I/8) int32
    act = ActPairs + first.to(tl.int64) * row
    units = tl.program_id(1) * BLOCK_M + tl.arange(0, BLOCK_M)  # hidden index
    rows = expert * H + units
    dots = _packed_rows_dot(Words, Scales, scale_row, rows, act, act + row, act + 2 * row, act + 3 * row,
                            I // 32, BLOCK_G, N_X)
    bias = tl.load(Bias + rows).to(tl.float32)
    pairs = (pair0, pair1, pair2, pair3)
    for r in tl.static_range(N_X):
        pair = pairs[r]
        real = tl.broadcast_to(pair, [BLOCK_M]) < n_pairs  # (BLOCK_M,): a padding pair stores nothing
        weight = tl.load(PairWeights + tl.minimum(pair, n_pairs - 1)).to(tl.float32)
        tl.store(PairOut + pair.to(tl.int64) * H + units, (weight * (dots[r] + bias)).to(PairOut.dtype.element_ty),
                 mask=real)


# (most pairs, (rows a block, rows a program, blocks a step, num_warps)) for packed experts: up to
# this many (token, expert) pairs (the keystroke graph's 16 tokens) go through the grouped GEMVs
# instead of the grouped GEMMs. 4 weight rows a program keep the 4-row kernel at 99 registers
# (8 rows: 211, two programs an SM).
MXFP4_GROUPED_GEMV = (64, (4, 4, 32, 4))


def _prefill_experts_gemv(x, expert_ids, expert_weights, gate_up, gate_up_bias, down, down_bias,
                          limit: float, alpha: float, config: tuple[int, int, int, int],
                          n_real: torch.Tensor | None = None) -> torch.Tensor:
    """prefill_experts for a few pairs on packed experts: grouped GEMVs over blocks of up to 4 pairs
    of one expert, each weight tile unpacked once a block."""
    n_tokens, hidden = x.shape
    n_pairs = expert_ids.numel()
    n_experts, two_i, _ = gate_up.shape
    intermediate = two_i // 2
    n_x, block_m, block_g, warps = config
    sorted_pairs, block_expert = _align_pairs_by_expert(expert_ids, n_experts, n_x, n_real)
    act_pairs = torch.empty(sorted_pairs.shape[0], 4, intermediate // 8, dtype=torch.int32, device=x.device)
    pair_out = torch.empty(n_pairs, hidden, dtype=x.dtype, device=x.device)  # (S, H), row = token*K + slot
    n_blocks = block_expert.shape[0]
    _grouped_gate_up_gemv_kernel[(n_blocks, triton.cdiv(intermediate, block_m))](
        word_pairs(x), *_packed(gate_up), gate_up_bias, sorted_pairs, block_expert,
        act_pairs.view(torch.float16), n_pairs, limit, alpha, H=hidden, I=intermediate, E=n_experts,
        TOP_K=n_pairs // n_tokens, N_X=n_x, BLOCK_M=block_m, BLOCK_G=block_g, num_warps=warps, **_pdl(),
    )
    _grouped_down_gemv_kernel[(n_blocks, triton.cdiv(hidden, block_m))](
        act_pairs, *_packed(down), down_bias, sorted_pairs, block_expert,
        expert_weights.reshape(-1), pair_out, n_pairs, H=hidden, I=intermediate, E=n_experts,
        N_X=n_x, BLOCK_M=block_m, BLOCK_G=block_g, num_warps=warps, **_pdl(),
    )
    return _sum_pairs(pair_out, n_tokens, n_real)


# -- the greedy pick at the end of the decode graph ---------------------------------------------------


@triton.jit
def _greedy_pick_kernel(Logits, n_logits, PartMax, PartIndex, PartBad, Counter, Token, Position, Pick,
                        non_finite, BLOCK: tl.constexpr, PROGRAMS_PAD: tl.constexpr, PDL: tl.constexpr):
    # Each program scans its share of the logits (the running max, its first index, the count of
    # values that are not finite); the last to finish (an atomic ticket) combines the shares,
    # writes the pick (for the host) and the next step's token, and advances the position, so that
    # the next replay needs nothing from the host.
    _inputs_ready(PDL)
    program = tl.program_id(0)
    share = tl.cdiv(n_logits, tl.num_programs(0))
    end = tl.minimum(share * (program + 1), n_logits)
    best = float("-inf")
    best_index = n_logits
    bad = 0
    for start in range(share * program, end, BLOCK):
        index = start + tl.arange(0, BLOCK)
        valid = index < end
        x = tl.load(Logits + index, mask=valid, other=float("-inf")).to(tl.float32)
        bad += tl.sum((valid & ((x != x) | (tl.abs(x) == float("inf")))).to(tl.int32), axis=0)
        block_best = tl.max(x, axis=0)
        block_index = tl.min(tl.where(x == block_best, index, n_logits), axis=0)  # the first, as argmax
        better = block_best > best
        best_index = tl.where(better, block_index, best_index)
        best = tl.where(better, block_best, best)
    tl.store(PartMax + program, best)
    tl.store(PartIndex + program, best_index)
    tl.store(PartBad + program, bad)
    tl.debug_barrier()  # the share is written before the ticket is taken
    if tl.atomic_add(Counter, 1, sem="acq_rel") == tl.num_programs(0) - 1:
        programs = tl.arange(0, PROGRAMS_PAD)
        mine = programs < tl.num_programs(0)
        # .cg: shares other programs wrote, read from L2 rather than a stale L1 line
        maxima = tl.load(PartMax + programs, mask=mine, other=float("-inf"), cache_modifier=".cg")
        indices = tl.load(PartIndex + programs, mask=mine, other=n_logits, cache_modifier=".cg")
        any_bad = tl.sum(tl.load(PartBad + programs, mask=mine, other=0, cache_modifier=".cg"), axis=0) > 0
        top = tl.max(maxima, axis=0)
        pick = tl.min(tl.where(maxima == top, indices, n_logits), axis=0)
        tl.store(Token, tl.where(any_bad, 0, pick).to(Token.dtype.element_ty))  # any id will do after bad logits
        tl.store(Pick, tl.where(any_bad, non_finite, pick).to(Pick.dtype.element_ty))
        tl.store(Position, tl.load(Position) + 1)
        tl.store(Counter, 0)


GREEDY_PICK_PROGRAMS = 64  # programs of the greedy pick: ~3,100 of gpt-oss's 201,088 logits each


class GreedyPick:
    """The greedy pick of the decode graph's logits, in one launch (see _greedy_pick_kernel): it
    replaces an argmax, a finiteness check, a token copy and the host's position fill, a dozen small
    launches a token."""

    def __init__(self, device: torch.device):
        self.part_max = torch.empty(GREEDY_PICK_PROGRAMS, dtype=torch.float32, device=device)
        self.part_index = torch.empty(GREEDY_PICK_PROGRAMS, dtype=torch.int32, device=device)
        self.part_bad = torch.empty(GREEDY_PICK_PROGRAMS, dtype=torch.int32, device=device)
        self.counter = torch.zeros(1, dtype=torch.int32, device=device)

    def __call__(self, logits: torch.Tensor, token: torch.Tensor, position: torch.Tensor, pick: torch.Tensor,
                 non_finite: int) -> None:
        """logits (1, V) -> pick (1,) long: their argmax, or non_finite if any is not finite; token
        (1,) long: the argmax (0 after bad logits); position (1,): advanced by one. All on the device."""
        _greedy_pick_kernel[(GREEDY_PICK_PROGRAMS,)](
            logits, logits.numel(), self.part_max, self.part_index, self.part_bad, self.counter, token, position,
            pick, non_finite, BLOCK=1024, PROGRAMS_PAD=triton.next_power_of_2(GREEDY_PICK_PROGRAMS),
            num_warps=4, **_pdl(),
        )


# -- the router at decode: logits, top-k and softmax of one token ------------------------------------


@triton.jit
def _route_kernel(X, Weight, Bias, Logits, Counter, TopIds, TopWeights,
                  H: tl.constexpr, E: tl.constexpr, E_PAD: tl.constexpr, TOP_K: tl.constexpr,
                  PER_PROGRAM: tl.constexpr, BLOCK_H: tl.constexpr, PDL: tl.constexpr):
    # Each program computes PER_PROGRAM logits; the last program to finish (a ticket taken with an
    # atomic) reads them all, picks the top k and resets the ticket counter for the next launch.
    experts = tl.program_id(0) * PER_PROGRAM + tl.arange(0, PER_PROGRAM)
    real = experts < E
    cols = tl.arange(0, BLOCK_H)
    w = tl.load(Weight + experts[:, None] * H + cols[None, :], mask=real[:, None] & (cols < H)[None, :], other=0.0)
    _inputs_ready(PDL)
    x = tl.load(X + cols, mask=cols < H, other=0.0).to(tl.float32)
    logits = tl.sum(w.to(tl.float32) * x[None, :], axis=1) + tl.load(Bias + experts, mask=real, other=0.0)
    # Rounded to the activations' dtype as F.linear's output is, so that ties and order match the model's.
    tl.store(Logits + experts, logits.to(X.dtype.element_ty).to(tl.float32), mask=real)
    tl.debug_barrier()  # every thread's logits are written before the ticket is taken
    ticket = tl.atomic_add(Counter, 1, sem="acq_rel")
    if ticket == tl.num_programs(0) - 1:
        every = tl.arange(0, E_PAD)
        remaining = tl.load(Logits + every, mask=every < E, other=float("-inf"), cache_modifier=".cg")
        slots = tl.arange(0, TOP_K)
        picked = tl.zeros([TOP_K], tl.int32)
        values = tl.zeros([TOP_K], tl.float32)
        for k in tl.static_range(TOP_K):
            best = tl.max(remaining, axis=0)
            index = tl.min(tl.where(remaining == best, every, E_PAD), axis=0)  # the lowest id among ties, as topk
            picked = tl.where(slots == k, index, picked)
            values = tl.where(slots == k, best, values)
            remaining = tl.where(every == index, float("-inf"), remaining)
        weights = tl.exp(values - tl.max(values, axis=0))
        weights = weights / tl.sum(weights, axis=0)
        tl.store(TopIds + slots, picked.to(TopIds.dtype.element_ty))
        tl.store(TopWeights + slots, weights.to(TopWeights.dtype.element_ty))
        tl.store(Counter, 0)


class DecodeRouter:
    """Top-k expert ids (K,) and softmax weights (K,) of one token's router logits, in one launch
    of E / per_program programs."""

    def __init__(self, top_k: int, dtype: torch.dtype, device: torch.device, per_program: int = 2,
                 num_warps: int = 4):
        self.top_k, self.per_program, self.num_warps = top_k, per_program, num_warps
        self.ids = torch.empty(top_k, dtype=torch.long, device=device)
        self.weights = torch.empty(top_k, dtype=dtype, device=device)
        self.counter = torch.zeros(1, dtype=torch.int32, device=device)
        self.logits: torch.Tensor | None = None  # (E,) float32, sized at the first call

    def __call__(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (H,); weight (E, H); bias (E,) -> (ids, weights), buffers rewritten by the next call."""
        n_experts, hidden = weight.shape
        if self.logits is None or self.logits.numel() != n_experts:
            self.logits = torch.empty(n_experts, dtype=torch.float32, device=x.device)
        _route_kernel[(triton.cdiv(n_experts, self.per_program),)](
            x, weight, bias, self.logits, self.counter, self.ids, self.weights,
            H=hidden, E=n_experts, E_PAD=triton.next_power_of_2(n_experts), TOP_K=self.top_k,
            PER_PROGRAM=self.per_program, BLOCK_H=triton.next_power_of_2(hidden), num_warps=self.num_warps,
            **_pdl(),
        )
        return self.ids, self.weights


# The packed grouped GEMMs (prompts past the grouped GEMVs, MXFP4_PREFILL_EXPERTS_TILES), computed
# weights first: out^T (outputs, pairs) = W (outputs, in) @ x^T (in, pairs), the unpacked weight
# tile as tl.dot's first operand. On Hopper, wgmma takes its first operand from registers, where
# the tile is unpacked, and only its second (x^T, plain loads) from shared memory, pipelined; as the
# second operand the tile would go through shared memory first (2.2x slower at 2,048 tokens).


@triton.jit
def _mxfp4_row_scales(Scales, rows, row_ok, k0, n_in: tl.constexpr, BLOCK_K: tl.constexpr):
    """The scale bytes (BLOCK_N, BLOCK_K/32) of inputs k0 .. k0 + BLOCK_K - 1 of the packed rows
    `rows` (BLOCK_N, 1) (row_ok masks them; past n_in, 0)."""
    groups = k0 // 32 + tl.arange(0, BLOCK_K // 32)
    return tl.load(Scales + rows * (n_in // 32) + groups[None, :], mask=row_ok & (groups < n_in // 32)[None, :],
                   other=0)


@triton.jit
def _mxfp4_row_tile(Blocks, scales, rows, row_ok, k0, n_in: tl.constexpr, BLOCK_K: tl.constexpr, dtype: tl.constexpr):
    """Weight tile (BLOCK_N, BLOCK_K) of inputs k0 .. k0 + BLOCK_K - 1 in order, from the packed
    rows `rows` (BLOCK_N, 1) (row_ok masks them) and their _mxfp4_row_scales: each byte's two
    codes joined side by side (even input, odd input), one scale per 32 inputs broadcast over its
    16 bytes."""
    bytes_ = k0 // 2 + tl.arange(0, BLOCK_K // 2)
    packed = tl.load(Blocks + rows * (n_in // 2) + bytes_[None, :], mask=row_ok & (bytes_ < n_in // 2)[None, :],
                     other=0)  # (BLOCK_N, BLOCK_K/2)
    factor = tl.reshape(tl.broadcast_to(_scale_factors(scales)[:, :, None], (rows.shape[0], BLOCK_K // 32, 16)),
                        (rows.shape[0], BLOCK_K // 2))
    low, high = _fp4_halves(packed)
    values = tl.join(_fp4_scaled(low, factor), _fp4_scaled(high, factor))  # (BLOCK_N, BLOCK_K/2, 2)
    return tl.reshape(values, (rows.shape[0], BLOCK_K)).to(dtype)


@triton.jit
def _mxfp4_rows_times_columns(Blocks, Scales, rows, row_ok, Columns, column_ok, n_in: tl.constexpr,
                              BLOCK_M: tl.constexpr, BLOCK_K: tl.constexpr):
    """(BLOCK_N, BLOCK_M) float32 = packed rows `rows` (BLOCK_N, 1) of n_in inputs, unpacked, @ the
    FP16 columns at Columns (1, BLOCK_M) (each a row of n_in contiguous values in memory; those not
    column_ok (BLOCK_M,) read as 0)."""
    ks = tl.arange(0, BLOCK_K)
    acc = tl.zeros([rows.shape[0], BLOCK_M], tl.float32)
    scales = _mxfp4_row_scales(Scales, rows, row_ok, 0, n_in, BLOCK_K)
    for k0 in range(0, n_in, BLOCK_K):
        columns = tl.load(Columns + k0 + ks[:, None], mask=((k0 + ks) < n_in)[:, None] & column_ok[None, :],
                          other=0.0)  # (BLOCK_K, BLOCK_M)
        tile = _mxfp4_row_tile(Blocks, scales, rows, row_ok, k0, n_in, BLOCK_K, Columns.dtype.element_ty)
        # The next step's scales, a step ahead: too narrow for the pipeliner's asynchronous copies,
        # a load in the step that uses them would wait out its whole latency every step.
        scales = _mxfp4_row_scales(Scales, rows, row_ok, k0 + BLOCK_K, n_in, BLOCK_K)
        acc = tl.dot(tile, columns, acc)
    return acc


@triton.jit(do_not_specialize=["n_pairs", "first_expert"])
def _mxfp4_gate_up_gemm_t_kernel(X, Blocks, Scales, Bias, SortedPairs, BlockExpert, Act, n_pairs, first_expert,
                                 limit, alpha,
                                 H: tl.constexpr, I: tl.constexpr, E: tl.constexpr, TOP_K: tl.constexpr,
                                 BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
                                 PDL: tl.constexpr):
    # Program (block of BLOCK_M pairs, BLOCK_N packed rows = BLOCK_N/2 units: gate row 2u, up 2u+1).
    _inputs_ready(PDL)
    expert, slots, pairs, valid = _block_pairs(BlockExpert, SortedPairs, n_pairs, first_expert, BLOCK_M)
    if (expert < 0) | (expert >= E):  # another chunk's block, or past the last expert's padded rows
        return
    tokens = (pairs // TOP_K).to(tl.int64)
    rows = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)  # packed row: 2 unit + (0 gate, 1 up)
    row_ok = rows < 2 * I
    acc = _mxfp4_rows_times_columns(Blocks, Scales, expert * 2 * I + rows[:, None].to(tl.int64), row_ok[:, None],
                                    X + tokens[None, :] * H, valid, H, BLOCK_M, BLOCK_K)  # (BLOCK_N, BLOCK_M)
    acc += tl.load(Bias + expert * 2 * I + rows, mask=row_ok, other=0.0)[:, None].to(tl.float32)
    gate, up = tl.split(tl.permute(tl.reshape(acc, (BLOCK_N // 2, 2, BLOCK_M)), (0, 2, 1)))  # (BLOCK_N/2, BLOCK_M)
    units = tl.program_id(1) * (BLOCK_N // 2) + tl.arange(0, BLOCK_N // 2)
    tl.store(Act + slots[None, :].to(tl.int64) * I + units[:, None],
             _swiglu(gate, up, limit, alpha).to(Act.dtype.element_ty), mask=(units < I)[:, None])


@triton.jit(do_not_specialize=["n_pairs", "first_expert"])
def _mxfp4_down_gemm_t_kernel(Act, Blocks, Scales, Bias, SortedPairs, BlockExpert, PairWeights, PairOut, n_pairs,
                              first_expert,
                              H: tl.constexpr, I: tl.constexpr, E: tl.constexpr,
                              BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
                              PDL: tl.constexpr):
    # Program (block of BLOCK_M pairs, BLOCK_N hidden units).
    _inputs_ready(PDL)
    expert, slots, pairs, valid = _block_pairs(BlockExpert, SortedPairs, n_pairs, first_expert, BLOCK_M)
    if (expert < 0) | (expert >= E):  # another chunk's block, or past the last expert's padded rows
        return
    cols = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)  # hidden index
    col_ok = cols < H
    acc = _mxfp4_rows_times_columns(Blocks, Scales, expert * H + cols[:, None].to(tl.int64), col_ok[:, None],
                                    Act + slots[None, :].to(tl.int64) * I, valid, I, BLOCK_M, BLOCK_K)
    y = acc + tl.load(Bias + expert * H + cols, mask=col_ok, other=0.0)[:, None].to(tl.float32)
    y = y * tl.load(PairWeights + pairs, mask=valid, other=0.0)[None, :].to(tl.float32)
    tl.store(PairOut + pairs[None, :].to(tl.int64) * H + cols[:, None], y.to(PairOut.dtype.element_ty),
             mask=col_ok[:, None] & valid[None, :])


@triton.jit
def _mxfp4_dequantize_kernel(Blocks, Scales, Out32, n_bytes, dtype: tl.constexpr, BLOCK: tl.constexpr,
                             PDL: tl.constexpr):
    # Out32: the output read as int32, one word per packed byte: its even input, then its odd one.
    bytes_ = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    in_range = bytes_ < n_bytes
    packed = tl.load(Blocks + bytes_, mask=in_range, other=0)
    scales = tl.load(Scales + bytes_ // 16, mask=in_range, other=0)
    _inputs_ready(PDL)  # Out32 may be scratch that the GEMMs before are reading
    low, high = _fp4_halves(packed)
    factor = _scale_factors(scales)
    even = _fp4_scaled(low, factor).to(dtype).to(tl.int16, bitcast=True).to(tl.int32) & 0xFFFF
    odd = _fp4_scaled(high, factor).to(dtype).to(tl.int16, bitcast=True).to(tl.int32)
    tl.store(Out32 + bytes_, even | (odd << 16), mask=in_range)


def dequantize_mxfp4(weight, first: int, count: int, out: torch.Tensor) -> torch.Tensor:
    """Experts first..first+count of a packed weight (mxfp4.Mxfp4Weight) unpacked into out[:count]
    (count, rows, in) in out's dtype; returns that view."""
    blocks, scales = weight.blocks[first:first + count], weight.scales[first:first + count]
    _mxfp4_dequantize_kernel[(triton.cdiv(blocks.numel(), 4096),)](
        blocks, scales, out.view(torch.int32), blocks.numel(), dtype=tl.float16 if out.dtype == torch.float16
        else tl.bfloat16, BLOCK=4096, num_warps=4, **_pdl())
    return out[:count]
