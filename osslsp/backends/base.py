"""What every backend is: a stream of text for a prompt, and the settings of one generation."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Protocol

from osslsp.sampling import Sampling


@dataclass(frozen=True)
class GenerationSettings(Sampling):
    """How much and how freely to generate (`Sampling`), and what the backend does around it.

    The local engine takes every `Sampling` field; a remote server is sent the budget and the
    temperature (its own defaults for the rest: the language server sets neither)."""

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
