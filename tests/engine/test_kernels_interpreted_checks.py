"""The MXFP4 Triton kernels on the CPU through Triton's interpreter, against the PyTorch reference.

The interpreter runs no inline PTX, so the word unpack and dot (`kernels._unpack8`, `_fma8`) are
swapped for the same arithmetic in plain Triton: what is checked is everything around them (word
pairs, tiles, masks, pair grouping, scales, biases, SwiGLU, the weighted sum). Shapes are small:
the interpreter runs every program in Python. Triton picks the interpreter when it is imported,
so these run in a fresh process (test_kernels_interpreted.py) with TRITON_INTERPRET=1."""

from __future__ import annotations

import os

import pytest
import torch

if os.environ.get("TRITON_INTERPRET") != "1":
    pytest.skip("run by test_kernels_interpreted.py in a process with TRITON_INTERPRET=1", allow_module_level=True)
triton = pytest.importorskip("triton")
import triton.language as tl  # noqa: E402

from osslsp.engine import kernels, kernels_torch, mxfp4  # noqa: E402


@triton.jit
def _half_bits(code):
    """An E2M1 code -> its exact value as float16 bits in the low 16 bits of an int32."""
    bits = (((code & 7) << 9) | ((code & 8) << 12)).to(tl.int16)
    value = (bits.to(tl.float16, bitcast=True).to(tl.float32) * 16384.0).to(tl.float16)
    return value.to(tl.int16, bitcast=True).to(tl.int32) & 0xFFFF


@triton.jit
def _pair(packed, j: tl.constexpr):
    return _half_bits((packed >> (4 * j)) & 0xF) | (_half_bits((packed >> (4 * j + 16)) & 0xF) << 16)


@triton.jit
def _plain_unpack8(packed):
    return _pair(packed, 0), _pair(packed, 1), _pair(packed, 2), _pair(packed, 3)


@triton.jit
def _lane(word, high: tl.constexpr):
    return ((word >> (16 * high)) & 0xFFFF).to(tl.int16).to(tl.float16, bitcast=True).to(tl.float32)


@triton.jit
def _pair_dot(m, p):
    return _lane(m, 0) * _lane(p, 0) + _lane(m, 1) * _lane(p, 1)


@triton.jit
def _plain_fma8(m0, m1, m2, m3, p0, p1, p2, p3):
    return _pair_dot(m0, p0) + _pair_dot(m1, p1) + _pair_dot(m2, p2) + _pair_dot(m3, p3)


@pytest.fixture(autouse=True)
def plain_word_dots(monkeypatch):
    monkeypatch.setattr(kernels, "_unpack8", _plain_unpack8)
    monkeypatch.setattr(kernels, "_fma8", _plain_fma8)


def _relative_error(got: torch.Tensor, want: torch.Tensor) -> float:
    return float((got.float() - want.float()).norm() / want.float().norm())


HIDDEN, INTERMEDIATE = 96, 64  # 3 and 2 blocks a row: partial steps of 32 blocks


def _experts(n_experts: int = 8, hidden: int = HIDDEN, intermediate: int = INTERMEDIATE, seed: int = 1):
    """Packed gate_up (E, 2I, H) and down (E, H, I) with float16 biases."""
    generator = torch.Generator().manual_seed(seed)
    gate_up = mxfp4.quantize(torch.randn(n_experts, 2 * intermediate, hidden, generator=generator) * 0.05)
    down = mxfp4.quantize(torch.randn(n_experts, hidden, intermediate, generator=generator) * 0.05)
    gate_up_bias = (torch.randn(n_experts, 2 * intermediate, generator=generator) * 0.05).half()
    down_bias = (torch.randn(n_experts, hidden, generator=generator) * 0.05).half()
    return gate_up, gate_up_bias, down, down_bias


