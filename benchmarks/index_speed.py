"""Speed of the workspace index on CPython's standard library, next to universal-ctags.

Copies this interpreter's lib/python3.x (without site-packages) to a scratch workspace, then in
one run: `ctags -R` on it and a cold index, taking turns (five cold runs by default, each between
two ctags runs), a warm start, re-indexing one edited file, retrieval for many cursors, and the
peak resident memory. Targets (2 cores): cold <= 2.5x ctags' wall time, warm start <= 0.3 s,
one edited file <= 20 ms, retrieval p95 <= 10 ms, memory <= 300 MB.

The index runs under the language server's policy (workers, checkpoints and merges aside, the
collector paused); `--whole` parses Python functions whole instead of folding them.

    python benchmarks/index_speed.py [--cursors 300] [--repeats 5] [--whole]
"""

from __future__ import annotations

import argparse
import random
import resource
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

from osslsp.features.workspace_index import SERVER_POLICY
from osslsp.index import WorkspaceIndex

CTAGS = "/usr/bin/ctags"


def copy_stdlib(destination: Path) -> Path:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    shutil.copytree(stdlib, destination, symlinks=True,
                    ignore=shutil.ignore_patterns("site-packages", "__pycache__"))
    return destination


def timed(function, *arguments):
    started = time.perf_counter()
    result = function(*arguments)
    return time.perf_counter() - started, result


def cpu_seconds() -> float:
    """User and system time of this process and its finished children so far."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def count_tokens(text: str) -> int:
    return max(1, len(text) // 4)


def main() -> int:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--cursors", type=int, default=300)
    options.add_argument("--repeats", type=int, default=5, help="cold runs (and ctags runs)")
    options.add_argument("--whole", action="store_true", help="parse Python functions whole")
    arguments = options.parse_args()
    settings = {"policy": SERVER_POLICY, "fold_python": not arguments.whole}
    with tempfile.TemporaryDirectory() as scratch:
        root = copy_stdlib(Path(scratch) / "stdlib")
        # ctags and the cold index take turns, ctags first and last: each cold run is compared
        # with the mean of the ctags runs on either side of it (on a shared machine the speed
        # of a core drifts within seconds), and the ratio is the median of those.
        ctags_runs, cold_runs, usable_runs, ctags_cpus, cold_cpus = [], [], [], [], []
        for repeat in range(arguments.repeats + 1):
            cpu_before = cpu_seconds()
            ctags_runs.append(timed(subprocess.run, [CTAGS, "-R", "-f",
                                                     str(Path(scratch) / "tags"), str(root)])[0])
            ctags_cpus.append(cpu_seconds() - cpu_before)
            if repeat == arguments.repeats:
                break
            cache = Path(scratch) / f"cache{repeat}"
            index = WorkspaceIndex(root, cache_dir=cache, **settings)
            cpu_before = cpu_seconds()
            seconds, stats = timed(index.refresh)
            cold_runs.append(seconds)
            usable_runs.append(stats.usable_seconds)
            cold_cpus.append(cpu_seconds() - cpu_before)
            index.close()
        ctags_seconds, cold_seconds = statistics.median(ctags_runs), statistics.median(cold_runs)
        usable_seconds = statistics.median(usable_runs)
        ctags_cpu, cold_cpu = statistics.median(ctags_cpus), statistics.median(cold_cpus)
        warm_seconds, _ = timed(lambda: WorkspaceIndex(root, cache_dir=cache, **settings).refresh())
        index = WorkspaceIndex(root, cache_dir=cache, **settings)
        edited = root / "json" / "decoder.py"
        text = edited.read_text()
        edit_times = []
        for number in range(20):
            edit_times.append(timed(index.set_buffer, edited, text + f"\nEDIT_{number} = 1\n")[0])
        rng = random.Random(3)
        files = sorted(root.rglob("*.py"))
        cursor_times = []
        for path in rng.sample(files, min(arguments.cursors, len(files))):
            source = path.read_text(errors="replace")
            calls = [position + 1 for position, char in enumerate(source) if char == "("]
            if not calls:
                continue
            offset = rng.choice(calls)
            cursor_times.append(timed(index.context_for, path, source, offset, 1024,
                                      count_tokens)[0])
        index.close()
    cursor_times.sort()
    p95 = cursor_times[int(0.95 * (len(cursor_times) - 1))]
    peak_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    peak_workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"workspace: {stats.files} files, {stats.definitions} definitions, {stats.languages}")
    print(f"ctags -R wall:      {ctags_seconds:6.2f} s  (median of "
          f"{', '.join(f'{seconds:.2f}' for seconds in ctags_runs)})")
    print(f"cold index usable:  {usable_seconds:6.2f} s  = "
          f"{usable_seconds / ctags_seconds:.2f}x ctags (all but test directories searchable)")
    ratios = [2 * cold / (before + after)
              for cold, before, after in zip(cold_runs, ctags_runs, ctags_runs[1:])]
    print(f"cold index complete:{cold_seconds:6.2f} s  (median of "
          f"{', '.join(f'{seconds:.2f}' for seconds in cold_runs)})")
    print(f"complete / ctags:   {statistics.median(ratios):.2f}x (target <= 2.5x; median of each "
          "cold run's ratio to the ctags runs around it: "
          f"{', '.join(f'{ratio:.2f}' for ratio in ratios)})")
    print(f"CPU time:           ctags {ctags_cpu:.2f} s, cold index {cold_cpu:.2f} s "
          f"(2 workers: {cold_cpu / 2 / ctags_cpu:.2f}x ctags if the 2 cores were free)")
    print(f"warm start:         {warm_seconds:6.3f} s (target <= 0.3 s)")
    print(f"one edited file:    median {1000 * statistics.median(edit_times):.1f} ms, "
          f"max {1000 * max(edit_times):.1f} ms (target <= 20 ms)")
    print(f"retrieval/cursor:   p50 {1000 * statistics.median(cursor_times):.1f} ms, "
          f"p95 {1000 * p95:.1f} ms over {len(cursor_times)} cursors (target <= 10 ms)")
    print(f"peak RSS:           {peak_self:.0f} MB this process, {peak_workers:.0f} MB largest "
          "worker (target <= 300 MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
