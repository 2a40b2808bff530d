"""The assistant: everything osslsp does for an editor, with no LSP in it.

The language server and the CLI are thin adapters over this class and the jobs that use it
(osslsp/completions.py, osslsp/actions/). It owns the settings, the backend that generates, the
model's text side (tokenizer and chat template) and the workspace's knowledge (index, style
guides); it turns a cursor into a prompt, and a prompt into a stream of text.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

from osslsp import audit
from osslsp.backends import Backend, GenerationSettings, make_backend
from osslsp.index import Snippet, WorkspaceIndex, is_secret_path
from osslsp.index.secrets import redact_around
from osslsp.languages import language_for
from osslsp.models import ModelNotFound, ModelSource, ensure_built, resolve_model
from osslsp.prompts.budget import most_that_fits
from osslsp.prompts.completion_prompt import CONTEXT_SHARE, GUIDE_SHARE, Cursor, Prompt, build_completion_prompt
from osslsp.prompts.gpt_oss_tokenizer import gpt_oss_text, names_gpt_oss
from osslsp.prompts.harmony import END, FINAL_CHANNEL, final_channel, final_message_ended
from osslsp.prompts.modeltext import Message, ModelText, ModelTextError
from osslsp.settings import Settings
from osslsp.style import StyleGuide, resolve_guide

log = logging.getLogger(__name__)

MAX_SHOWN_PATHS = 1_000  # documents whose paths as the model sees them are kept


class AssistantError(Exception):
    """Something the user must know about (no model, a broken checkpoint...); never a crash."""


class Superseded(AssistantError):
    """A newer request for the same document took this one's place: nothing to tell anyone."""


@dataclass
class StreamEnd:
    """How a stream ended, filled in when it has: "stop", "length", "repetition", "cancelled" or "error"."""

    finish_reason: str = ""


def prepare_text_files(source: ModelSource | None) -> ModelText:
    """The model's tokenizer and chat template, building the tiny model or converting a GGUF first.
    With no source (gpt-oss-20b not on disk), gpt-oss-20b's, built from the o200k_base ranks."""
    if source is not None:
        ensure_built(source)
    try:
        return ModelText(source.text_dir) if source is not None else gpt_oss_text()
    except ModelTextError as error:
        raise AssistantError(str(error)) from error


def display_path(path: Path, root: Path | None) -> str:
    """A path as the model sees it: relative to the workspace when inside it."""
    if root is not None:
        try:
            return path.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            pass
    return path.name


