"""Where a batching engine's time goes, when asked (`osslsp engine --trace`): marks along each
request's way (the HTTP handler, the fair queue, the engine thread, back to the handler) and the
host time of each batched step's parts. Off, nothing is recorded: the engine holds no `Trace`
and every probe is one `is None` test.

Read it as a summary (`Trace.summary`, served at `/osslsp/trace`): per phase, the median, the
95th percentile and the mean in milliseconds.
"""

from __future__ import annotations

import threading
import time
from collections import deque

# A request's marks in the order it passes them; a phase is the time between two consecutive ones.
REQUEST_MARKS = ("arrived", "submitted", "admitted", "first_token", "first_received", "first_written",
                 "done", "finished")
# The parts of a step, each timed from the end of the one before (in the engine thread).
STEP_PARTS = ("admit", "build", "prefill", "forward", "sample", "flush")
KEPT = 50_000  # requests and steps kept (the oldest go first)


def _stats(values: list[float]) -> dict[str, float]:
    """Median, 95th percentile, mean and count of values in seconds, as milliseconds."""
    ordered = sorted(values)
    if not ordered:
        return {"n": 0}
    return {"n": len(ordered), "p50_ms": round(ordered[len(ordered) // 2] * 1000, 3),
            "p95_ms": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))] * 1000, 3),
            "mean_ms": round(sum(ordered) / len(ordered) * 1000, 3)}


class StepLaps:
    """One step's parts: `lap(part)` ends a part where the last one ended."""

    def __init__(self, started: float):
        self.last = started
        self.times: dict[str, float] = {}
        self.rows = 0

    def lap(self, part: str) -> None:
        now = time.perf_counter()
        self.times[part] = self.times.get(part, 0.0) + now - self.last
        self.last = now


class Trace:
    """Requests' marks and steps' laps, from any thread; a summary on demand."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: deque[dict[str, float]] = deque(maxlen=KEPT)
        self._steps: deque[StepLaps] = deque(maxlen=KEPT)

    def add_request(self, marks: dict[str, float]) -> None:
        with self._lock:
            self._requests.append(marks)

    def add_step(self, laps: StepLaps) -> None:
        with self._lock:
            self._steps.append(laps)

    def summary(self, reset: bool = False) -> dict:
        """Per request phase (time from one mark to the next it has) and per step part, in ms; steps
        also by their row count. `reset`: start over afterwards."""
        with self._lock:
            requests, steps = list(self._requests), list(self._steps)
            if reset:
                self._requests.clear()
                self._steps.clear()
        phases: dict[str, list[float]] = {}
        for marks in requests:
            present = [name for name in REQUEST_MARKS if name in marks]
            for before, after in zip(present, present[1:]):
                phases.setdefault(f"{before}->{after}", []).append(marks[after] - marks[before])
            if "arrived" in marks and "finished" in marks:
                phases.setdefault("total", []).append(marks["finished"] - marks["arrived"])
        parts = {part: _stats([laps.times.get(part, 0.0) for laps in steps]) for part in STEP_PARTS}
        parts["step"] = _stats([sum(laps.times.values()) for laps in steps])
        by_rows: dict[int, list[float]] = {}
        for laps in steps:
            by_rows.setdefault(laps.rows, []).append(sum(laps.times.values()))
        return {"requests": {phase: _stats(values) for phase, values in phases.items()},
                "steps": parts,
                "step_by_rows": {rows: _stats(values) for rows, values in sorted(by_rows.items())}}
