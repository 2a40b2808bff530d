"""The fast runner on a CUDA GPU: Triton kernels against their PyTorch twins, and the whole runner
against Transformers on a small gpt-oss with the kernels' real head size. Skipped without CUDA."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

pytestmark = pytest.mark.gpu
if not torch.cuda.is_available():
    pytest.skip("needs a CUDA GPU", allow_module_level=True)
triton = pytest.importorskip("triton")

from transformers import GptOssConfig, GptOssForCausalLM  # noqa: E402

from osslsp.engine import kernels, kernels_torch  # noqa: E402
from osslsp.engine.generation import generate  # noqa: E402
from osslsp.engine.gpt_oss_fast import FastGptOssRunner, make_runner  # noqa: E402
from osslsp.sampling import Sampling  # noqa: E402

DEVICE = torch.device("cuda")


def _relative_error(got: torch.Tensor, want: torch.Tensor) -> float:
    return float((got.float() - want.float()).norm() / want.float().norm())


@pytest.fixture(scope="module")
def model():
    config = GptOssConfig(
        vocab_size=1000, hidden_size=256, intermediate_size=256, num_hidden_layers=4, num_attention_heads=8,
        num_key_value_heads=2, head_dim=64, num_local_experts=8, num_experts_per_tok=4, sliding_window=16,
        layer_types=["sliding_attention", "full_attention"] * 2, max_position_embeddings=4096,
        rope_scaling={"rope_type": "yarn", "factor": 32.0, "beta_fast": 32.0, "beta_slow": 1.0,
                      "original_max_position_embeddings": 4096, "truncate": False},
    )
    return _random_model(config, seed=0)


def _random_model(config, seed: int) -> GptOssForCausalLM:
    """A gpt-oss of `config` on the GPU in float16, weights N(0, 0.05)."""
    torch.manual_seed(seed)
    with DEVICE:
        built = GptOssForCausalLM(config).to(torch.float16).eval()
    with torch.no_grad():
        for parameter in built.parameters():
            parameter.normal_(0.0, 0.05)
    return built


def test_triton_experts_match_the_reference():
    gate_up, down = torch.randn(8, 512, 256, device=DEVICE) * 0.05, torch.randn(8, 256, 256, device=DEVICE) * 0.05
    gate_up_bias, down_bias = torch.randn(8, 512, device=DEVICE) * 0.05, torch.randn(8, 256, device=DEVICE) * 0.05
    weights = [w.half() for w in (gate_up, gate_up_bias, down, down_bias)]
    x = torch.randn(37, 256, device=DEVICE).half()
    top_values, top_ids = torch.randn(37, 8, device=DEVICE).topk(4, dim=-1)
    top_weights = torch.softmax(top_values, -1).half()
    want = kernels_torch.prefill_experts(x, top_ids, top_weights, *weights, 7.0, 1.702)
    assert _relative_error(kernels.prefill_experts(x, top_ids, top_weights, *weights, 7.0, 1.702), want) < 5e-3
    out = torch.empty(256, dtype=torch.float16, device=DEVICE)
    kernels.DecodeExperts(256, 256, 4, torch.float16, DEVICE)(x[0], *weights[:2], *weights[2:], top_ids[0],
                                                                top_weights[0], 7.0, 1.702, out)
    assert _relative_error(out, want[0]) < 5e-3


def test_runner_matches_transformers(model):
    prompt = torch.randint(0, 1000, (300,), generator=torch.Generator().manual_seed(3)).tolist()
    with torch.inference_mode():
        expected_logits = model(torch.tensor([prompt], device=DEVICE)).logits[0, -1].float()
        expected = model.generate(torch.tensor([prompt], device=DEVICE), max_new_tokens=32, min_new_tokens=32,
                                  do_sample=False)[0, 300:].tolist()
    runner = make_runner(model, 512)
    assert isinstance(runner, FastGptOssRunner) and runner.graph is not None and runner.prefill_graphs
    logits = runner.prefill(prompt)
    assert _relative_error(logits, expected_logits) < 1e-2
    assert int(logits.argmax()) == int(expected_logits.argmax())
    runner.cached_ids = []
    produced = list(generate(runner, prompt, Sampling(max_new_tokens=32), frozenset(), lambda: False))
    assert produced == expected
    edited = prompt[:-4] + [1, 2, 3]  # prefix reuse: 3 new tokens, through the 16-token prefill graph
    with torch.inference_mode():
        edited_logits = model(torch.tensor([edited], device=DEVICE)).logits[0, -1].float()
    assert _relative_error(runner.prefill(edited), edited_logits) < 1e-2


def test_a_prompt_over_a_prefill_chunk_gives_the_model_logits(model, monkeypatch):
    from osslsp.engine import gpt_oss_fast

    monkeypatch.setattr(gpt_oss_fast, "PREFILL_CHUNK", 128)  # 300 tokens: chunks of 128, 128 and 44
    prompt = torch.randint(0, 1000, (300,), generator=torch.Generator().manual_seed(4)).tolist()
    with torch.inference_mode():
        expected = model(torch.tensor([prompt], device=DEVICE)).logits[0, -1].float()
    assert _relative_error(make_runner(model, 512).prefill(prompt), expected) < 1e-2


def test_triton_mxfp4_experts_match_the_reference():
    from osslsp.engine import mxfp4

    generator = torch.Generator(DEVICE).manual_seed(1)
    gate_up = mxfp4.quantize(torch.randn(8, 512, 320, device=DEVICE, generator=generator) * 0.05)
    down = mxfp4.quantize(torch.randn(8, 320, 256, device=DEVICE, generator=generator) * 0.05)
    gate_up_bias = (torch.randn(8, 512, device=DEVICE, generator=generator) * 0.05).half()
    down_bias = (torch.randn(8, 320, device=DEVICE, generator=generator) * 0.05).half()
    top_values, top_ids = torch.randn(300, 8, device=DEVICE, generator=generator).topk(4, dim=-1)
    top_weights = torch.softmax(top_values, -1).half()
    x = torch.randn(300, 320, device=DEVICE, generator=generator).half()  # 320: a partial 128-unit hidden tile
    want = kernels_torch.prefill_experts(x, top_ids, top_weights, gate_up, gate_up_bias, down, down_bias, 7.0, 1.702)
    for n_tokens in (3, 60, 300):  # the grouped GEMVs, then the weights-first GEMMs' first row
        got = kernels.prefill_experts(x[:n_tokens], top_ids[:n_tokens], top_weights[:n_tokens], gate_up,
                                      gate_up_bias, down, down_bias, 7.0, 1.702)
        assert _relative_error(got, want[:n_tokens]) < 5e-3
    for _, tiles in kernels.MXFP4_PREFILL_EXPERTS_TILES:  # each row's tiles
        got = kernels.prefill_experts(x, top_ids, top_weights, gate_up, gate_up_bias, down, down_bias, 7.0, 1.702,
                                      config=tiles)
        assert _relative_error(got, want) < 5e-3, tiles
    for dtype in (torch.float16, torch.bfloat16):  # the word dot products read float16: bfloat16 is copied
        out = torch.empty(320, dtype=dtype, device=DEVICE)
        kernels.DecodeExpertsMxfp4(320, 256, 4, dtype, DEVICE)(
            x[0].to(dtype), gate_up, gate_up_bias.to(dtype), down, down_bias.to(dtype), top_ids[0],
            top_weights[0].to(dtype), 7.0, 1.702, out)
        assert _relative_error(out, want[0]) < 1e-2
        residual, weight = (torch.randn(320, device=DEVICE, generator=generator).to(dtype) for _ in range(2))
        want_residual, want_normed, normed = residual.float() + out.float(), torch.empty_like(residual), out.clone()
        kernels_torch.add_rmsnorm(residual.clone(), out, weight, 1e-5, want_normed)
        kernels.DecodeExpertsMxfp4(320, 256, 4, dtype, DEVICE)(  # the down GEMV's last program: the next norm
            x[0].to(dtype), gate_up, gate_up_bias.to(dtype), down, down_bias.to(dtype), top_ids[0],
            top_weights[0].to(dtype), 7.0, 1.702, out, then_norm=kernels.NextNorm(residual, weight, 1e-5, normed))
        assert _relative_error(residual, want_residual) < 1e-2 and _relative_error(normed, want_normed) < 1e-2


def test_the_grouped_mxfp4_gemvs_of_a_few_tokens_match_the_reference():
    from osslsp.engine import mxfp4

    generator = torch.Generator(DEVICE).manual_seed(3)
    gate_up = mxfp4.quantize(torch.randn(8, 512, 320, device=DEVICE, generator=generator) * 0.05)
    down = mxfp4.quantize(torch.randn(8, 320, 256, device=DEVICE, generator=generator) * 0.05)
    biases = [(torch.randn(8, n, device=DEVICE, generator=generator) * 0.05).half() for n in (512, 320)]
    x = torch.randn(16, 320, device=DEVICE, generator=generator).half()
    top_values, top_ids = torch.randn(16, 8, device=DEVICE, generator=generator).topk(4, dim=-1)
    top_ids[10:], top_values[10:], x[10:] = top_ids[9], top_values[9], x[9]  # the keystroke graph's padding
    top_weights = torch.softmax(top_values, -1).half()
    experts = (gate_up, biases[0], down, biases[1], 7.0, 1.702)
    want = kernels_torch.prefill_experts(x, top_ids, top_weights, *experts)
    for n_tokens in (1, 2, 16):  # a decode row, a batched step, a keystroke
        assert 4 * n_tokens <= kernels.MXFP4_GROUPED_GEMV[0]
        got = kernels.prefill_experts(x[:n_tokens], top_ids[:n_tokens], top_weights[:n_tokens], *experts)
        assert _relative_error(got, want[:n_tokens]) < 5e-3, n_tokens
    for config in ((1, 8, 32, 4), (2, 8, 32, 4), (3, 4, 16, 2), (4, 8, 32, 4)):
        got = kernels.prefill_experts(x, top_ids, top_weights, *experts, config=config)
        assert _relative_error(got, want) < 5e-3, config
    got = kernels.prefill_experts(x.bfloat16(), top_ids, top_weights.bfloat16(), gate_up, biases[0].bfloat16(), down,
                                  biases[1].bfloat16(), 7.0, 1.702)
    assert got.dtype == torch.bfloat16 and _relative_error(got, want) < 1e-2
    n_real = torch.tensor([10], device=DEVICE)  # the padding tokens' pairs get no blocks, their rows copy row 9
    alone = kernels.prefill_experts(x[:10], top_ids[:10], top_weights[:10], *experts, n_real=n_real)
    for unpacked in (False, True):  # grouped GEMVs, then FP16 grouped GEMMs
        weights = (mxfp4.dequantize(gate_up, torch.float16), biases[0], mxfp4.dequantize(down, torch.float16),
                   biases[1], 7.0, 1.702) if unpacked else experts
        padded = kernels.prefill_experts(x, top_ids, top_weights, *weights, n_real=n_real)
        assert _relative_error(padded, want) < 5e-3 and torch.equal(padded[10:], padded[9:10].expand(6, -1))
        if not unpacked:
            assert torch.equal(padded[:10], alone)


def test_the_long_prompt_path_on_mxfp4_experts_matches_the_reference(monkeypatch):
    """A prompt past the grouped GEMMs' pair counts: FP16 scratch by chunks of experts (each chunk's
    GEMMs told their first expert; the last chunk short), some experts with no pair."""
    from osslsp.engine import mxfp4

    generator = torch.Generator(DEVICE).manual_seed(4)
    gate_up = mxfp4.quantize(torch.randn(8, 512, 320, device=DEVICE, generator=generator) * 0.05)
    down = mxfp4.quantize(torch.randn(8, 320, 256, device=DEVICE, generator=generator) * 0.05)
    biases = [(torch.randn(8, n, device=DEVICE, generator=generator) * 0.05).half() for n in (512, 320)]
    x = torch.randn(300, 320, device=DEVICE, generator=generator).half()
    logits = torch.randn(300, 8, device=DEVICE, generator=generator)
    logits[:, 6:] = float("-inf")  # experts 6 and 7 get no pair
    top_values, top_ids = logits.topk(4, dim=-1)
    routed = (x, top_ids, torch.softmax(top_values, -1).half())
    experts = (gate_up, biases[0], down, biases[1], 7.0, 1.702)
    want = kernels_torch.prefill_experts(*routed, *experts)
    monkeypatch.setattr(kernels, "DEQUANTIZED_EXPERTS_CHUNK", 3)
    assert _relative_error(kernels._prefill_experts_dequantized(*routed, *experts, n_real=None), want) < 5e-3


def test_rmsnorm_hands_the_decode_gemvs_their_word_pairs():
    from osslsp.engine import mxfp4

    generator = torch.Generator(DEVICE).manual_seed(4)
    gate_up = mxfp4.quantize(torch.randn(8, 512, 320, device=DEVICE, generator=generator) * 0.05)
    down = mxfp4.quantize(torch.randn(8, 320, 256, device=DEVICE, generator=generator) * 0.05)
    gate_up_bias, down_bias = (torch.randn(8, n, device=DEVICE, generator=generator).half() * 0.05 for n in (512, 320))
    residual, delta = (torch.randn(1, 320, device=DEVICE, generator=generator).half() for _ in range(2))
    norm = torch.randn(320, device=DEVICE, generator=generator).half()
    top_values, top_ids = torch.randn(1, 8, device=DEVICE, generator=generator).topk(4, dim=-1)
    top_weights = torch.softmax(top_values, -1).half()
    experts = kernels.DecodeExpertsMxfp4(320, 256, 4, torch.float16, DEVICE)
    normed, want_normed = torch.empty_like(residual), torch.empty_like(residual)
    kernels_torch.add_rmsnorm(residual.clone(), delta, norm, 1e-5, want_normed)
    kernels.add_rmsnorm(residual, delta, norm, 1e-5, normed, experts.x_pairs)
    assert _relative_error(normed, want_normed) < 1e-3
    assert torch.equal(experts.x_pairs, kernels.word_pairs(normed[0]))
    out = torch.empty(320, dtype=torch.float16, device=DEVICE)
    experts(torch.zeros_like(normed[0]), gate_up, gate_up_bias, down, down_bias, top_ids[0], top_weights[0],
            7.0, 1.702, out, x_pairs_ready=True)  # x itself is not read
    want = kernels_torch.prefill_experts(normed, top_ids, top_weights, gate_up, gate_up_bias, down, down_bias,
                                         7.0, 1.702)
    assert _relative_error(out, want[0]) < 5e-3


def test_the_one_launch_router_picks_the_experts_and_weights_of_the_model():
    generator = torch.Generator(DEVICE).manual_seed(2)
    for n_experts, hidden in ((32, 2880), (8, 256), (6, 320)):  # gpt-oss-20b, the test model, a padded count
        weight = (torch.randn(n_experts, hidden, device=DEVICE, generator=generator) * 0.05).half()
        bias = (torch.randn(n_experts, device=DEVICE, generator=generator) * 0.05).half()
        router = kernels.DecodeRouter(4, torch.float16, DEVICE)
        for x in torch.randn(20, hidden, device=DEVICE, generator=generator).half():
            ids, weights = router(x, weight, bias)
            want_ids, want_weights = kernels_torch.DecodeRouter(4, torch.float16, DEVICE)(x, weight, bias)
            assert ids.tolist() == want_ids.tolist()
            assert torch.allclose(weights.float(), want_weights.float(), atol=1e-3)


def test_the_dense_gemvs_match_the_linear_path_at_gpt_oss_20b_shapes():
    n_q, n_kv, head_dim, hidden, length, position = 64, 8, 64, 2880, 3000, 2047
    generator = torch.Generator(DEVICE).manual_seed(7)
    rows = (n_q + 2 * n_kv) * head_dim
    x = torch.randn(1, hidden, device=DEVICE, generator=generator).half()
    weight = (torch.randn(rows, hidden, device=DEVICE, generator=generator) * hidden ** -0.5).half()
    bias = (torch.randn(rows, device=DEVICE, generator=generator) * 0.1).half()
    angles = torch.arange(length, device=DEVICE)[:, None] * torch.rand(head_dim // 2, device=DEVICE,
                                                                        generator=generator)[None]
    cos, sin = angles.cos(), angles.sin()  # (T, D/2)
    positions = torch.tensor([position], device=DEVICE)
    got_q, want_q = (torch.empty(1, n_q * head_dim, dtype=torch.float16, device=DEVICE) for _ in range(2))
    got_caches, want_caches = ([torch.zeros(n_kv, length, head_dim, dtype=torch.float16, device=DEVICE)
                                for _ in range(2)] for _ in range(2))
    kernels.decode_qkv_rope(x, weight, bias, cos, sin, positions, got_q, *got_caches)
    kernels.rope_and_cache(F.linear(x, weight, bias), cos, sin, positions, want_q, *want_caches)
    assert _relative_error(got_q, want_q) < 2e-3
    for got, want in zip(got_caches, want_caches):
        assert _relative_error(got[:, position], want[:, position]) < 2e-3
        assert torch.count_nonzero(got) == torch.count_nonzero(got[:, position])  # only the position is written

    attended = torch.randn(1, n_q * head_dim, device=DEVICE, generator=generator).half()
    o_weight = (torch.randn(hidden, n_q * head_dim, device=DEVICE, generator=generator) * 64 ** -1).half()
    o_bias = (torch.randn(hidden, device=DEVICE, generator=generator) * 0.1).half()
    out = torch.empty(1, hidden, dtype=torch.float16, device=DEVICE)
    kernels.decode_linear(attended, o_weight, o_bias, out)
    assert _relative_error(out, F.linear(attended, o_weight, o_bias)) < 2e-3


@pytest.mark.parametrize("combine_in_split", [True, False])
def test_decode_attention_matches_the_reference(combine_in_split):
    n_q, n_kv, head_dim, length = 64, 8, 64, 3000  # gpt-oss-20b's heads
    generator = torch.Generator(DEVICE).manual_seed(5)
    k_cache, v_cache = (torch.randn(n_kv, length, head_dim, device=DEVICE, generator=generator).half() for _ in range(2))
    sinks = torch.randn(n_q, device=DEVICE, generator=generator).half()
    attention = kernels.DecodeAttention(n_q, n_kv, head_dim, DEVICE, combine_in_split)
    for position, window in ((2999, kernels.NO_WINDOW), (2047, 128), (5, 128), (0, kernels.NO_WINDOW)):
        q = torch.randn(n_q * head_dim, device=DEVICE, generator=generator).half()
        positions = torch.tensor([position], device=DEVICE)
        out, want = torch.empty_like(q), torch.empty_like(q)
        attention(q, k_cache, v_cache, positions, window, sinks, 0.125, out)
        kernels_torch.DecodeAttention(n_q, n_kv, head_dim, DEVICE)(q, k_cache, v_cache, positions, window, sinks,
                                                                   0.125, want)
        assert _relative_error(out, want) < 2e-3


def test_mxfp4_runner_matches_transformers_on_a_released_layout_checkpoint(model, tmp_path):
    """Packed experts loaded by us and run by our kernels, against Transformers' own load of the
    same file (experts dequantized to FP16) and its forward: logits and 32 greedy tokens."""
    from transformers import AutoModelForCausalLM, Mxfp4Config

    from osslsp.engine.loading import load_model
    from osslsp.models import ensure_built, resolve_model

    model.config.save_pretrained(tmp_path)
    source = resolve_model(f"random-mxfp4:{tmp_path}")
    ensure_built(source)
    theirs = AutoModelForCausalLM.from_pretrained(source.weights, dtype=torch.float16, device_map={"": 0},
                                                  local_files_only=True,
                                                  quantization_config=Mxfp4Config(dequantize=True)).eval()
    theirs.half()  # some versions dequantize to bf16 whatever `dtype`: the values are exact in both
    prompt = torch.randint(0, 1000, (300,), generator=torch.Generator().manual_seed(3)).tolist()
    with torch.inference_mode():
        expected_logits = theirs(torch.tensor([prompt], device=DEVICE)).logits[0, -1].float()
        expected = theirs.generate(torch.tensor([prompt], device=DEVICE), max_new_tokens=32, min_new_tokens=32,
                                   do_sample=False)[0, 300:].tolist()
    loaded = load_model(source, device="cuda", experts="mxfp4", max_context=512)
    assert loaded.experts.format == "mxfp4"
    assert not any(".experts.gate_up_proj" == name[-len(".experts.gate_up_proj"):]
                   for name, _ in loaded.model.named_parameters())  # no FP16 experts on the GPU
    runner = make_runner(loaded.model, 512)
    assert isinstance(runner, FastGptOssRunner) and runner.graph is not None and runner.prefill_graphs
    logits = runner.prefill(prompt)
    assert _relative_error(logits, expected_logits) < 1e-2
    runner.cached_ids = []
    assert list(generate(runner, prompt, Sampling(max_new_tokens=32), frozenset(), lambda: False)) == expected
    edited = prompt[:-4] + [1, 2, 3]  # prefix reuse through the 16-token prefill graph
    with torch.inference_mode():
        edited_logits = theirs(torch.tensor([edited], device=DEVICE)).logits[0, -1].float()
    assert _relative_error(runner.prefill(edited), edited_logits) < 1e-2


def _fresh_runner(config, experts: str, max_context: int) -> FastGptOssRunner:
    """A runner on new random weights of `config`; `mxfp4` packs the experts in memory (the
    released layout, as a loaded checkpoint holds them)."""
    from osslsp.engine import mxfp4

    fresh = _random_model(config, seed=5)
    with torch.no_grad():
        if experts == "mxfp4":
            for layer in fresh.model.layers:
                for name in mxfp4.EXPERT_PROJECTIONS:
                    packed = mxfp4.quantize(getattr(layer.mlp.experts, name).transpose(1, 2))  # (E, out, in)
                    setattr(layer.mlp.experts, f"{name}_blocks", packed.blocks)
                    setattr(layer.mlp.experts, f"{name}_scales", packed.scales)
                    delattr(layer.mlp.experts, name)
    return FastGptOssRunner(fresh, max_context)


@pytest.mark.parametrize("experts", ["fp16", "mxfp4"])
def test_long_prompts_replay_graphs_that_give_the_eager_logits_and_tokens(model, experts):
    """Cold prompts of 300, 1,100 and 4,500 tokens (a 4,096-token piece, then 404 in the 512
    graph) and 700 new tokens after a reused prefix of 2,000: logits and 8 greedy tokens through
    the captured graphs equal those of the eager steps."""
    from osslsp.engine.gpt_oss_fast import PREFILL_CHUNK, prefill_graph_buckets

    runner = _fresh_runner(model.config, experts, 5120)
    graphs = runner.prefill_graphs
    assert [graph.bucket for graph in graphs] == prefill_graph_buckets(5120, PREFILL_CHUNK)
    generator = torch.Generator().manual_seed(6)
    prompt = torch.randint(0, 1000, (4500,), generator=generator).tolist()
    edited = prompt[:2000] + torch.randint(0, 1000, (700,), generator=generator).tolist()
    cases = [(prompt[:300], True), (prompt[:1100], True), (prompt, True), (edited, False)]  # (ids, cold)

    def run(with_graphs: bool) -> list[tuple[torch.Tensor, list[int]]]:
        runner.prefill_graphs = graphs if with_graphs else []
        results = []
        for ids, cold in cases:
            if cold:
                runner.cached_ids = []
            logits = runner.prefill(ids)
            tokens = list(generate(runner, ids, Sampling(max_new_tokens=8), frozenset(), lambda: False))
            runner.cached_ids = runner.cached_ids[:len(ids)]
            results.append((logits, tokens))
        return results

    replayed, eager = run(with_graphs=True), run(with_graphs=False)
    assert next(graph for graph in graphs if graph.bucket == 768).n_real.item() == 700  # edited's replay
    for (ids, _), (got, got_tokens), (want, want_tokens) in zip(cases, replayed, eager):
        assert _relative_error(got, want) < 5e-3, len(ids)
        assert int(got.argmax()) == int(want.argmax()) and got_tokens == want_tokens, len(ids)

def test_the_greedy_stream_on_the_graph_gives_the_tokens_of_decode_steps(model):
    """greedy_tokens replays the decode graph on the token it picked on the device, one replay
    ahead of the host: the tokens equal those of decode_one + argmax, another request served in
    the middle changes none of them, and the stream stops at the end of the context."""
    prompt = torch.randint(0, 1000, (200,), generator=torch.Generator().manual_seed(5)).tolist()
    runner = make_runner(model, 240)
    assert runner.graph is not None
    # small tensors of sevens: they would take any buffer the decode graph uses but the runner let go
    sevens = [torch.full((64,), 7, dtype=torch.int32, device=DEVICE) for _ in range(256)]
    token = int(runner.prefill(prompt).argmax())
    stepped = [token]
    for _ in range(40):  # positions 200..239: the context's last slot
        stepped.append(int(runner.decode_one(stepped[-1]).argmax()))
    runner.cached_ids = []
    first = int(runner.prefill(prompt).argmax())
    streamed = [first] + list(runner.greedy_tokens(first, 100))  # to the end of the 240-token context
    assert streamed == stepped  # 41 tokens: the last pick needs no slot of its own
    assert len(runner.cached_ids) == 240
    runner.cached_ids = []
    first = int(runner.prefill(prompt).argmax())
    assert list(runner.greedy_tokens(first, 6)) == stepped[1:7] and len(runner.cached_ids) == 206
    served = []

    def serve_another_request() -> bool:
        if len(served) == 7:
            runner.prefill(prompt[::-1][:50])
        served.append(None)
        return False

    runner.cached_ids = []
    produced = list(generate(runner, prompt, Sampling(max_new_tokens=30), frozenset(), serve_another_request))
    assert produced == stepped[:30]
    assert all(bool((seven == 7).all()) for seven in sevens)  # nothing its graph uses was let go


def test_kernels_with_programmatic_dependent_launch_give_the_logits_without_it(model, monkeypatch):
    """Kernels that start while the one before them finishes (PDL) read nothing of its output
    before it is done: prefills down each experts path (300 new tokens: experts unpacked to FP16;
    10 after a reused prefix: grouped GEMVs; 100: packed grouped GEMMs; eager, not the graphs
    captured with PDL) and 16 decode steps give, bit for bit, the logits of the same runner
    without PDL (its decode graph captured again)."""
    if not kernels._pdl_supported():
        pytest.skip("programmatic dependent launch needs a Hopper or later GPU")
    runner = _fresh_runner(model.config, "mxfp4", 512)
    runner.prefill_graphs = []
    prompt = torch.randint(0, 1000, (300,), generator=torch.Generator().manual_seed(7)).tolist()

    def logits() -> torch.Tensor:
        runner.cached_ids = []
        steps = [runner.prefill(prompt).clone(), runner.prefill(prompt[:290] + [5] * 10).clone()]
        runner.cached_ids = []
        steps.append(runner.prefill(prompt[:100]).clone())
        token = int(steps[-1].argmax())
        for _ in range(16):
            steps.append(runner.decode_one(token).clone())
            token = int(steps[-1].argmax())
        return torch.cat(steps)

    assert kernels.PDL
    with_pdl = logits()
    monkeypatch.setattr(kernels, "PDL", False)
    runner.graph = None
    runner._capture_decode_graph()
    assert torch.equal(logits(), with_pdl)


def test_the_greedy_pick_of_gpt_oss_20b_logits_is_their_argmax():
    """The decode graph's one-launch pick over gpt-oss-20b's 201,088 logits (several blocks a
    program): the argmax as torch takes it (the first of ties, also across programs' shares), the
    next token, the position advanced; NON_FINITE for an inf."""
    generator = torch.Generator(DEVICE).manual_seed(17)
    greedy_pick = kernels.GreedyPick(DEVICE)
    token, position = torch.zeros(1, dtype=torch.long, device=DEVICE), torch.tensor([2048], device=DEVICE)
    pick = torch.zeros(1, dtype=torch.long, device=DEVICE)
    for case in range(6):
        logits = (torch.randn(1, 201_088, device=DEVICE, generator=generator) * 3).half()
        if case == 1:
            logits[0, 190_000] = logits[0, 5] = 20.0  # tied across two programs' shares: the first wins
        if case == 2:
            logits[0, 3_141] = logits[0, 3_142] = 20.0  # tied across a share boundary
        if case == 5:
            logits[0, 100_000] = float("inf")
        greedy_pick(logits, token, position, pick, -1)
        want = int(logits.argmax()) if bool(torch.isfinite(logits).all()) else -1
        assert (int(pick), int(token), int(position)) == (want, max(want, 0), 2049 + case), case


def _compiled_variants() -> int:
    device = torch.cuda.current_device()
    return sum(len(value.device_caches[device][0]) for value in vars(kernels).values()
               if isinstance(value, triton.runtime.jit.JITFunction))


def test_a_launch_in_compile_only_compiles_and_writes_nothing():
    residual = torch.randn(3, 200, device=DEVICE, dtype=torch.float16)
    delta, weight = torch.randn_like(residual), torch.rand(200, device=DEVICE, dtype=torch.float16)
    normed = torch.zeros_like(residual)
    before = residual.clone()
    compiled = _compiled_variants()
    with kernels.compile_only(threads=2):
        kernels.add_rmsnorm(residual, delta, weight, 1e-5, normed)
    assert torch.equal(residual, before) and not normed.any()
    assert _compiled_variants() == compiled + 1
    kernels.add_rmsnorm(residual, delta, weight, 1e-5, normed)  # the variant compiled above, run
    assert _compiled_variants() == compiled + 1
    torch.testing.assert_close(residual, before + delta)


@pytest.mark.parametrize("experts", ["fp16", "mxfp4"])
def test_the_start_ups_dry_pass_compiles_every_variant_its_steps_launch(model, experts, monkeypatch):
    """On a model shape no other test compiles for: after the parallel dry pass, the start-up's
    real steps (decode graph, every prefill graph size) and served requests compile nothing."""
    config = copy.deepcopy(model.config)
    config.hidden_size = config.intermediate_size = 384
    after_dry_pass = []
    compile_kernels = FastGptOssRunner._compile_kernels

    def counted(runner, prefill_graphs):
        compile_kernels(runner, prefill_graphs)
        after_dry_pass.append(_compiled_variants())

    monkeypatch.setattr(FastGptOssRunner, "_compile_kernels", counted)
    compiled = _compiled_variants()
    runner = _fresh_runner(config, experts, 1024)
    assert after_dry_pass[0] > compiled
    prompt = torch.randint(0, 1000, (700,), generator=torch.Generator().manual_seed(8)).tolist()
    for ids in (prompt, prompt[:650] + [3] * 9, prompt[:40]):
        first = int(runner.prefill(ids).argmax())
        list(runner.greedy_tokens(first, 4))
    assert _compiled_variants() == after_dry_pass[0]
