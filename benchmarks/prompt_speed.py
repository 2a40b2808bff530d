"""How long the completion prompt takes to build (issue 23: p95 <= 8 ms for a 2,048-token budget).

Run: python benchmarks/prompt_speed.py [--model openai/gpt-oss-20b] [--budget 2048] [--json FILE]
With gpt-oss-20b not on disk, its real tokenizer is built from the o200k_base ranks. The workspace
is this repository, indexed first, so retrieval from the index is part of every prompt.

Three ways a prompt is asked for, at the same cursors (6 per file, seeded, in real files):
- open: the first prompt in a file (a version of it no prompt was built from: nothing is kept);
- jump: the cursor lands on another line of a file already seen, at a new version;
- keystroke: at each cursor the rest of the line is deleted and typed back one character at a
  time, a new document version per key, as an editor asks while the user types.
Reported: milliseconds p50/p95/max of `Assistant.completion_prompt`, wall and CPU (the machine is
shared: CPU time is what other load cannot inflate), and the wall time of its retrieval part.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FILES = ["osslsp/assistant.py", "osslsp/server.py", "osslsp/index/retrieval.py", "osslsp/cli/__init__.py",
         "osslsp/engine/engine.py", "osslsp/features/inline_completion.py",
         "editors/vscode/src/extension.ts"]
CURSORS_PER_FILE = 6
MAX_TYPED = 24  # characters retyped per cursor in the keystroke scenario
SCENARIOS = ("open", "jump", "keystroke")


def cursors(files: list[str], per_file: int, seed: int) -> list[tuple[Path, int, int]]:
    """(file, line index, column) on non-blank lines, the column inside the line's code."""
    rng = random.Random(seed)
    chosen = []
    for name in files:
        lines = (REPO / name).read_text().split("\n")
        code = [i for i, line in enumerate(lines) if len(line.strip()) >= 8]
        for index in sorted(rng.sample(code, per_file)):
            line = lines[index]
            indent = len(line) - len(line.lstrip())
            chosen.append((REPO / name, index, rng.randint(indent + 1, len(line))))
    return chosen


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {"n": len(ordered), "p50": round(statistics.median(ordered), 2),
            "p95": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 2),
            "max": round(ordered[-1], 2), "mean": round(statistics.fmean(ordered), 2)}


class Timed:
    """Wall time of each call to one method of an object, kept in a list."""

    def __init__(self, owner: object, name: str):
        self.times: list[float] = []
        method = getattr(owner, name)

        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                self.times.append((time.perf_counter() - started) * 1000)

        setattr(owner, name, timed)


def prompt_ms(assistant, path: Path, text: str, offset: int) -> tuple[float, float]:
    """Wall and CPU milliseconds of one prompt (CPU time is what other load cannot inflate)."""
    cursor = assistant.cursor_at(path, text, offset)
    wall, cpu = time.perf_counter(), time.thread_time()
    assistant.completion_prompt(cursor)
    return (time.perf_counter() - wall) * 1000, (time.thread_time() - cpu) * 1000


def requests(chosen: list[tuple[Path, int, int]]) -> Iterator[tuple[str, Path, str, int]]:
    """(scenario, file, document text, cursor offset) of each prompt asked for."""
    seen: set[Path] = set()
    for path, index, column in chosen:
        lines = path.read_text().split("\n")
        line_start = sum(len(line) + 1 for line in lines[:index])
        # The file as another version (a comment appended): no prompt of it was built yet.
        version = "\n".join(lines) + f"\n# version {time.perf_counter_ns()}\n"
        yield ("jump" if path in seen else "open"), path, version, line_start + column
        seen.add(path)
    for path, index, column in chosen:
        lines = path.read_text().split("\n")
        line_start = sum(len(line) + 1 for line in lines[:index])
        line = lines[index]
        for typed in range(max(column - MAX_TYPED, len(line) - len(line.lstrip())), column + 1):
            yield "keystroke", path, "\n".join(lines[:index] + [line[:typed]] + lines[index + 1:]), line_start + typed


def run(assistant, chosen: list[tuple[Path, int, int]], samples: dict[str, dict[str, list[float]]]) -> None:
    """Every scenario at every cursor, adding the times to `samples[scenario]`."""
    for scenario, path, text, offset in requests(chosen):
        retrieval = Timed(assistant, "context_for")
        wall, cpu = prompt_ms(assistant, path, text, offset)
        samples[scenario]["prompt_ms"].append(wall)
        samples[scenario]["prompt_cpu_ms"].append(cpu)
        samples[scenario]["retrieval_ms"] += retrieval.times
        del assistant.context_for  # back to the class's method


def main() -> int:
    arguments = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    arguments.add_argument("--model", default="openai/gpt-oss-20b")
    arguments.add_argument("--budget", type=int, default=2048)
    arguments.add_argument("--seed", type=int, default=23)
    arguments.add_argument("--json", type=Path, help="also write the results here")
    options = arguments.parse_args()

    from osslsp.assistant import Assistant
    from osslsp.models import offline
    from osslsp.settings import Settings

    offline()
    assistant = Assistant(Settings(model=options.model, context_tokens=options.budget), REPO)
    text = assistant.load_text()
    assistant.index.refresh()
    chosen = cursors(FILES, CURSORS_PER_FILE, options.seed)
    warm_up = REPO / "osslsp" / "paths.py"  # the index's first use, in a file not measured
    prompt_ms(assistant, warm_up, warm_up.read_text(), 0)
    samples = {scenario: {"prompt_ms": [], "prompt_cpu_ms": [], "retrieval_ms": []} for scenario in SCENARIOS}
    run(assistant, chosen, samples)
    results = {scenario: {part: percentiles(times) for part, times in parts.items()}
               for scenario, parts in samples.items()}
    report = {
        "date": date.today().isoformat(), "machine": f"{platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}", "python": sys.version.split()[0],
        "model": options.model, "tokenizer_harmony": text.is_harmony, "budget": options.budget,
        "cursors": len(chosen), "results": results,
    }
    print(json.dumps(report, indent=1))
    if options.json:
        options.json.write_text(json.dumps(report, indent=1) + "\n")
    assistant.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
