"""What the process running an index lets the index do with it: worker processes, threads, the
garbage collector. The caller that starts an index chooses (the server, `osslsp index`); the
index itself touches none of these, and by default runs everything on the thread calling it."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass


def _nothing() -> None:
    """The default of `IndexPolicy.after_change`."""


@dataclass(frozen=True)
class IndexPolicy:
    """The caller's choices for an index; the defaults leave the process as it is."""

    # Starts the worker processes a large refresh extracts files in; None: extracted on the
    # refreshing thread.
    worker_pool: Callable[[], Executor] | None = None
    # Runs a maintenance job apart from the writes (a checkpoint once writes pause, the merge of
    # the bodies' index while files are ranked), named for thread listings; None: SQLite
    # checkpoints inside the writes, and merges run where they are due.
    run_aside: Callable[[Callable[[], None], str], None] | None = None
    # Around a whole refresh, which allocates rows by the hundred thousand (the collector paused).
    during_refresh: Callable[[], AbstractContextManager[object]] = nullcontext
    # After a refresh that changed the index (what the process holds frozen for the collector).
    after_change: Callable[[], None] = _nothing
