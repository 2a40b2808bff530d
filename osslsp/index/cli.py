"""`osslsp index [ROOT] [--stats]`: build or refresh a workspace's index from the shell."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

from osslsp.index.hosting import collector_paused, on_daemon_thread, worker_pool
from osslsp.index.policy import IndexPolicy
from osslsp.index.workspace import IndexStats, WorkspaceIndex

BAR_WIDTH = 30
# The command has the process to itself: workers at its priority, checkpoints and merges on
# threads of their own, the collector paused while rows are made by the hundred thousand.
COMMAND_LINE_POLICY = IndexPolicy(worker_pool=worker_pool(niceness=0), run_aside=on_daemon_thread,
                                  during_refresh=collector_paused)


def _progress_bar(done: int, total: int, path: str) -> None:
    filled = BAR_WIDTH * done // max(total, 1)
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {done}/{total} "
                     f"{path[-40:]:<40}")
    sys.stderr.flush()


def _summary(stats: IndexStats, seconds: float) -> str:
    languages = ", ".join(f"{name} {count}" for name, count in sorted(stats.languages.items()))
    return (f"files: {stats.files}\ndefinitions: {stats.definitions}\n"
            f"languages: {languages or 'none'}\ntime: {seconds:.2f} s\nindex: {stats.db_path}")


def index_main(root: Path, stats_only: bool) -> int:
    """Refresh (or only describe, with stats_only) the index of root; the process's exit code."""
    root = Path(root)
    if not root.is_dir():
        print(f"osslsp index: {root} is not a directory", file=sys.stderr)
        return 2
    started = time.perf_counter()
    index = WorkspaceIndex(root, policy=COMMAND_LINE_POLICY)
    cancel = threading.Event()
    try:
        if stats_only:
            stats = index.stats()
        else:
            stats = index.refresh(progress=_progress_bar, cancel=cancel)
            sys.stderr.write("\n")
    except KeyboardInterrupt:
        cancel.set()
        print("osslsp index: interrupted; what was indexed is kept", file=sys.stderr)
        return 130
    finally:
        index.close()
    print(_summary(stats, time.perf_counter() - started if not stats_only else stats.seconds))
    return 0
