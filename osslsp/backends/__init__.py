"""Backends: where generation runs. The assistant asks a backend for a stream of text.

`LocalBackend` (local.py) runs the model in this process, on the engine thread; `RemoteBackend`
(remote.py) asks an OpenAI-compatible server, `SharedEngine` (shared.py) being this machine's
`osslsp engine` for the model. Both implement `Backend` (base.py), so prompts, the index, style
checks and post-processing stay in the language server whichever backend generates.
"""

from __future__ import annotations

from collections.abc import Callable

from osslsp.backends.base import Backend, GenerationSettings, TextStream
from osslsp.backends.local import LocalBackend
from osslsp.models import ModelSource
from osslsp.prompts.modeltext import ModelText

__all__ = ["Backend", "GenerationSettings", "LocalBackend", "TextStream", "UnusableBackend", "make_backend"]


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
    from osslsp.backends.remote import Endpoint, RemoteBackend, RemoteError
    from osslsp.backends.shared import SharedEngine
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