def _routed(n_tokens: int, seed: int, repeat_last_from: int | None = None):
    """x (n, H) float16, top-4 expert ids (n, 4) of 8 and their softmax weights (n, 4); rows from
    repeat_last_from on copy the row before (the keystroke graph's padding: same experts)."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n_tokens, HIDDEN, generator=generator).half()
    top_values, top_ids = torch.randn(n_tokens, 8, generator=generator).topk(4, dim=-1)
    if repeat_last_from is not None:
        last = repeat_last_from - 1
        top_ids[last:], top_values[last:], x[last:] = top_ids[last], top_values[last], x[last]
    return x, top_ids, torch.softmax(top_values, -1).half()


@pytest.mark.parametrize(("n_tokens", "repeat_last_from"), [(1, None), (3, None), (16, 10)])
def test_the_grouped_gemvs_of_a_few_tokens_match_the_reference(n_tokens, repeat_last_from):
    x, top_ids, top_weights = _routed(n_tokens, 2, repeat_last_from)
    args = (x, top_ids, top_weights, *_experts(), 7.0, 1.702)
    assert top_ids.numel() <= kernels.MXFP4_GROUPED_GEMV[0]  # the path under test
    assert _relative_error(kernels.prefill_experts(*args), kernels_torch.prefill_experts(*args)) < 5e-3


def test_the_grouped_gemvs_take_each_block_size():
    args = (*_routed(5, 3), *_experts(), 7.0, 1.702)
    want = kernels_torch.prefill_experts(*args)
    for n_x in (1, 3):
        assert _relative_error(kernels._prefill_experts_gemv(*args, config=(n_x, 8, 32, 4)), want) < 5e-3, n_x


def test_the_decode_gemvs_match_the_reference():
    gate_up, gate_up_bias, down, down_bias = _experts()
    x, top_ids, top_weights = _routed(1, 4)
    want = kernels_torch.prefill_experts(x, top_ids, top_weights, gate_up, gate_up_bias, down, down_bias, 7.0, 1.702)
    out = torch.empty(HIDDEN, dtype=torch.float16)
    kernels.DecodeExpertsMxfp4(HIDDEN, INTERMEDIATE, 4, torch.float16, torch.device("cpu"))(
        x[0], gate_up, gate_up_bias, down, down_bias, top_ids[0], top_weights[0], 7.0, 1.702, out)
    assert _relative_error(out, want[0]) < 5e-3


def test_rmsnorm_writes_the_word_pairs_of_its_output():
    generator = torch.Generator().manual_seed(5)
    residual, delta = (torch.randn(2, HIDDEN, generator=generator).half() for _ in range(2))
    weight = torch.randn(HIDDEN, generator=generator).half()
    normed = torch.empty(2, HIDDEN, dtype=torch.float16)
    pairs = torch.empty(2, 4, HIDDEN // 8, dtype=torch.int32)
    want = torch.empty_like(normed)
    kernels_torch.add_rmsnorm(residual.clone(), delta, weight, 1e-5, want)
    kernels.add_rmsnorm(residual, delta, weight, 1e-5, normed, pairs)
    assert _relative_error(normed, want) < 1e-3
    assert torch.equal(pairs, kernels.word_pairs(normed))
    pair = pairs.view(torch.float16).view(2, 4, HIDDEN // 8, 2)  # [row, j, w, h] = x[row, 8w + 4h + j]
    assert pair[1, 3, 2, 1] == normed[1, 8 * 2 + 4 + 3] and pair[0, 0, 5, 0] == normed[0, 40]


def test_the_decode_gemvs_read_word_pairs_written_by_rmsnorm():
    gate_up, gate_up_bias, down, down_bias = _experts()
    residual, top_ids, top_weights = _routed(1, 6)
    weight = torch.ones(HIDDEN, dtype=torch.float16)
    experts = kernels.DecodeExpertsMxfp4(HIDDEN, INTERMEDIATE, 4, torch.float16, torch.device("cpu"))
    normed = torch.empty_like(residual)
    kernels.add_rmsnorm(residual, None, weight, 1e-5, normed, experts.x_pairs)
    out = torch.empty(HIDDEN, dtype=torch.float16)
    experts(torch.zeros(HIDDEN, dtype=torch.float16), gate_up, gate_up_bias, down, down_bias, top_ids[0],
            top_weights[0], 7.0, 1.702, out, x_pairs_ready=True)  # x itself is not read
    want = kernels_torch.prefill_experts(normed, top_ids, top_weights, gate_up, gate_up_bias, down, down_bias,
                                         7.0, 1.702)
    assert _relative_error(out, want[0]) < 5e-3


@pytest.mark.parametrize("packed", [True, False])
def test_pairs_of_padding_tokens_get_no_blocks_and_change_no_real_row(packed):
    """The keystroke graph's call: 16 tokens of which 10 are real, the rest copies of the last.
    With n_real on the device, the padding tokens' pairs get no block (no expert weights read for
    them), the real rows equal those of a call on the 10 tokens alone, and each padding row
    equals the last real row (so it writes that token's keys and values, as before)."""
    n_real, bucket = 10, 16
    x, top_ids, top_weights = _routed(bucket, 4, repeat_last_from=n_real)
    gate_up, gate_up_bias, down, down_bias = _experts()
    if not packed:
        gate_up, down = mxfp4.dequantize(gate_up, torch.float16), mxfp4.dequantize(down, torch.float16)
    config = MXFP4_GEMV_BLOCK if packed else FP16_GEMM_TILES
    real = torch.tensor([n_real])
    _, padded_blocks = kernels._align_pairs_by_expert(top_ids, 8, config[0], real)
    _, alone_blocks = kernels._align_pairs_by_expert(top_ids[:n_real], 8, config[0])
    assert int((padded_blocks < 8).sum()) == int((alone_blocks < 8).sum())
    _, unmarked_blocks = kernels._align_pairs_by_expert(top_ids, 8, config[0])
    if packed:  # blocks of 4 pairs: the copies of the last token would need blocks of their own
        assert int((unmarked_blocks < 8).sum()) > int((alone_blocks < 8).sum())

    def experts(n: int, **kwargs) -> torch.Tensor:
        return kernels.prefill_experts(x[:n], top_ids[:n], top_weights[:n], gate_up, gate_up_bias, down, down_bias,
                                       7.0, 1.702, config=config, **kwargs)

    padded, alone = experts(bucket, n_real=real), experts(n_real, n_real=real)  # the same pairs, the same sums
    assert torch.equal(padded[:n_real], alone)
    assert _relative_error(alone, experts(n_real)) < 1e-3
    assert torch.equal(padded[n_real:], alone[-1:].expand(bucket - n_real, -1))
    want = kernels_torch.prefill_experts(x, top_ids, top_weights, gate_up, gate_up_bias, down, down_bias, 7.0, 1.702,
                                         n_real=real)
    assert _relative_error(padded, want) < 5e-3


MXFP4_GEMV_BLOCK = (4, 8, 32, 4)  # grouped-GEMV tiles for the small experts of these checks
FP16_GEMM_TILES = (16, 32, 32, 4, 1)


@pytest.mark.parametrize("combine_in_split", [True, False])
@pytest.mark.parametrize("window", [kernels.NO_WINDOW, 24])
def test_decode_attention_matches_the_reference(combine_in_split, window):
    n_q, n_kv, head_dim, length = 12, 2, 64, 80  # 6 heads a kv head: a group padded to 8 and to 16
    generator = torch.Generator().manual_seed(9)
    k_cache, v_cache = (torch.randn(n_kv, length, head_dim, generator=generator).half() for _ in range(2))
    sinks = torch.randn(n_q, generator=generator).half()
    attention = kernels.DecodeAttention(n_q, n_kv, head_dim, torch.device("cpu"), combine_in_split)
    for position in (70, 3):  # a second call: the tickets were reset by the first
        q = torch.randn(n_q * head_dim, generator=generator).half()
        positions = torch.tensor([position])
        out, want = torch.empty_like(q), torch.empty_like(q)
        attention(q, k_cache, v_cache, positions, window, sinks, 0.125, out)
        kernels_torch.DecodeAttention(n_q, n_kv, head_dim, torch.device("cpu"))(
            q, k_cache, v_cache, positions, window, sinks, 0.125, want)
        assert _relative_error(out, want) < 2e-3
        assert not attention._rows.counters.any()


@pytest.mark.parametrize("packed", [True, False])
def test_decode_steps_through_the_triton_kernels_give_the_logits_of_the_torch_steps(packed):
    """The runner's decode step wired to the Triton launches (the qkv GEMV with its rope, attention
    with its combine in the split kernel, the o_proj GEMV, the one-launch router, expert GEMVs that
    also write the next norm where packed),
    against the same step through the twins."""
    from osslsp.engine import gpt_oss_fast, tiny

    model = tiny.build_model(tiny.build_tokenizer()).half().eval()
    runner = gpt_oss_fast.FastGptOssRunner(model, 64, kernels=kernels_torch)
    if packed:  # the runner's layers read packed experts as a loaded checkpoint's
        for layer in runner.layers:
            layer.gate_up, layer.down = mxfp4.quantize(layer.gate_up), mxfp4.quantize(layer.down)
    prompt, tokens = list(range(3, 40)), (5, 6, 7, 8)  # past the tiny model's window of 8
    runner.prefill(prompt)
    want = [runner.decode_one(token) for token in tokens]
    config, device = model.config, runner.device
    runner.kernels = kernels
    runner.decode_attention = {device: kernels.DecodeAttention(runner.n_q, runner.n_kv, runner.head_dim, device)}
    decode_experts = kernels.DecodeExpertsMxfp4 if packed else kernels.DecodeExperts
    runner.decode_experts = {device: decode_experts(config.hidden_size, config.intermediate_size, runner.top_k,
                                                    runner.dtype, device)}
    runner.decode_router = {device: kernels.DecodeRouter(runner.top_k, runner.dtype, device)}
    runner.cached_ids = runner.cached_ids[:len(prompt)]
    got = [runner.decode_one(token) for token in tokens]
    for logits, expected in zip(got, want):
        assert _relative_error(logits, expected) < 1e-2
        assert int(logits.argmax()) == int(expected.argmax())


def test_the_packed_down_gemv_also_writes_the_next_norm():
    gate_up, gate_up_bias, down, down_bias = _experts()
    x, top_ids, top_weights = _routed(1, 4)
    generator = torch.Generator().manual_seed(10)
    residual, weight = torch.randn(HIDDEN, generator=generator).half(), torch.randn(HIDDEN, generator=generator).half()
    experts = kernels.DecodeExpertsMxfp4(HIDDEN, INTERMEDIATE, 4, torch.float16, torch.device("cpu"))
    for _ in range(2):  # a second call: the ticket was reset by the first
        want_residual, want_normed, want_out = residual.clone(), torch.empty_like(residual), torch.empty_like(residual)
        kernels_torch.DecodeExperts(HIDDEN, INTERMEDIATE, 4, torch.float16, torch.device("cpu"))(
            x[0], gate_up, gate_up_bias, down, down_bias, top_ids[0], top_weights[0], 7.0, 1.702, want_out,
            then_norm=kernels_torch.NextNorm(want_residual, weight, 1e-5, want_normed))
        out, normed = torch.empty_like(residual), torch.empty_like(residual)
        experts(x[0], gate_up, gate_up_bias, down, down_bias, top_ids[0], top_weights[0], 7.0, 1.702, out,
                then_norm=kernels.NextNorm(residual, weight, 1e-5, normed))
        assert _relative_error(out, want_out) < 5e-3 and _relative_error(residual, want_residual) < 1e-3
        assert _relative_error(normed, want_normed) < 5e-3 and int(experts.counter) == 0

def _routed_among(n_tokens: int, seed: int, n_chosen: int):
    """_routed's tokens, routed to experts 0..n_chosen-1 only: the other experts get no pair."""
    x, _, _ = _routed(n_tokens, seed)
    logits = torch.randn(n_tokens, 8, generator=torch.Generator().manual_seed(seed + 100))
    logits[:, n_chosen:] = float("-inf")
    top_values, top_ids = logits.topk(4, dim=-1)
    return x, top_ids, torch.softmax(top_values, -1).half()


@pytest.mark.parametrize("chunk", [3, 8])
def test_the_dequantized_chunks_tell_the_gemms_their_first_expert(chunk, monkeypatch):
    """Chunks of 3 experts of 8 (the last one short) and one chunk of all: each chunk's grouped
    GEMMs compute exactly its experts' blocks, with no per-chunk expert ids."""
    monkeypatch.setattr(kernels, "DEQUANTIZED_EXPERTS_CHUNK", chunk)
    args = (*_routed_among(12, 10, 7), *_experts(), 7.0, 1.702)
    got = kernels._prefill_experts_dequantized(*args, n_real=None)
    assert _relative_error(got, kernels_torch.prefill_experts(*args)) < 5e-3


def _aligned_reference(expert_ids: torch.Tensor, n_experts: int, block_m: int, n_real: int | None):
    """_align_pairs_by_expert's result, written plainly: each expert's pairs in order, padded to
    block_m with the pad value n*K, experts one after another; pairs of padding tokens left out."""
    n_tokens, top_k = expert_ids.shape
    n_pairs = n_tokens * top_k
    flat = expert_ids.reshape(-1).tolist()
    real = n_pairs if n_real is None else n_real * top_k
    sorted_pairs, block_expert = [], []
    for expert in range(n_experts):
        run = [pair for pair in range(real) if flat[pair] == expert]
        run += [n_pairs] * (-len(run) % block_m)
        sorted_pairs += run
        block_expert += [expert] * (len(run) // block_m)
    return sorted_pairs, block_expert


@pytest.mark.parametrize("n_tokens, block_m, n_real", [
    (1, 4, None), (16, 4, 10), (16, 16, None), (300, 64, None), (300, 128, 257), (700, 16, None)])
def test_pairs_are_sorted_by_expert_in_one_program(n_tokens, block_m, n_real):
    """The one-program counting sort against a plain one: every size (several chunks at 700 tokens),
    padding tokens' pairs left out, stable order within an expert, each block's expert named."""
    generator = torch.Generator().manual_seed(n_tokens + block_m)
    expert_ids = torch.rand(n_tokens, 8, generator=generator).argsort(dim=1)[:, :4]  # top-4 of 8, distinct
    real = None if n_real is None else torch.tensor([n_real])
    sorted_pairs, block_expert = kernels._align_pairs_by_expert(expert_ids, 8, block_m, real)
    want_pairs, want_blocks = _aligned_reference(expert_ids, 8, block_m, n_real)
    assert sorted_pairs[:len(want_pairs)].tolist() == want_pairs
    assert (sorted_pairs[len(want_pairs):] == n_tokens * 4).all()  # spare capacity: padding slots
    assert block_expert[:len(want_blocks)].tolist() == want_blocks
    assert (block_expert[len(want_blocks):] == 8).all()  # blocks past the last expert's: no expert


DENSE_TILES = [(rows, 4) for rows in (4, 8, 16)]


@pytest.mark.parametrize("tile", DENSE_TILES)
def test_the_qkv_gemv_rotates_and_writes_the_cache_as_linear_then_rope(tile, monkeypatch):
    n_q, n_kv, head_dim, hidden, length, position = 4, 2, 16, 100, 12, 7  # K = 64 + 36 of a masked 64
    rows = (n_q + 2 * n_kv) * head_dim
    generator = torch.Generator().manual_seed(11)
    x = torch.randn(1, hidden, generator=generator).half()
    weight = (torch.randn(rows, hidden, generator=generator) * 0.1).half()
    bias = (torch.randn(rows, generator=generator) * 0.1).half()
    angles = torch.arange(length)[:, None] * torch.rand(head_dim // 2, generator=generator)[None]  # (T, D/2)
    cos, sin = angles.cos(), angles.sin()
    positions = torch.tensor([position])
    monkeypatch.setattr(kernels, "DECODE_QKV_TILE", tile)
    got_q, want_q = torch.empty(1, n_q * head_dim).half(), torch.empty(1, n_q * head_dim).half()
    got_caches = [torch.zeros(n_kv, length, head_dim).half() for _ in range(2)]
    want_caches = [torch.zeros(n_kv, length, head_dim).half() for _ in range(2)]
    kernels.decode_qkv_rope(x, weight, bias, cos, sin, positions, got_q, *got_caches)
    kernels_torch.decode_qkv_rope(x, weight, bias, cos, sin, positions, want_q, *want_caches)
    assert _relative_error(got_q, want_q) < 2e-3
    for got, want in zip(got_caches, want_caches):
        assert _relative_error(got[:, position], want[:, position]) < 2e-3
        assert not got[:, :position].any() and not got[:, position + 1:].any()  # only the position is written


@pytest.mark.parametrize("tile", DENSE_TILES)
@pytest.mark.parametrize(("n", "k"), [(96, 64), (64, 96), (36, 100)])  # 36 rows: a last program with spare rows
def test_the_dense_gemv_matches_linear(tile, n, k, monkeypatch):
    generator = torch.Generator().manual_seed(12)
    x = torch.randn(1, k, generator=generator).half()
    weight = (torch.randn(n, k, generator=generator) * 0.1).half()
    bias = (torch.randn(n, generator=generator) * 0.1).half()
    monkeypatch.setattr(kernels, "DECODE_LINEAR_TILE", tile)
    got, want = torch.full((1, n + 4), 7.0).half(), torch.full((1, n + 4), 7.0).half()  # 4 past the end: untouched
    kernels.decode_linear(x, weight, bias, got[:, :n])
    kernels_torch.decode_linear(x, weight, bias, want[:, :n])
    assert _relative_error(got, want) < 2e-3
    assert (got[:, n:] == 7.0).all()


WEIGHTS_FIRST_TILES = [(16, 64, 64, 4, 3), (32, 32, 32, 4, 2)]  # hidden 96: a partial K step and hidden tile


@pytest.mark.parametrize("tiles", WEIGHTS_FIRST_TILES)
def test_the_weights_first_gemms_match_the_reference(tiles, monkeypatch):
    """The packed GEMMs (weights as the first dot operand) through prefill_experts, tiles from
    MXFP4_PREFILL_EXPERTS_TILES: 20 tokens (80 pairs, past the grouped GEMVs), of which the last 7
    pad the call (n_real)."""
    monkeypatch.setattr(kernels, "MXFP4_PREFILL_EXPERTS_TILES", ((4096, tiles),))
    n_real, bucket = 13, 20
    x, top_ids, top_weights = _routed(bucket, 7, repeat_last_from=n_real)
    args = (x, top_ids, top_weights, *_experts(), 7.0, 1.702)
    assert top_ids.numel() > kernels.MXFP4_GROUPED_GEMV[0]  # the path under test
    assert _relative_error(kernels.prefill_experts(*args), kernels_torch.prefill_experts(*args)) < 5e-3
    real = torch.tensor([n_real])
    padded = kernels.prefill_experts(*args, n_real=real)
    assert _relative_error(padded, kernels_torch.prefill_experts(*args, n_real=real)) < 5e-3
    assert torch.equal(padded[n_real:], padded[n_real - 1:n_real].expand(bucket - n_real, -1))


def test_the_weights_first_gemms_compute_only_their_chunk_of_experts():
    """Chunks of 3 experts of 8 (the last one short, one expert with no pair), each given its
    first expert: together they compute every pair once."""
    x, top_ids, top_weights = _routed_among(24, 11, 7)
    gate_up, gate_up_bias, down, down_bias = _experts()
    tiles = WEIGHTS_FIRST_TILES[0]
    sorted_pairs, block_expert = kernels._align_pairs_by_expert(top_ids, 8, tiles[0])
    act = torch.empty(sorted_pairs.shape[0], INTERMEDIATE, dtype=torch.float16)
    pair_out = torch.full((top_ids.numel(), HIDDEN), float("nan"), dtype=torch.float16)
    for first in range(0, 8, 3):
        chunk = slice(first, first + 3)
        kernels._grouped_gemms(x, top_weights, mxfp4.Mxfp4Weight(gate_up.blocks[chunk], gate_up.scales[chunk]),
                               gate_up_bias[chunk], mxfp4.Mxfp4Weight(down.blocks[chunk], down.scales[chunk]),
                               down_bias[chunk], sorted_pairs, block_expert, act, pair_out, 7.0, 1.702, tiles,
                               first_expert=first)
    want = kernels_torch.prefill_experts(x, top_ids, top_weights, gate_up, gate_up_bias, down, down_bias, 7.0, 1.702)
    assert _relative_error(kernels._sum_pairs(pair_out, 24, None), want) < 5e-3


def test_the_greedy_pick_takes_the_first_argmax_and_flags_logits_that_are_not_finite():
    """The decode graph's last launch: the first of tied maxima is the pick and the next token, and
    the position advances; a NaN or an inf anywhere makes the pick NON_FINITE (token 0). Logits of
    5,000: several programs, a partial block in each."""
    generator = torch.Generator().manual_seed(13)
    greedy_pick = kernels.GreedyPick(torch.device("cpu"))
    token, position, pick = torch.zeros(1, dtype=torch.long), torch.tensor([7]), torch.full((1,), -5)
    for case in range(4):
        logits = torch.randn(1, 5000, generator=generator).half()
        if case == 1:
            logits[0, 4321] = logits[0, 123] = 9.0  # a tie: the first wins, as argmax
        if case == 2:
            logits[0, 2500] = float("nan")
        if case == 3:
            logits[0, 4999] = float("-inf")
        greedy_pick(logits, token, position, pick, -1)
        want = int(logits.argmax()) if bool(torch.isfinite(logits).all()) else -1
        assert int(pick) == want and int(token) == max(want, 0) and int(position) == 8 + case
        assert int(greedy_pick.counter) == 0
        twin = [torch.zeros(1, dtype=torch.long), torch.tensor([7 + case]), torch.zeros(1, dtype=torch.long)]
        kernels_torch.GreedyPick(torch.device("cpu"))(logits, *twin, -1)
        assert [int(t) for t in twin] == [int(token), int(position), int(pick)]
    assert want == -1


def test_packed_experts_take_the_weights_first_rows_then_the_scratch(monkeypatch):
    """Past the grouped GEMVs, packed experts take the row of MXFP4_PREFILL_EXPERTS_TILES that holds
    their pairs, past its last row the FP16 scratch; an explicit 5-number config, its tiles."""
    rows = ((80, WEIGHTS_FIRST_TILES[0]), (160, WEIGHTS_FIRST_TILES[1]))
    monkeypatch.setattr(kernels, "MXFP4_PREFILL_EXPERTS_TILES", rows)
    taken = []
    monkeypatch.setattr(kernels, "_grouped_gemms", lambda *args, **kwargs: taken.append(args[12]))
    monkeypatch.setattr(kernels, "_prefill_experts_dequantized", lambda *args: taken.append("scratch"))
    experts = (*_experts(), 7.0, 1.702)
    for n_tokens in (20, 21, 40, 41):  # 80, 84, 160, 164 pairs
        kernels.prefill_experts(*_routed(n_tokens, 8), *experts)
    kernels.prefill_experts(*_routed(41, 8), *experts, config=rows[0][1])
    assert taken == [rows[0][1], rows[1][1], rows[1][1], "scratch", rows[0][1]]
