"""Round-robin across clients in front of the engine, bounded.

Each client's requests wait in that client's own line. Whenever the engine has room (one request
at a time, or a free place in its running batch), the next line in turn hands over its oldest
request, and that client goes to the back of the turn order. A window that fires ten requests
therefore delays another window's one request by at most one turn. Past `max_waiting` requests
waiting, a new one is refused (the server answers 429 with Retry-After) instead of the queue
growing without bound.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from osslsp.engine.engine import Engine
from osslsp.engine.requests import Generation, Request

# Requests that may wait by default: this many for each place in the engine's batch, and at least
# MIN_WAITING (an engine that serves one at a time still queues a team's windows).
WAITING_PER_BATCH_ROW = 8
MIN_WAITING = 64


class QueueFull(Exception):
    """Too many requests wait already; `retry_after` estimates seconds until there is room."""

    def __init__(self, waiting: int, retry_after: int):
        super().__init__(f"the engine is busy: {waiting} requests are waiting; retry in {retry_after} s")
        self.retry_after = retry_after


@dataclass
class _Waiting:
    request: Request
    started: asyncio.Future


class FairQueue:
    """Requests wait here, one line per client, until the engine has room for them."""

    def __init__(self, engine: Engine, seconds_per_request: Callable[[], float] = lambda: 1.0,
                 max_waiting: int = 0):
        self._engine = engine
        self._max_waiting = max_waiting  # 0: the default for the engine's batch
        self._seconds_per_request = seconds_per_request  # recent mean, for Retry-After
        self._lines: OrderedDict[str, deque[_Waiting]] = OrderedDict()
        self._running: list[Generation] = []
        self._finished_seen: dict[int, float] = {}  # id of a running one -> when first seen finished
        self._served_last = ""

    @property
    def capacity(self) -> int:
        """Requests the engine takes at once (known once the model is loaded)."""
        return max(1, self._engine.max_batch)

    @property
    def max_waiting(self) -> int:
        """Requests that may wait; past them a new one is refused."""
        return self._max_waiting or max(MIN_WAITING, WAITING_PER_BATCH_ROW * self.capacity)

    @property
    def waiting(self) -> int:
        return sum(len(line) for line in self._lines.values())

    @property
    def running(self) -> int:
        return len(self._running)

    @property
    def depth(self) -> int:
        """Requests waiting or generating."""
        return self.waiting + self.running

    def stalled_for(self) -> float:
        """Seconds since a finished generation was first seen (by this call) still holding its place
        (0: none). A place outlives its generation only while the answer's last bytes are written,
        so a long hold means a broken queue: /health says so."""
        now = time.monotonic()
        finished = {id(generation) for generation in self._running if generation.finish_reason}
        self._finished_seen = {key: self._finished_seen.get(key, now) for key in finished}
        return max((now - seen for seen in self._finished_seen.values()), default=0.0)

    @asynccontextmanager
    async def turn(self, client: str, request: Request) -> AsyncIterator[Generation]:
        """Wait for this client's turn, then generate; leaving the block stops the generation.
        QueueFull when too many wait already.

        Whatever ends the wait or the block (its client leaving included), the `finally` either
        withdraws the request or releases its place, so the next request always gets one.
        """
        waiting_now = self.waiting
        if waiting_now >= self.max_waiting:
            turns = waiting_now / self.capacity + 1
            raise QueueFull(waiting_now, max(1, round(turns * self._seconds_per_request())))
        waiting = _Waiting(request, asyncio.get_running_loop().create_future())
        self._lines.setdefault(client, deque()).append(waiting)
        self._dispatch()
        try:
            yield await waiting.started
        finally:
            started = waiting.started
            if started.done() and not started.cancelled():
                self._finish(started.result())  # also when its turn came as its client left
            else:
                started.cancel()
                self._withdraw(client, waiting)

    def _withdraw(self, client: str, waiting: _Waiting) -> None:
        line = self._lines.get(client)
        if line is not None and waiting in line:
            line.remove(waiting)
            if not line:
                del self._lines[client]

    def _finish(self, generation: Generation) -> None:
        generation.cancel()  # nothing when it has finished; otherwise it stops at the next step
        for index, running in enumerate(self._running):
            if running is generation:
                del self._running[index]
                self._dispatch()
                return

    def _next_waiting(self, background: bool) -> _Waiting | None:
        """The oldest request of the first client in turn whose oldest request may start now
        (a background one only when `background`); requests already abandoned (their future
        cancelled by a disconnect whose handler has not run yet) are dropped on the way."""
        if self._served_last in self._lines and len(self._lines) > 1:
            self._lines.move_to_end(self._served_last)  # it had the last turn; whoever waits goes first
        for client in list(self._lines):
            line = self._lines[client]
            while line and line[0].started.done():
                line.popleft()
            picked = line.popleft() if line and (background or line[0].request.interactive) else None
            if not line:
                del self._lines[client]
            elif picked is not None:
                self._lines.move_to_end(client)
            if picked is not None:
                self._served_last = client
                return picked
        return None

    def _dispatch(self) -> None:
        """Start waiting requests while the engine has room; background ones (long answers) only
        up to the engine's share for them, so that inline completions always find a place."""
        while len(self._running) < self.capacity:
            background = sum(not g.request.interactive for g in self._running) < self._engine.background_limit
            waiting = self._next_waiting(background)
            if waiting is None:
                return
            generation = self._engine.submit(waiting.request, waiting.started.get_loop())
            self._running.append(generation)
            waiting.started.set_result(generation)