class Assistant:
    """Completions and chat-style generations for one workspace and one model."""

    def __init__(self, settings: Settings, root: Path | None = None,
                 on_state: Callable[[str, str], None] = lambda state, message: None,
                 on_warning: Callable[[str], None] = log.warning, index: WorkspaceIndex | None = None):
        self.settings = settings
        self.root = root
        self.on_state = on_state
        self.on_warning = on_warning  # for the user: a broken style guide and the like
        self.source: ModelSource | None = None
        self.text: ModelText | None = None
        self.backend: Backend | None = None
        self.error = ""
        # An index handed in belongs to the caller (the server keeps it across reloads).
        self._owns_index = index is None and root is not None and settings.index_enabled
        self.index = WorkspaceIndex(root) if self._owns_index else index
        self._text_lock = threading.Lock()  # the loop and the engine thread may both ask first
        self._guides: dict[tuple[str, str], StyleGuide] = {}
        self._guide_texts: dict[tuple[str, str, int], str] = {}
        self._shown_paths: dict[Path, str] = {}

    # --- start-up -------------------------------------------------------------------------

    def resolve(self) -> ModelSource:
        """Find the model (no loading); AssistantError says where we looked."""
        try:
            self.source = resolve_model(self.settings.model)
        except ModelNotFound as error:
            raise AssistantError(str(error)) from error
        return self.source

    def load_text(self) -> ModelText:
        """Tokenizer and chat template only: enough to build prompts, no weights.

        gpt-oss-20b's come from the o200k_base ranks when its checkpoint is not on disk, so its
        exact prompts can be shown and counted on any machine.
        """
        with self._text_lock:
            if self.text is None:
                try:
                    source = self.source or self.resolve()
                except AssistantError:
                    if not names_gpt_oss(self.settings.model):
                        raise
                    source = None
                self.text = prepare_text_files(source)
        return self.text

    def start(self) -> None:
        """Resolve the model and start the backend (the model loads in the background)."""
        try:
            source = self.resolve()
        except AssistantError as error:
            self.error = str(error)
            self.on_state("error", self.error)
            return
        self.backend = make_backend(self.settings, source, self.load_text, self._backend_state)
        self.backend.start()

    def _backend_state(self, state: str, message: str) -> None:
        if state == "ready" and self.meaningless:
            message += " (random weights: its text is meaningless)"
        self.error = message if state == "error" else ""  # a backend that recovers clears it
        self.on_state(state, message)

    async def wait_ready(self) -> None:
        """Wait (cancellably) until the model can generate; AssistantError if it cannot."""
        if self.backend is None and not self.error:
            self.start()
        if self.backend is not None:
            await self.backend.wait_ready()
        if self.error:
            raise AssistantError(self.error)

    def describe(self) -> dict[str, object]:
        return self.backend.describe() if self.backend else {}

    @property
    def meaningless(self) -> bool:
        """The model has random weights: what it writes means nothing."""
        return self.source is not None and self.source.meaningless

    def close(self) -> None:
        """Stop generating (and close the index if it is ours); returns at once."""
        if self.backend is not None:
            self.backend.close()
        if self._owns_index:
            self.index.close()

    def wait_closed(self) -> None:
        """Block until the backend let go of its model (after close)."""
        if self.backend is not None:
            self.backend.join()

    # --- workspace knowledge --------------------------------------------------------------

    def context_for(self, path: Path, text: str, offset: int, budget_tokens: int) -> list[Snippet]:
        """Definitions from the workspace that the code at `offset` uses, best first."""
        if self.index is None or budget_tokens <= 0:
            return []
        return self.index.context_for(path, text, offset, budget_tokens, self.load_text().count)

    def guide_for(self, language: str) -> StyleGuide:
        """The style guide that applies to a language here (bundled, team, setting)."""
        key = (language, self.settings.style_guide)  # the setting can change while we run
        if key not in self._guides:
            guide, warnings = resolve_guide(language, self.root, self.settings.style_guide)
            for warning in warnings:
                self.on_warning(warning)
            self._guides[key] = guide
        return self._guides[key]

    def guide_text(self, language: str, budget_tokens: int) -> str:
        """The guide in compact form, as many of its rules and sentences as fit the budget."""
        if not language:
            return ""
        key = (language, self.settings.style_guide, budget_tokens)
        if key not in self._guide_texts:
            guide, count = self.guide_for(language), self.load_text().count

            def fits(chars: int) -> bool:
                return count(guide.prompt_text(chars)) <= budget_tokens

            self._guide_texts[key] = guide.prompt_text(most_that_fits(len(guide.prompt_text()), fits))
        return self._guide_texts[key]

    # --- generation -----------------------------------------------------------------------

    async def stream(self, prompt_text: str, prompt_ids: list[int], stop_ids: frozenset[int], key: str | None,
                     stop_when: Callable[[str], bool] | None, ended: StreamEnd | None = None,
                     **generation) -> AsyncIterator[str]:
        """The backend's text as it comes; `ended` learns how it ended; `generation` holds the
        `GenerationSettings` fields other than the temperature (a setting)."""
        stream = self.backend.stream(
            prompt_text, prompt_ids, stop_ids,
            GenerationSettings(temperature=self.settings.temperature, **generation),
            key, stop_when,
        )
        try:
            async for delta in stream:
                yield delta
        except AssistantError:
            raise
        except Exception as error:
            raise AssistantError(str(error)) from error
        if ended is not None:
            ended.finish_reason = stream.finish_reason
        if stream.finish_reason == "cancelled":
            raise Superseded("superseded by a newer request")

    async def chat(self, messages: list[Message], *, reasoning_effort: str = "low",
                   answer_prefix: str = "", max_new_tokens: int = 512, key: str | None = None,
                   stop_when: Callable[[str], bool] | None = None,
                   repetition_note: str = "") -> AsyncIterator[str]:
        """Stream the model's answer to a conversation: final-channel text only, as it grows.

        An answer that loops over the same run of tokens is ended early, and `repetition_note`
        follows it.

        On gpt-oss with reasoning effort "low" the final channel is pre-filled, so the model
        answers at once; with more effort it thinks in the analysis channel first, and that is
        never shown. `answer_prefix` starts the answer (e.g. an opening code fence).
        """
        await self.wait_ready()
        text = self.load_text()
        effort = reasoning_effort if text.is_harmony else None
        prefilled = not text.is_harmony or effort == "low"
        prompt_text = text.render(messages, reasoning_effort=effort)
        prompt_text += (FINAL_CHANNEL if text.is_harmony and prefilled else "") + answer_prefix
        stop_ids = text.stop_ids
        end_id = text.token_id(END)
        if not prefilled and end_id is not None:
            stop_ids = stop_ids - {end_id}  # <|end|> closes the analysis message: go on to the final one

        def done(raw: str) -> bool:
            return final_message_ended(raw) or bool(stop_when and stop_when(final_channel(raw, prefilled)))

        raw, shown, ended, started = "", "", StreamEnd(), time.perf_counter()
        async for delta in self.stream(prompt_text, text.encode(prompt_text), stop_ids, key, done, ended,
                                       max_new_tokens=max_new_tokens, stop_on_repetition=True):
            raw += delta
            answer = final_channel(raw, prefilled)
            if len(answer) > len(shown) and answer.startswith(shown):
                yield answer[len(shown):]
                shown = answer
        if ended.finish_reason == "repetition":
            log.info("the model repeated itself: its answer was ended early")
            if repetition_note:
                yield repetition_note
        audit.generation(self.settings, key or "chat", prompt_text, raw, shown or None,
                         {"total_ms": round((time.perf_counter() - started) * 1000, 1)})

    # --- completion prompts ---------------------------------------------------------------

    def cursor_at(self, path: Path, text: str, offset: int, language_id: str | None = None) -> Cursor:
        """A document split at the cursor, credential-looking lines redacted (a credential the
        cursor is inside is redacted whole, on both sides)."""
        language = language_for(path, language_id)
        if is_secret_path(path):
            raise AssistantError(f"{path.name} holds secrets: osslsp never puts it in a prompt")
        prefix, suffix = redact_around(text, offset)
        return Cursor(
            path=self.shown_path(path),
            language=language.name if language else (language_id or ""),
            prefix=prefix,
            suffix=suffix,
            absolute=path,
        )

    def shown_path(self, path: Path) -> str:
        """`display_path` of a document, kept: resolving a path stats each of its folders, at
        every keystroke (and each system call lets the engine thread take the interpreter)."""
        shown = self._shown_paths.get(path)
        if shown is None:
            if len(self._shown_paths) >= MAX_SHOWN_PATHS:
                self._shown_paths.clear()
            shown = self._shown_paths[path] = display_path(path, self.root)
        return shown

    def completion_prompt(self, cursor: Cursor) -> Prompt:
        """The exact prompt for a cursor, within the configured token budget.

        Logs how long it took (`prompt {...}`, JSON; `at` is the monotonic clock at the start,
        which other processes of this machine read too: benchmarks/typing_through_server.py pairs it with the
        keystroke that asked).
        """
        started = time.monotonic()
        budget = self.settings.context_tokens
        text = cursor.prefix + cursor.suffix
        snippets = self.context_for(cursor.absolute, text, len(cursor.prefix), int(budget * CONTEXT_SHARE))
        retrieved = time.monotonic()
        guide = self.guide_text(cursor.language, int(budget * GUIDE_SHARE))
        try:
            prompt = build_completion_prompt(self.load_text(), cursor, budget, guide, snippets)
        except ValueError as error:
            raise AssistantError(str(error)) from error
        if log.isEnabledFor(logging.INFO):
            log.info("prompt %s", json.dumps({
                "at": started, "build_ms": round((time.monotonic() - started) * 1000, 2),
                "retrieval_ms": round((retrieved - started) * 1000, 2), "tokens": len(prompt.ids)}))
        return prompt
