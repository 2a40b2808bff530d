"""The local backend: the model in this process, run by the engine thread."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

from osslsp.backends.base import GenerationSettings
from osslsp.models import ModelSource
from osslsp.prompts.healing import FirstTokens, vocabulary_for
from osslsp.prompts.modeltext import ModelText


class LocalTextStream:
    """Token ids from the engine thread, decoded to text deltas on the event loop."""

    def __init__(self, generation, text: ModelText):
        self._generation = generation
        self._text = text
        self._ids: list[int] = []

    @property
    def finish_reason(self) -> str:
        return self._generation.finish_reason

    def cancel(self) -> None:
        self._generation.cancel()

    async def __aiter__(self) -> AsyncIterator[str]:
        shown = ""
        try:
            async for token in self._generation:
                self._ids.append(token)
                decoded = self._text.decode(self._ids)
                if decoded.endswith("\ufffd"):
                    continue  # half a UTF-8 character: wait for the rest
                yield decoded[len(shown):]
                shown = decoded
        except asyncio.CancelledError:
            self.cancel()
            raise


class LocalBackend:
    """The model in this process: loads on the engine thread, serves one request at a time."""

    constrains_tokens = True

    def __init__(self, source: ModelSource, text_loader: Callable[[], ModelText], dtype: str, device: str,
                 max_gpu_memory_gib: float, max_context: int, on_state: Callable[[str, str], None],
                 experts: str = "auto"):
        from osslsp.engine.engine import Engine

        self._text_loader = text_loader
        self._on_state = on_state
        self.engine = Engine(source, dtype, device, max_gpu_memory_gib, max_context, on_state=self._engine_state,
                             experts=experts)
        self.state, self.error = "loading", ""

    def _engine_state(self, state: str, message: str) -> None:
        if state == "ready":
            try:
                vocabulary_for(self._text_loader())  # built here, on the engine thread, not at a keystroke
            except Exception as error:  # no tokenizer: as bad as no model
                state, message = "error", str(error)
        self.state = state
        if state == "error":
            self.error = message
        self._on_state(state, message)

    def start(self) -> None:
        self.engine.start()

    async def wait_ready(self) -> None:
        while not self.engine.loading_done:
            await asyncio.sleep(0.05)

    def stream(self, prompt_text: str, prompt_ids: list[int], stop_ids: frozenset[int],
               settings: GenerationSettings, key: str | None,
               stop_when: Callable[[str], bool] | None) -> LocalTextStream:
        from osslsp.engine.requests import Request

        text = self._text_loader()
        vocabulary = vocabulary_for(text) if settings.first_text else None
        request = Request(
            prompt_ids=prompt_ids,
            sampling=settings,  # the engine reads only its `Sampling` fields
            key=key,
            stop_ids=stop_ids,
            stop_when=(lambda ids: stop_when(text.decode(ids))) if stop_when else None,
            constraint=FirstTokens(vocabulary, settings.first_text).allowed if vocabulary else None,
            interactive=settings.interactive,
            stop_on_repetition=settings.stop_on_repetition,
        )
        return LocalTextStream(self.engine.submit(request, asyncio.get_running_loop()), text)

    def describe(self) -> dict[str, object]:
        return self.engine.loaded.describe() if self.engine.loaded else {}

    def close(self) -> None:
        self.engine.close()

    def join(self) -> None:
        self.engine.join()
