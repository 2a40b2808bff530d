"""The assistant: everything osslsp does for an editor, with no LSP in it.

The language server and the CLI are thin adapters over this class. It owns the settings, the
model engine, the model's text side (tokenizer and chat template), and turns a cursor into a
prompt, a generation, and a cleaned completion.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from osslsp.languages import language_for
from osslsp.models import ModelNotFound, ModelSource, resolve_model
from osslsp.prompts.completion import Cursor, Prompt, build_completion_prompt
from osslsp.prompts.modeltext import ModelText, ModelTextError
from osslsp.prompts.postprocess import clean_completion, final_channel
from osslsp.settings import Settings

log = logging.getLogger(__name__)


class AssistantError(Exception):
    """Something the user must know about (no model, a broken checkpoint...); never a crash."""


@dataclass
class Completion:
    """One completion: the text to insert (None when nothing is worth showing) and how it went."""

    text: str | None
    prompt: Prompt
    raw: str = ""
    timings: dict[str, float] = field(default_factory=dict)


def prepare_text_files(source: ModelSource) -> ModelText:
    """The model's tokenizer and chat template, building the tiny model or converting a GGUF first."""
    if source.kind in ("tiny", "random"):
        from osslsp.engine.tiny import ensure_tiny

        ensure_tiny(source.text_dir)
    elif source.kind == "gguf":
        from osslsp.engine.gguf import ensure_converted

        ensure_converted(source.weights, source.text_dir)
    try:
        return ModelText(source.text_dir)
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
    """Completions (and later actions) for one workspace and one model."""

    def __init__(self, settings: Settings, root: Path | None = None,
                 on_state: Callable[[str, str], None] = lambda state, message: None):
        self.settings = settings
        self.root = root
        self.on_state = on_state
        self.source: ModelSource | None = None
        self.text: ModelText | None = None
        self.engine = None  # osslsp.engine.engine.Engine once started
        self.error = ""

    # --- start-up -------------------------------------------------------------------------

    def resolve(self) -> ModelSource:
        """Find the model (no loading); AssistantError says where we looked."""
        try:
            self.source = resolve_model(self.settings.model)
        except ModelNotFound as error:
            raise AssistantError(str(error)) from error
        return self.source

    def load_text(self) -> ModelText:
        """Tokenizer and chat template only: enough to build prompts, no weights."""
        if self.text is None:
            self.text = prepare_text_files(self.source or self.resolve())
        return self.text

    def start_engine(self) -> None:
        """Resolve the model and start loading it on the engine thread (returns at once)."""
        from osslsp.engine.engine import Engine

        try:
            source = self.resolve()
        except AssistantError as error:
            self.error = str(error)
            self.on_state("error", self.error)
            return
        self.engine = Engine(source, self.settings.dtype, self.settings.device,
                             self.settings.max_gpu_memory_gib, on_state=self._engine_state)
        self.engine.start()

    def _engine_state(self, state: str, message: str) -> None:
        if state == "ready":
            try:
                self.load_text()
            except AssistantError as error:
                state, message = "error", str(error)
        if state == "error":
            self.error = message
        self.on_state(state, message)

    async def wait_ready(self) -> None:
        """Wait (cancellably) until the model is loaded; AssistantError if it cannot be."""
        if self.engine is None and not self.error:
            self.start_engine()
        if self.engine is not None:
            while not self.engine.wait_ready(0):
                await asyncio.sleep(0.05)
        if self.error:
            raise AssistantError(self.error)

    def close(self) -> None:
        if self.engine is not None:
            self.engine.close()

    # --- completions ----------------------------------------------------------------------

    def cursor_at(self, path: Path, text: str, offset: int, language_id: str | None = None) -> Cursor:
        language = language_for(path, language_id)
        return Cursor(
            path=display_path(path, self.root),
            language=language.name if language else (language_id or ""),
            prefix=text[:offset],
            suffix=text[offset:],
        )

    def completion_prompt(self, cursor: Cursor) -> Prompt:
        """The exact prompt for a cursor, within the configured token budget."""
        try:
            return build_completion_prompt(self.load_text(), cursor, self.settings.context_tokens)
        except ValueError as error:
            raise AssistantError(str(error)) from error

    async def complete(self, cursor: Cursor, key: str | None = None) -> Completion:
        """Generate and clean one completion; cancelling the awaiting task stops the model."""
        from osslsp.engine.engine import Request
        from osslsp.engine.generation import Sampling

        await self.wait_ready()
        started = time.perf_counter()
        prompt = self.completion_prompt(cursor)
        text = self.text

        def block_done(ids: list[int]) -> bool:
            raw = text.decode(ids)
            if "```" in final_channel(raw):
                return True
            complete_lines = raw.rpartition("\n")[0]
            if not complete_lines:
                return False
            cleaned = clean_completion(complete_lines + "\n", cursor, prompt.prefill) or ""
            return cleaned.count("\n") < complete_lines.count("\n")

        request = Request(
            prompt_ids=prompt.ids,
            sampling=Sampling(max_new_tokens=self.settings.max_new_tokens,
                              temperature=self.settings.temperature),
            key=key,
            stop_ids=prompt.stop_ids,
            stop_when=block_done,
        )
        generation = self.engine.submit(request, asyncio.get_running_loop())
        ids: list[int] = []
        first_token = None
        try:
            async for token in generation:
                first_token = first_token or time.perf_counter()
                ids.append(token)
        except asyncio.CancelledError:
            generation.cancel()
            raise
        except Exception as error:
            raise AssistantError(str(error)) from error
        raw = text.decode(ids)
        finished = time.perf_counter()
        return Completion(
            text=clean_completion(raw, cursor, prompt.prefill) if generation.finish_reason != "cancelled" else None,
            prompt=prompt,
            raw=raw,
            timings={
                "ttft_ms": round(((first_token or finished) - started) * 1000, 1),
                "total_ms": round((finished - started) * 1000, 1),
                "new_tokens": len(ids),
                "prompt_tokens": len(prompt.ids),
            },
        )
