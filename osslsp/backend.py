"""Backends: where generation runs. The assistant asks a backend for a stream of text.

`LocalBackend` runs the model in this process, on the engine thread. A remote backend (an
OpenAI-compatible server) implements the same two methods, so prompts, the index, style checks
and post-processing stay in the language server whichever backend generates.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Protocol

from osslsp.models import ModelSource
from osslsp.prompts.healing import FirstTokens, vocabulary_for
from osslsp.prompts.modeltext import ModelText


@dataclass(frozen=True)
class GenerationSettings:
    """How much and how freely to generate."""

    max_new_tokens: int = 64
    temperature: float = 0.0
    # Token healing: the answer must begin with this text (the prompt was backed up over it).
    # Only backends whose `constrains_tokens` is true are given one.
    first_text: str = ""
    # An inline completion: goes before long jobs, which pause for it (where the backend can).
    interactive: bool = False
    # End early, finish reason "repetition", when the answer loops (where the backend can).
    stop_on_repetition: bool = False


class TextStream(Protocol):
    """Generated text, delivered as it comes; cancel() stops the model at its next step."""

    finish_reason: str

    def cancel(self) -> None: ...

    def __aiter__(self) -> AsyncIterator[str]: ...


class Backend(Protocol):
    """Something that turns a prompt into a stream of text."""

    state: str  # "loading", "ready" or "error"
    error: str
    constrains_tokens: bool  # can hold the first tokens to `GenerationSettings.first_text`

    def start(self) -> None: ...

    async def wait_ready(self) -> None: ...

    def stream(self, prompt_text: str, prompt_ids: list[int], stop_ids: frozenset[int],
               settings: GenerationSettings, key: str | None,
               stop_when: Callable[[str], bool] | None) -> TextStream: ...

    def describe(self) -> dict[str, object]: ...

    def close(self) -> None: ...

    def join(self) -> None:
        """Wait until a closed backend has let go of its resources (its model's memory)."""
        ...


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
        from osslsp.engine.engine import Request
        from osslsp.engine.generation import Sampling

        text = self._text_loader()
        vocabulary = vocabulary_for(text) if settings.first_text else None
        request = Request(
            prompt_ids=prompt_ids,
            sampling=Sampling(max_new_tokens=settings.max_new_tokens, temperature=settings.temperature),
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


class UnusableBackend:
    """A backend that cannot be: a bad `engine` setting. It says why instead of generating."""

    constrains_tokens = False

    def __init__(self, message: str, on_state: Callable[[str, str], None]):
        self.state, self.error = "error", message
        self._on_state = on_state

    def start(self) -> None:
        self._on_state("error", self.error)

    async def wait_ready(self) -> None:
        return None

    def stream(self, prompt_text: str, prompt_ids: list[int], stop_ids: frozenset[int],
               settings: GenerationSettings, key: str | None,
               stop_when: Callable[[str], bool] | None) -> TextStream:
        raise RuntimeError(self.error)

    def describe(self) -> dict[str, object]:
        return {}

    def close(self) -> None:
        return None

    def join(self) -> None:
        return None


def kv_cache_length(settings) -> int:
    """The KV cache's length: the prompt budget and room for an answer (longer answers are clipped
    by the engine to what is left)."""
    return max(8192, settings.context_tokens + 1024)


def make_backend(settings, source: ModelSource, text_loader: Callable[[], ModelText],
                 on_state: Callable[[str, str], None]) -> Backend:
    """The backend the `engine` setting asks for: "local" runs the model in this process; "shared"
    uses this machine's engine for the same model, starting it when none runs; an http(s) URL (or
    unix:PATH) uses that OpenAI-compatible server, with `engine_token` as its bearer token."""
    engine = settings.engine.strip()
    if engine == "local":
        return LocalBackend(source, text_loader, settings.dtype, settings.device,
                            settings.max_gpu_memory_gib, kv_cache_length(settings), on_state, settings.experts)
    from osslsp.remote.client import Endpoint, RemoteBackend, RemoteError, SharedEngine
    from osslsp.remote.places import ListenError

    try:
        if engine == "shared":
            shared = SharedEngine(source, settings.dtype, settings.device, settings.max_gpu_memory_gib,
                                  kv_cache_length(settings))
            return RemoteBackend(Endpoint("http://localhost", shared.socket), source.spec, text_loader,
                                 on_state, shared)
        return RemoteBackend(Endpoint.parse(engine, settings.engine_token), source.spec, text_loader, on_state)
    except (RemoteError, ListenError) as error:
        return UnusableBackend(str(error), on_state)
