"""The pair alignment of the experts' grouped kernels (sort (token, expert) pairs by expert, pad each
expert's run to the block size, name each block's expert), before and after it became one Triton
program for every size: main's torch sequence (some twenty launches, a radix sort among them) for
more than 64 pairs and its O(S^2) one-program kernel for up to 64, against
kernels._align_pairs_by_expert, at a keystroke's 64 pairs and a 2k / 4k prompt's 8,192 / 16,384.
Each result is checked equal to the old one (every block's expert, and the slots of the blocks
that have one: the old torch path left padding tokens' pairs in the spare slots, never read).

    PYTHONPATH=. python benchmarks/gpu_align_pairs.py

Times are CUDA graph replays (the kernels alone, as in a captured prefill) and eager calls
(launches from Python, as an eager prefill runs them).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from triton.testing import do_bench, do_bench_cudagraph

from osslsp.engine import kernels

E, K = 32, 4
DEVICE = torch.device("cuda")


@triton.jit
def _align_few_pairs_kernel(ExpertIds, NReal, SortedPairs, BlockExpert, n_pairs, n_real_pairs,
                            E: tl.constexpr, E_PAD: tl.constexpr, S_PAD: tl.constexpr, TOP_K: tl.constexpr,
                            BLOCK_M: tl.constexpr, CAPACITY: tl.constexpr, CHUNK: tl.constexpr,
                            HAS_N_REAL: tl.constexpr):
    # One program: _align_pairs_by_expert's result for up to S_PAD pairs, in one launch instead of
    # some twenty small ones (a keystroke runs it once a layer). Pairs of padding tokens (past
    # NReal tokens) take expert E: they match no expert, so they get no slot and no block.
    pairs = tl.arange(0, S_PAD)
    if HAS_N_REAL:
        n_real_pairs = tl.minimum(tl.load(NReal).to(tl.int32) * TOP_K, n_pairs)
    experts = tl.load(ExpertIds + pairs, mask=pairs < n_real_pairs, other=E).to(tl.int32)  # (S_PAD,)
    ids = tl.arange(0, E_PAD)
    onehot = ((experts[:, None] == ids[None, :]) & (ids[None, :] < E)).to(tl.int32)  # (S_PAD, E_PAD)
    counts = tl.sum(onehot, axis=0)  # (E_PAD,)
    padded = (counts + BLOCK_M - 1) // BLOCK_M * BLOCK_M
    padded_end = tl.cumsum(padded, axis=0)  # (E_PAD,)
    padded_start = padded_end - padded
    earlier_same = (experts[:, None] == experts[None, :]) & (pairs[None, :] < pairs[:, None])  # (S_PAD, S_PAD)
    rank = tl.sum(earlier_same.to(tl.int32), axis=1)  # (S_PAD,) among the pairs of its expert
    slot = tl.where(experts < E, tl.sum(onehot * padded_start[None, :], axis=1) + rank, -1)  # (S_PAD,)
    for first in tl.static_range(0, CAPACITY, CHUNK):
        slots = first + tl.arange(0, CHUNK)
        match = slot[None, :] == slots[:, None]  # (CHUNK, S_PAD)
        pair = tl.sum(tl.where(match, pairs[None, :], 0), axis=1)
        has_pair = tl.sum(match.to(tl.int32), axis=1) > 0
        tl.store(SortedPairs + slots, tl.where(has_pair, pair, n_pairs), mask=slots < CAPACITY)
        blocks = first // BLOCK_M + tl.arange(0, CHUNK)
        ended = (padded_end[None, :] <= blocks[:, None] * BLOCK_M) & (ids[None, :] < E)  # (CHUNK, E_PAD)
        tl.store(BlockExpert + blocks, tl.sum(ended.to(tl.int32), axis=1),
                 mask=(blocks < CAPACITY // BLOCK_M) & (blocks < (first + CHUNK) // BLOCK_M))


def align_before(expert_ids: torch.Tensor, n_experts: int, block_m: int,
                 n_real: torch.Tensor | None = None):
    """Sort (token, slot) pairs by expert and pad each expert's run to a multiple of block_m, on the
    device with no host sync. expert_ids (n, K) -> sorted_pairs (P,) int32 (pad value n*K) and
    block_expert (P / block_m,) int32 (n_experts past the end). n_real (1,): tokens from this one
    on only pad the call to a captured size; their pairs get no slot, so no block reads weights
    for them."""
    n_tokens, top_k = expert_ids.shape
    n_pairs = n_tokens * top_k
    device = expert_ids.device
    capacity = triton.cdiv(n_pairs + n_experts * (block_m - 1), block_m) * block_m
    if n_pairs <= 64:
        sorted_pairs = torch.empty(capacity, dtype=torch.int32, device=device)
        block_expert = torch.empty(capacity // block_m, dtype=torch.int32, device=device)
        chunk = 64
        _align_few_pairs_kernel[(1,)](
            expert_ids, sorted_pairs if n_real is None else n_real, sorted_pairs, block_expert, n_pairs, n_pairs,
            E=n_experts, E_PAD=triton.next_power_of_2(n_experts), S_PAD=max(16, triton.next_power_of_2(n_pairs)),
            TOP_K=top_k, BLOCK_M=block_m, CAPACITY=capacity, CHUNK=chunk, HAS_N_REAL=n_real is not None,
            num_warps=4,
        )
        return sorted_pairs, block_expert
    flat = expert_ids.reshape(-1)  # (S,)
    if n_real is not None:  # padding pairs to a bin of their own, after the last expert's blocks
        flat = torch.where(torch.arange(n_pairs, device=device) < n_real * top_k, flat, n_experts)
    counts = torch.zeros(n_experts + 1, dtype=torch.int64, device=device)
    counts.scatter_add_(0, flat, torch.ones_like(flat))
    padded = (counts + block_m - 1) // block_m * block_m
    padded[n_experts] = counts[n_experts]  # the padding pairs' bin: only placed, never read
    padded_end = padded.cumsum(0)
    padded_start = padded_end - padded
    raw_start = counts.cumsum(0) - counts
    order = torch.argsort(flat, stable=True)  # (S,) pair indices, grouped by expert
    sorted_experts = flat[order]
    rank = torch.arange(n_pairs, device=device) - raw_start[sorted_experts]
    sorted_pairs = torch.full((capacity + n_pairs,), n_pairs, dtype=torch.int32, device=device)
    sorted_pairs[padded_start[sorted_experts] + rank] = order.to(torch.int32)
    block_starts = torch.arange(0, capacity, block_m, device=device)
    block_expert = torch.searchsorted(padded_end[:n_experts], block_starts, right=True).to(torch.int32)
    return sorted_pairs[:capacity], block_expert


def main() -> None:
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}, triton {triton.__version__}", flush=True)
    generator = torch.Generator(DEVICE).manual_seed(0)
    for n_tokens, block_m in ((16, 4), (16, 16), (2048, 128), (4096, 128)):
        expert_ids = torch.randn(n_tokens, E, device=DEVICE, generator=generator).topk(K, dim=-1).indices
        n_real = torch.full((1,), n_tokens - 3, device=DEVICE)
        for real in (None, n_real):
            old = align_before(expert_ids, E, block_m, real)
            new = kernels._align_pairs_by_expert(expert_ids, E, block_m, real)
            used = int((old[1] < E).sum()) * block_m  # slots of blocks with an expert (the rest are never read)
            same = torch.equal(old[1], new[1]) and torch.equal(old[0][:used], new[0][:used])
            times = []
            for call in (lambda: align_before(expert_ids, E, block_m, real),
                         lambda: kernels._align_pairs_by_expert(expert_ids, E, block_m, real)):
                times.append(f"graph {1000 * do_bench_cudagraph(call, rep=30):.1f} us, "
                             f"eager {1000 * do_bench(call, warmup=5, rep=30):.1f} us")
            print(f"{n_tokens * K} pairs, block {block_m}, n_real {real is not None}: before {times[0]}; "
                  f"one program {times[1]}; equal {same}", flush=True)


if __name__ == "__main__":
    main()
