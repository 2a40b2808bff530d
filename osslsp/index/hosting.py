"""The choices a caller can make for the process that runs an index (see `IndexPolicy`): worker
processes that die with it and yield it the CPU, the collector paused, jobs on daemon threads.

The index never imports this module: its callers do (`osslsp index`, the language server), each
composing the policy that suits its process.
"""

from __future__ import annotations

import ctypes
import functools
import gc
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, ProcessPoolExecutor
from contextlib import contextmanager

WORKERS = max(1, min(2, os.cpu_count() or 1))
PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def worker_context() -> multiprocessing.context.BaseContext:
    """How extraction workers start: forked when this process runs a single thread (at once, with
    the extractor already imported: a spawned worker takes 0.3 s of CPU to get there), spawned
    otherwise (a fork copies locks that other threads hold, and the server's threads)."""
    if sys.platform == "linux" and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def _start_worker(parent: int, niceness: int) -> None:
    """A worker's start: it dies with the process that started it, and yields the CPU to it.

    A worker of a killed index lived on, blocked reading the task queue whose writing end its
    siblings hold open. On Linux the kernel kills it when its parent dies (PR_SET_PDEATHSIG);
    a parent already gone before that took effect is seen by the parent pid having changed.
    """
    if sys.platform == "linux":
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:
            os._exit(0)
    if niceness and hasattr(os, "nice"):
        os.nice(niceness)


def _worker_pool(niceness: int) -> Executor:
    return ProcessPoolExecutor(WORKERS, mp_context=worker_context(), initializer=_start_worker,
                               initargs=(os.getpid(), niceness))


def worker_pool(niceness: int) -> Callable[[], Executor] | None:
    """A `worker_pool` for `IndexPolicy`: one worker per core (two at most), each `niceness`
    steps nicer than this process; None on a single core, where workers would only add work."""
    return functools.partial(_worker_pool, niceness) if WORKERS > 1 else None


@contextmanager
def collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off for a while. A refresh allocates what holds no cycles
    (the workers' rows: tuples of strings and numbers, the ranking's arrays), in such numbers
    that a cold index set off about 300 collections (0.1 s of this process's CPU)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def on_daemon_thread(job: Callable[[], None], name: str) -> None:
    """Run a job on a daemon thread of its own (it never holds the process open at exit)."""
    threading.Thread(target=job, name=name, daemon=True).start()
