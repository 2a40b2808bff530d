"""The released MXFP4 checkpoint layout: written by us, read by us, checked against Transformers.

A tiny gpt-oss checkpoint with random weights is written in the released layout (key names,
dtypes, shapes, quantization_config), then loaded through `load_model` exactly as a downloaded
checkpoint is. Transformers' own loading and dequantization of the same file is the reference.
"""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from transformers import AutoModelForCausalLM, Mxfp4Config
from transformers.integrations.mxfp4 import convert_moe_packed_tensors

from osslsp.engine import kernels_torch, mxfp4
from osslsp.engine.generation import generate
from osslsp.engine.gpt_oss_fast import FastGptOssRunner, make_runner
from osslsp.engine.loading import (ModelLoadError, _from_released_layout, _needs_gib, choose_experts,
                                   decide_experts, load_model)
from osslsp.models import ModelSource, resolve_model
from osslsp.paths import bundled_data
from osslsp.sampling import Sampling

NEW_TOKENS = 16


@pytest.fixture(scope="module")
def source(tiny_dir) -> ModelSource:
    return resolve_model(f"random-mxfp4:{tiny_dir}")


@pytest.fixture(scope="module")
def checkpoint(source):
    from osslsp.models import ensure_built

    ensure_built(source)
    return source.weights


def _tensors(checkpoint) -> dict[str, torch.Tensor]:
    tensors = {}
    for file in mxfp4.checkpoint_files(checkpoint):
        tensors.update(load_file(file))
    return tensors


def _prompt(vocab: int) -> list[int]:
    return torch.randint(0, vocab, (24,), generator=torch.Generator().manual_seed(3)).tolist()


