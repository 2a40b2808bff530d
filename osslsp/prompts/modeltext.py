"""A model's text side: its tokenizer and chat template, loaded from the checkpoint's files.

This needs no weights and no torch, so prompts can be built and shown (`osslsp prompt`) on any
machine. The chat template renders the way Transformers' `apply_chat_template` renders it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from pathlib import Path

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment
from tokenizers import Tokenizer

from osslsp.prompts.harmony import CHANNEL, END_MARKERS, is_harmony_template
from osslsp.prompts.tokencount import TokenCounter

KEPT_RENDERINGS = 16


class ModelTextError(Exception):
    """The checkpoint's tokenizer or chat template is missing or broken."""


def _raise_exception(message: str) -> None:
    raise jinja2.exceptions.TemplateError(message)


def _tojson(value, ensure_ascii=False, indent=None, separators=None, sort_keys=False) -> str:
    # Jinja's own tojson escapes HTML characters; chat templates expect plain JSON.
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                      sort_keys=sort_keys)


def _template_environment() -> ImmutableSandboxedEnvironment:
    environment = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols]
    )
    environment.filters["tojson"] = _tojson
    environment.globals["raise_exception"] = _raise_exception
    environment.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    return environment


def _read_chat_template(directory: Path, config: dict) -> str:
    jinja_file = directory / "chat_template.jinja"
    if jinja_file.exists():
        return jinja_file.read_text()
    template = config.get("chat_template")
    if isinstance(template, list):  # named templates: the default one
        template = next((t["template"] for t in template if t.get("name") == "default"), None)
    if not template:
        raise ModelTextError(f"{directory} has no chat template (chat_template.jinja or tokenizer_config.json)")
    return template


def _special_token(config: dict, name: str) -> str | None:
    token = config.get(name)
    return token.get("content") if isinstance(token, dict) else token


@dataclass(frozen=True)
class Message:
    role: str  # "system", "developer", "user", "assistant"
    content: str


class ModelText:
    """Tokenizer and chat template of one checkpoint directory."""

    def __init__(self, directory: Path):
        self.directory = directory
        try:
            self.tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
            self.config = json.loads((directory / "tokenizer_config.json").read_text())
        except (OSError, ValueError, Exception) as error:
            raise ModelTextError(f"cannot read the tokenizer in {directory}: {error}") from error
        self.chat_template = _read_chat_template(directory, self.config)
        self._template = _template_environment().from_string(self.chat_template)
        self._rendered: dict[tuple, str] = {}
        self.special_tokens = {
            name: token for name in ("bos_token", "eos_token", "pad_token", "unk_token")
            if (token := _special_token(self.config, name)) is not None
        }

    @cached_property
    def is_harmony(self) -> bool:
        """gpt-oss's harmony format: channels, reasoning effort, pre-fillable final channel."""
        return is_harmony_template(self.chat_template, self.token_id(CHANNEL))

    def token_id(self, token: str) -> int | None:
        return self.tokenizer.token_to_id(token)

    @cached_property
    def stop_ids(self) -> frozenset[int]:
        """Ids that end an assistant turn: harmony's end markers, else the EOS token and kin."""
        names = [*END_MARKERS, "<|im_end|>", "<|eot_id|>", "<end_of_turn>", self.special_tokens.get("eos_token")]
        return frozenset(i for name in names if name and (i := self.token_id(name)) is not None)

    def render(self, messages: list[Message], reasoning_effort: str | None = None) -> str:
        """The conversation rendered by the model's chat template, ready for the assistant's turn.

        A keystroke renders the same conversation again: the last few renderings are kept for as
        long as the clock the template may read (`strftime_now`) shows the same minute.
        """
        key = (tuple(messages), reasoning_effort, datetime.now().strftime("%Y-%m-%d %H:%M"))
        rendered = self._rendered.get(key)
        if rendered is None:
            kwargs = dict(self.special_tokens)
            if reasoning_effort:
                kwargs["reasoning_effort"] = reasoning_effort
            rendered = self._template.render(
                messages=[{"role": m.role, "content": m.content} for m in messages],
                add_generation_prompt=True,
                **kwargs,
            )
            if len(self._rendered) >= KEPT_RENDERINGS:
                self._rendered.clear()
            self._rendered[key] = rendered
        return rendered

    def encode(self, text: str) -> list[int]:
        """Token ids of text that may contain special tokens (never adds BOS/EOS itself)."""
        return self.tokenizer.encode(text, add_special_tokens=False).ids

    @cached_property
    def counter(self) -> TokenCounter:
        """Counts and ids from kept pieces: what a keystroke did not change is not encoded again."""
        return TokenCounter(self.tokenizer)

    def count(self, text: str) -> int:
        return self.counter.count(text)

    def decode(self, ids: list[int], skip_special: bool = False) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=skip_special)
