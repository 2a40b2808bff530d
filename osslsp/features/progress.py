"""`$/progress` for the server's long jobs, created the way pygls 2.1 survives."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar

from lsprotocol import types

from osslsp.server import OsslspServer

T = TypeVar("T")


class Progress:
    """A `$/progress` for one job (loading, indexing, an action); a no-op for clients without
    work-done progress. The user's cancel from the client runs the callbacks given to `on_cancel`."""

    def __init__(self, ls: OsslspServer, title: str, cancellable: bool = True):
        self.ls, self.title, self.cancellable = ls, title, cancellable
        self.token: str | None = None
        self.cancelled = False

    async def begin(self) -> None:
        window = self.ls.client_capabilities.window
        if not (window and window.work_done_progress):
            return
        token = f"osslsp-{uuid.uuid4()}"
        try:  # shielded: pygls 2.1 crashes when a task is cancelled while it awaits a client request
            await asyncio.shield(self.ls.work_done_progress.create_async(token))
        except Exception:
            return
        self.token = token
        self.ls.work_done_progress.begin(token, types.WorkDoneProgressBegin(
            title=self.title, cancellable=self.cancellable, percentage=0 if self.cancellable else None))

    def report(self, message: str, percentage: int | None = None) -> None:
        if self.token is not None:
            self.ls.work_done_progress.report(self.token, types.WorkDoneProgressReport(
                message=message, percentage=percentage))

    def end(self, message: str) -> None:
        if self.token is not None:
            self.ls.work_done_progress.end(self.token, types.WorkDoneProgressEnd(message=message))
            self.token = None

    def on_cancel(self, callback: Callable[[], None]) -> None:
        """Call `callback` (on the event loop) when the user cancels from the progress."""
        future = self.ls.work_done_progress.tokens.get(self.token) if self.token else None
        if future is not None:  # pygls cancels it at window/workDoneProgress/cancel

            def cancelled(_) -> None:
                self.cancelled = True
                callback()

            future.add_done_callback(cancelled)

    async def run(self, work: Awaitable[T]) -> T:
        """Await work that the user can cancel from the progress (CancelledError, `cancelled` set)."""
        task = asyncio.ensure_future(work)
        self.on_cancel(task.cancel)
        return await task
