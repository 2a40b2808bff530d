"""What the engine is asked (`Request`), the answer in flight (`Generation`: tokens streamed back
to a thread or an event loop), and the generations waiting for the engine thread (`Waiting`)."""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field

from osslsp.engine.generation import Constraint
from osslsp.sampling import Sampling


@dataclass(frozen=True)
class Request:
    """What to generate. `key` groups requests that supersede each other (one per document)."""

    prompt_ids: list[int]
    sampling: Sampling = Sampling()
    key: str | None = None
    stop_ids: frozenset[int] = frozenset()
    # Called with the ids generated so far after each token; True ends the generation.
    stop_when: Callable[[list[int]], bool] | None = None
    # Limits the ids sampled at each step given those produced (token healing); None: free.
    constraint: Constraint | None = None
    # An inline completion: served before long jobs, which pause for it between two steps.
    interactive: bool = False
    # End early when the answer loops over the same run of tokens (prose, not code completions).
    stop_on_repetition: bool = False
    # Whose cached prefix this request would reuse in a batching engine (a client, a document);
    # None: `key`. Unlike `key`, a newer request with the same cache key cancels nothing.
    cache_key: str | None = None
    # Generate past the model's end-of-text tokens (fixed-length answers for load tests); the
    # request's own stop_ids still end it.
    ignore_eos: bool = False

    def stops(self, model_stop_ids: frozenset[int]) -> frozenset[int]:
        """The tokens that end this generation, given the model's end-of-text tokens."""
        return self.stop_ids if self.ignore_eos else model_stop_ids | self.stop_ids


@dataclass
class Generation:
    """A request in flight: iterate it for token ids (sync or async); cancel it from anywhere."""

    request: Request
    loop: asyncio.AbstractEventLoop | None = None
    cancelled: threading.Event = field(default_factory=threading.Event)
    finish_reason: str = ""  # "stop", "length", "repetition", "cancelled" or "error"
    # Its way through the engine (tracing.REQUEST_MARKS: name -> perf_counter time) when traced.
    marks: dict[str, float] | None = None

    def __post_init__(self) -> None:
        self._events: queue.SimpleQueue | asyncio.Queue = (
            asyncio.Queue() if self.loop else queue.SimpleQueue()
        )

    def cancel(self) -> None:
        self.cancelled.set()

    def mark(self, name: str, at: float | None = None) -> None:
        """When traced, note the first time it passed `name` (tracing.REQUEST_MARKS): `at`, or now."""
        if self.marks is not None and name not in self.marks:
            self.marks[name] = time.perf_counter() if at is None else at

    def _emit(self, kind: str, value: object) -> None:
        if self.loop:
            self.loop.call_soon_threadsafe(self._events.put_nowait, (kind, value))
        else:
            self._events.put((kind, value))

    @staticmethod
    def _token(event: tuple[str, object]) -> int | None:
        """The token an event carries; None at the end; the engine's error raised here."""
        kind, value = event
        if kind == "error":
            raise value
        return value if kind == "token" else None

    def __iter__(self) -> Iterator[int]:
        while (token := self._token(self._events.get())) is not None:
            yield token

    async def __aiter__(self) -> AsyncIterator[int]:
        while (token := self._token(await self._events.get())) is not None:
            yield token


def deliver(events: list[tuple[Generation, str, object]]) -> None:
    """Hand generations their events (in order) with one wake-up per event loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[Generation, tuple[str, object]]]] = {}
    for generation, kind, value in events:
        if generation.loop is None:
            generation._emit(kind, value)
        else:
            by_loop.setdefault(generation.loop, []).append((generation, (kind, value)))
    for loop, items in by_loop.items():
        loop.call_soon_threadsafe(_put_all, items)


def _put_all(items: list[tuple[Generation, tuple[str, object]]]) -> None:
    for generation, event in items:
        generation._events.put_nowait(event)


class Waiting:
    """Generations waiting for the engine thread: interactive ones first, each kind in order."""

    def __init__(self) -> None:
        self._ready = threading.Condition()
        self._interactive: deque[Generation] = deque()
        self._background: deque[Generation] = deque()
        self._closed = False

    def put(self, generation: Generation) -> None:
        with self._ready:
            (self._interactive if generation.request.interactive else self._background).append(generation)
            self._ready.notify()

    def close(self) -> None:
        """No more generations: `get` returns None once those waiting are taken."""
        with self._ready:
            self._closed = True
            self._ready.notify()

    def get(self) -> Generation | None:
        """The next generation (blocking), or None after close when none is left."""
        with self._ready:
            while not (self._interactive or self._background or self._closed):
                self._ready.wait()
            first = self._interactive or self._background
            return first.popleft() if first else None

    def interactive_nowait(self) -> Generation | None:
        """An interactive generation waiting now, if any."""
        with self._ready:
            return self._interactive.popleft() if self._interactive else None

    def get_nowait(self, background: bool) -> Generation | None:
        """The next generation waiting now (a background one only when `background`), if any."""
        with self._ready:
            if self._interactive:
                return self._interactive.popleft()
            return self._background.popleft() if background and self._background else None

    def __len__(self) -> int:
        with self._ready:
            return len(self._interactive) + len(self._background)