def test_the_checkpoint_has_the_released_names_dtypes_shapes_and_quantization_config(checkpoint, tiny_dir):
    tiny_config = json.loads((tiny_dir / "config.json").read_text())
    config = json.loads((checkpoint / "config.json").read_text())
    real = json.loads((bundled_data("gpt-oss-20b") / "config.json").read_text())
    assert config["quantization_config"] == real["quantization_config"]
    tensors = _tensors(checkpoint)
    experts, hidden = tiny_config["num_local_experts"], tiny_config["hidden_size"]
    intermediate = tiny_config["intermediate_size"]
    for layer in range(tiny_config["num_hidden_layers"]):
        prefix = f"model.layers.{layer}.mlp.experts."
        assert tensors[prefix + "gate_up_proj_blocks"].shape == (experts, 2 * intermediate, hidden // 32, 16)
        assert tensors[prefix + "gate_up_proj_scales"].shape == (experts, 2 * intermediate, hidden // 32)
        assert tensors[prefix + "down_proj_blocks"].shape == (experts, hidden, intermediate // 32, 16)
        assert tensors[prefix + "down_proj_scales"].shape == (experts, hidden, intermediate // 32)
        assert tensors[prefix + "gate_up_proj_bias"].shape == (experts, 2 * intermediate)
        assert tensors[prefix + "down_proj_bias"].shape == (experts, hidden)
        assert prefix + "gate_up_proj" not in tensors and prefix + "down_proj" not in tensors
    for name, tensor in tensors.items():
        packed = name.endswith(("_blocks", "_scales"))
        assert tensor.dtype == (torch.uint8 if packed else torch.bfloat16), name


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_our_dequantization_is_transformers_exactly(checkpoint, dtype):
    tensors = _tensors(checkpoint)
    for name in [n for n in tensors if n.endswith("_blocks")]:
        packed = mxfp4.Mxfp4Weight(tensors[name], tensors[name.replace("_blocks", "_scales")])
        theirs = convert_moe_packed_tensors(packed.blocks, packed.scales, dtype=dtype)  # (E, in, out)
        assert torch.equal(mxfp4.dequantize(packed, dtype).transpose(1, 2), theirs), name


def test_quantization_is_exact_on_representable_values_and_rounds_to_the_nearest():
    weight = torch.randn(2, 8, 64, generator=torch.Generator().manual_seed(0)) * 0.02
    weight[0, 0, :32] = 0.0  # an all-zero block
    packed = mxfp4.quantize(weight)
    values = mxfp4.dequantize(packed, torch.float32)
    assert torch.equal(mxfp4.dequantize(mxfp4.quantize(values), torch.float32), values)
    step = torch.exp2(packed.scales.float() - mxfp4.SCALE_BIAS).repeat_interleave(32, dim=-1)  # (E, out, in)
    assert bool(((values - weight).abs() <= step).all())  # half of E2M1's widest gap (4 to 6) at most


def test_our_load_generates_the_tokens_of_transformers_own_load(source, checkpoint):
    loaded = load_model(source, device="cpu")
    assert loaded.experts.format == "fp16" and "dequantized" in loaded.experts.reason
    theirs = AutoModelForCausalLM.from_pretrained(checkpoint, dtype=loaded.dtype, local_files_only=True,
                                                  quantization_config=Mxfp4Config(dequantize=True)).eval()
    prompt = _prompt(loaded.model.config.vocab_size)
    with torch.inference_mode():
        expected = theirs.generate(torch.tensor([prompt]), max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS,
                                   do_sample=False)[0, len(prompt):].tolist()
    runner = make_runner(loaded.model, 256)
    produced = list(generate(runner, prompt, Sampling(max_new_tokens=NEW_TOKENS), frozenset(), lambda: False))
    assert produced == expected


def _broken_copy(checkpoint, tmp_path, change) -> ModelSource:
    """A copy of the checkpoint whose first layer's shard is rewritten by `change`."""
    broken = tmp_path / "broken"
    shutil.copytree(checkpoint, broken)
    index = json.loads((broken / mxfp4.INDEX_FILE).read_text())
    shard = broken / index["weight_map"]["model.layers.0.mlp.experts.down_proj_scales"]
    tensors = load_file(shard)
    change(tensors)
    save_file(tensors, shard, metadata={"format": "pt"})
    return ModelSource(str(broken), "checkpoint", broken, broken)


def test_a_missing_scale_tensor_is_named(checkpoint, tmp_path):
    source = _broken_copy(checkpoint, tmp_path, lambda t: t.pop("model.layers.0.mlp.experts.down_proj_scales"))
    with pytest.raises(ModelLoadError, match=r"no tensor model\.layers\.0\.mlp\.experts\.down_proj_scales"):
        load_model(source, device="cpu")


def test_a_misshapen_block_tensor_is_named(checkpoint, tmp_path):
    name = "model.layers.0.mlp.experts.down_proj_blocks"

    def truncate(tensors):
        tensors[name] = tensors[name][:, :-1].contiguous()

    source = _broken_copy(checkpoint, tmp_path, truncate)
    with pytest.raises(ModelLoadError, match=rf"{name} has shape .* the config wants"):
        load_model(source, device="cpu")


def test_mxfp4_experts_need_an_mxfp4_checkpoint(tiny_dir):
    with pytest.raises(ModelLoadError, match="experts = mxfp4 needs a checkpoint with MXFP4 experts"):
        choose_experts(resolve_model("tiny"), "mxfp4", "cpu", 0.0, 1024)
    assert choose_experts(resolve_model("tiny"), "auto", "cpu", 0.0, 1024).format == "fp16"


def test_gpt_oss_20b_needs_about_14_gib_with_mxfp4_experts_and_41_with_fp16():
    from transformers import AutoConfig

    raw = json.loads((bundled_data("gpt-oss-20b") / "config.json").read_text())
    raw.pop("quantization_config")
    fp16_gib, mxfp4_gib = _needs_gib(AutoConfig.for_model(**raw), 8192)
    assert 40.0 < fp16_gib < 42.5 and 13.5 < mxfp4_gib < 15.0, (fp16_gib, mxfp4_gib)


@pytest.mark.parametrize("one_gpu, all_gpus, setting, expected", [
    (79.0, 79.0, "auto", "fp16"),  # an 80 GB card holds FP16 experts
    (23.0, 46.0, "auto", "fp16"),  # two 24 GB cards: FP16 split across them
    (23.0, 23.0, "auto", "mxfp4"),  # one 24 GB card
    (15.5, 15.5, "auto", "mxfp4"),  # one 16 GB card
    (79.0, 79.0, "mxfp4", "mxfp4"),  # asked for
    (11.0, 11.0, "auto", None),  # a 12 GB card holds neither
])
def test_auto_takes_fp16_experts_where_they_fit_else_mxfp4(one_gpu, all_gpus, setting, expected):
    choice = decide_experts(setting, 41.0, 14.3, one_gpu, all_gpus)
    assert (choice.format if choice else None) == expected


def test_packed_experts_are_kept_as_stored(checkpoint):
    name = "model.layers.1.mlp.experts.gate_up_proj_blocks"
    index = json.loads((checkpoint / mxfp4.INDEX_FILE).read_text())
    with safe_open(str(checkpoint / index["weight_map"][name]), framework="pt") as stream:
        stored = stream.get_tensor(name)
    model = _from_released_layout(checkpoint, torch.float32, "cpu", keep_packed=True)
    experts = model.model.layers[1].mlp.experts
    assert torch.equal(experts.gate_up_proj_blocks, stored)
    assert "gate_up_proj" not in dict(experts.named_parameters())


def test_the_fast_runner_steps_on_packed_experts_give_the_tokens_of_transformers(checkpoint):
    """The runner's logic with packed experts (layout, routing, cache, prefix reuse), through the
    plain-PyTorch kernels; test_fast_gpu.py checks the Triton kernels the same way."""
    theirs = AutoModelForCausalLM.from_pretrained(checkpoint, dtype=torch.float32, local_files_only=True,
                                                  quantization_config=Mxfp4Config(dequantize=True)).eval()
    prompt = _prompt(theirs.config.vocab_size)
    with torch.inference_mode():
        expected = theirs.generate(torch.tensor([prompt]), max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS,
                                   do_sample=False)[0, len(prompt):].tolist()
        edited = prompt[:-3] + [5, 6]
        edited_logits = theirs(torch.tensor([edited])).logits[0, -1]
    packed = _from_released_layout(checkpoint, torch.float32, "cpu", keep_packed=True)
    runner = FastGptOssRunner(packed, 256, kernels=kernels_torch)
    produced = list(generate(runner, prompt, Sampling(max_new_tokens=NEW_TOKENS), frozenset(), lambda: False))
    assert produced == expected
    torch.testing.assert_close(runner.prefill(edited), edited_logits, rtol=1e-4, atol=1e-4)
