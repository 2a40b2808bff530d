"""The process an index runs in is its caller's: the index starts workers, threads or pauses the
collector only as the caller's `IndexPolicy` says."""

from __future__ import annotations

import gc
import multiprocessing
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from osslsp.index import IndexPolicy, WorkspaceIndex
from osslsp.index.refresh import PARALLEL_MIN_FILES, WRITE_FILES
from osslsp.index.store import CHECKPOINT_EVERY_WRITES

FILES = max(PARALLEL_MIN_FILES, WRITE_FILES) + 1  # enough for workers and deferred merges


def _workspace(root: Path) -> Path:
    root.mkdir()
    for number in range(FILES):
        (root / f"module_{number}.py").write_text(
            f"def scaled_{number}(value):\n    return value * {number}\n")
    return root


def test_by_default_a_refresh_runs_on_the_calling_thread_alone(tmp_path: Path) -> None:
    index = WorkspaceIndex(_workspace(tmp_path / "ws"), cache_dir=tmp_path / "cache")
    threads_before = set(threading.enumerate())
    seen: list[tuple[set[threading.Thread], list, bool]] = []

    def progress(done: int, total: int, path: str) -> None:
        seen.append((set(threading.enumerate()) - threads_before,
                     multiprocessing.active_children(), gc.isenabled()))

    assert index.refresh(progress).changed == FILES
    index.close()
    assert seen and all(seen_now == (set(), [], True) for seen_now in seen)


def test_the_policy_decides_where_extraction_and_maintenance_run(tmp_path: Path) -> None:
    jobs: list[str] = []
    pools: list[Executor] = []
    refreshing: list[str] = []
    changes: list[int] = []

    def run_aside(job: Callable[[], None], name: str) -> None:
        jobs.append(name)
        job()

    def worker_pool() -> Executor:
        pools.append(ThreadPoolExecutor(2))
        return pools[-1]

    @contextmanager
    def during_refresh() -> Iterator[None]:
        refreshing.append("start")
        yield
        refreshing.append("end")

    root = _workspace(tmp_path / "ws")
    policy = IndexPolicy(worker_pool=worker_pool, run_aside=run_aside,
                         during_refresh=during_refresh, after_change=lambda: changes.append(1))
    index = WorkspaceIndex(root, cache_dir=tmp_path / "cache", policy=policy)
    assert index.refresh().changed == FILES
    assert len(pools) == 1 and "osslsp-index-merge" in jobs
    assert refreshing == ["start", "end"] and changes == [1]
    assert index.refresh().changed == 0 and changes == [1]  # nothing changed: nothing frozen
    for number in range(CHECKPOINT_EVERY_WRITES):
        index.set_buffer(root / "module_0.py", f"def edited_{number}():\n    return 1\n")
    assert "osslsp-index-checkpoint" in jobs
    assert [d.name for d in index.definitions_named(f"edited_{number}")] == [f"edited_{number}"]
    index.close()
