"""The assistant: everything osslsp does for an editor, with no LSP in it.

The language server and the CLI are thin adapters over this class. It owns the settings, the
backend that generates, the model's text side (tokenizer and chat template), and turns a cursor
into a prompt, a generation, and a cleaned completion.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from osslsp import audit
from osslsp.backends import Backend, GenerationSettings, make_backend
from osslsp.documents import position_at
from osslsp.index import Snippet, WorkspaceIndex, is_secret_path
from osslsp.index.secrets import redact_around
from osslsp.languages import language_for
from osslsp.models import ModelNotFound, ModelSource, ensure_built, resolve_model
from osslsp.prompts.budget import most_that_fits
from osslsp.prompts.completion_prompt import CONTEXT_SHARE, GUIDE_SHARE, Cursor, Prompt, build_completion_prompt
from osslsp.prompts.gpt_oss_tokenizer import gpt_oss_text, names_gpt_oss
from osslsp.prompts.harmony import END, FINAL_CHANNEL, final_channel, final_message_ended
from osslsp.prompts.healing import Healed, heal, strip_removed, vocabulary_for
from osslsp.prompts.modeltext import Message, ModelText, ModelTextError
from osslsp.prompts.postprocess import Cleaned, block_finished, clean_completion, replaced_length
from osslsp.settings import Settings
from osslsp.style import StyleGuide, enforce_completion, resolve_guide

log = logging.getLogger(__name__)


class AssistantError(Exception):
    """Something the user must know about (no model, a broken checkpoint...); never a crash."""


class Superseded(AssistantError):
    """A newer request for the same document took this one's place: nothing to tell anyone."""


@dataclass
class Completion:
    """One completion: the text to insert (None when nothing is worth showing, and `why`), how many
    characters after the cursor on its line it replaces, and how it went."""

    text: str | None
    prompt: Prompt
    raw: str = ""
    replaced: int = 0
    why: str = ""
    timings: dict[str, float] = field(default_factory=dict)


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


def log_withheld(where: str, before_cursor: str, why: str) -> None:
    """One info line for the log: which completion showed nothing (`where` is the file as
    `display_path` names it), and why."""
    line, column = position_at(before_cursor, len(before_cursor), "utf-32")
    log.info("completion withheld at %s:%d:%d: %s", where, line + 1, column + 1, why)


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

    async def _stream(self, prompt_text: str, prompt_ids: list[int], stop_ids: frozenset[int], key: str | None,
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
        async for delta in self._stream(prompt_text, text.encode(prompt_text), stop_ids, key, done, ended,
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

    # --- completions ----------------------------------------------------------------------

    def cursor_at(self, path: Path, text: str, offset: int, language_id: str | None = None) -> Cursor:
        """A document split at the cursor, credential-looking lines redacted (a credential the
        cursor is inside is redacted whole, on both sides)."""
        language = language_for(path, language_id)
        if is_secret_path(path):
            raise AssistantError(f"{path.name} holds secrets: osslsp never puts it in a prompt")
        prefix, suffix = redact_around(text, offset)
        return Cursor(
            path=display_path(path, self.root),
            language=language.name if language else (language_id or ""),
            prefix=prefix,
            suffix=suffix,
            absolute=path,
        )

    def completion_prompt(self, cursor: Cursor) -> Prompt:
        """The exact prompt for a cursor, within the configured token budget.

        Logs how long it took (`prompt {...}`, JSON; `at` is the monotonic clock at the start,
        which other processes of this machine read too: benchmarks/typing.py pairs it with the
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

    def enforce_style(self, cursor: Cursor, cleaned: Cleaned) -> Cleaned:
        """The suggestion fixed or cut to the style guide, or none (and the rule why) when nothing
        of it complies."""
        if cleaned.text is None or not cursor.language:
            return cleaned
        enforced = enforce_completion(cursor.prefix, cleaned.text, cursor.suffix[cleaned.replaced:],
                                      cursor.language, self.guide_for(cursor.language))
        for finding in enforced.rejected:
            log.info("style: %s:%s:%s %s: %s rejected %r", cursor.path, finding.line, finding.col,
                     finding.rule, finding.message, cleaned.text)
        if enforced.text is None:
            first = enforced.rejected[0] if enforced.rejected else None
            return Cleaned(None, f"style rule {first.rule} at line {first.line}: {first.message}" if first
                           else "the style guide withheld it")
        return replace(cleaned, text=enforced.text, replaced=replaced_length(enforced.text, cursor.line_suffix))

    def _prompt_and_healing(self, cursor: Cursor) -> tuple[Prompt, Healed | None]:
        """Both on one worker thread: a keystroke pays one hop off the event loop, not two."""
        prompt = self.completion_prompt(cursor)
        return prompt, self.healed_prompt(prompt)

    def healed_prompt(self, prompt: Prompt) -> Healed | None:
        """The prompt backed up to a token boundary before the cursor (token healing), when the
        backend can hold the answer's first tokens to the text removed; None to send it as is."""
        vocabulary = vocabulary_for(self.load_text()) if self.backend.constrains_tokens else None
        if vocabulary is None:
            return None
        code_up_to_cursor = prompt.prefill.partition("\n")[2]
        return heal(prompt.ids, code_up_to_cursor, vocabulary)

    async def complete(self, cursor: Cursor, key: str | None = None) -> Completion:
        """Generate and clean one completion; cancelling the awaiting task stops the model."""
        await self.wait_ready()
        started = time.perf_counter()
        # Retrieval and fitting the budget take milliseconds (the index's first use: ~0.4 s):
        # off the event loop, which must stay free for cancels and keystrokes.
        prompt, healed = await asyncio.to_thread(self._prompt_and_healing, cursor)
        removed = healed.removed if healed else ""

        def block_done(raw: str) -> bool:
            return block_finished(strip_removed(raw, removed), cursor, prompt.prefill)

        raw, first_token, ended = "", None, StreamEnd()
        try:
            async for delta in self._stream(prompt.text[:len(prompt.text) - len(removed)],
                                            healed.ids if healed else prompt.ids, prompt.stop_ids, key,
                                            block_done, ended, max_new_tokens=self.settings.max_new_tokens,
                                            first_text=removed, interactive=True):
                first_token = first_token or time.perf_counter()
                raw += delta
        except (Superseded, asyncio.CancelledError) as stopped:
            log_withheld(cursor.path, cursor.prefix, "superseded by a newer request"
                         if isinstance(stopped, Superseded) else "cancelled by the editor")
            raise
        raw = strip_removed(raw, removed)
        finished = time.perf_counter()
        cleaned = self.enforce_style(cursor, clean_completion(raw, cursor, prompt.prefill,
                                                              complete=ended.finish_reason != "length",
                                                              check_syntax=not self.meaningless))
        if cleaned.text is None:
            log_withheld(cursor.path, cursor.prefix, cleaned.why)
        completion = Completion(
            text=cleaned.text,
            prompt=prompt,
            raw=raw,
            replaced=cleaned.replaced,
            why=cleaned.why,
            timings={
                "ttft_ms": round(((first_token or finished) - started) * 1000, 1),
                "total_ms": round((finished - started) * 1000, 1),
                "prompt_tokens": len(prompt.ids),
            },
        )
        audit.generation(self.settings, f"completion:{cursor.absolute}", prompt.text, raw, completion.text,
                         completion.timings, before=cursor.prefix, why=cleaned.why)
        return completion
