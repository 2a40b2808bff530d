"""Prometheus text exposition (format 0.0.4) for the engine, without a client library.

Only what the engine reports: counters, gauges and fixed-bucket histograms, each with optional
labels. Rendering is cheap enough to run on every scrape.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable

Labels = tuple[tuple[str, str], ...]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _label_text(labels: Labels) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{name}="{_escape(value)}"' for name, value in labels) + "}"


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


class Metric:
    """One metric family: a name, help text and type; subclasses hold the samples."""

    kind = "untyped"

    def __init__(self, name: str, help_text: str):
        self.name, self.help_text = name, help_text

    def samples(self) -> Iterable[tuple[str, Labels, float]]:
        raise NotImplementedError

    def render(self) -> str:
        lines = [f"# HELP {self.name} {self.help_text}", f"# TYPE {self.name} {self.kind}"]
        lines += [f"{name}{_label_text(labels)} {_number(value)}" for name, labels, value in self.samples()]
        return "\n".join(lines) + "\n"


class Counter(Metric):
    """A count that only goes up, one per label set."""

    kind = "counter"

    def __init__(self, name: str, help_text: str):
        super().__init__(name, help_text)
        self.values: dict[Labels, float] = {}

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        self.values[key] = self.values.get(key, 0.0) + amount

    def samples(self) -> Iterable[tuple[str, Labels, float]]:
        return [(self.name, labels, value) for labels, value in sorted(self.values.items())]


class Gauge(Metric):
    """A value read when scraped (queue depth, GPU memory), or set by the engine."""

    kind = "gauge"

    def __init__(self, name: str, help_text: str,
                 read: Callable[[], dict[Labels, float]] | None = None):
        super().__init__(name, help_text)
        self.values: dict[Labels, float] = {}
        self._read = read

    def set(self, value: float, **labels: str) -> None:
        self.values[tuple(sorted(labels.items()))] = value

    def samples(self) -> Iterable[tuple[str, Labels, float]]:
        values = self._read() if self._read else self.values
        return [(self.name, labels, value) for labels, value in sorted(values.items())]


class Histogram(Metric):
    """Observations counted into cumulative buckets (upper bounds in seconds)."""

    kind = "histogram"

    def __init__(self, name: str, help_text: str, buckets: tuple[float, ...]):
        super().__init__(name, help_text)
        self.bounds = tuple(sorted(buckets)) + (math.inf,)
        self.counts = [0] * len(self.bounds)
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.total += value
        for index, bound in enumerate(self.bounds):
            if value <= bound:
                self.counts[index] += 1
                break

    def samples(self) -> Iterable[tuple[str, Labels, float]]:
        cumulative = 0
        for bound, count in zip(self.bounds, self.counts):
            cumulative += count
            yield f"{self.name}_bucket", (("le", _number(bound)),), cumulative
        yield f"{self.name}_sum", (), self.total
        yield f"{self.name}_count", (), cumulative


LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


def gpu_memory_bytes() -> dict[Labels, float]:
    """Memory the engine holds on each CUDA device (nothing on a machine without CUDA)."""
    from osslsp.engine.devices import allocated_bytes

    return {(("device", f"cuda:{index}"),): float(held) for index, held in allocated_bytes().items()}


class Throughput:
    """Tokens generated over the last `window` seconds."""

    def __init__(self, window: float = 10.0):
        self.window = window
        self._tokens: deque[float] = deque()  # when each token came
        self._lock = threading.Lock()

    def add(self) -> None:
        with self._lock:
            self._tokens.append(time.monotonic())

    def per_second(self) -> float:
        with self._lock:
            since = time.monotonic() - self.window
            while self._tokens and self._tokens[0] < since:
                self._tokens.popleft()
            return len(self._tokens) / self.window


class EngineMetrics:
    """Everything `/metrics` shows about one engine. `engine` has `running` and `max_batch`;
    `queue()` is the server's queue (`waiting`, `depth`)."""

    def __init__(self, engine, queue: Callable, clients: Callable[[], int]):
        self.requests = Counter("osslsp_requests_total", "Generation requests by endpoint and how they ended.")
        self.prompt_tokens = Counter("osslsp_prompt_tokens_total", "Prompt tokens processed.")
        self.generated_tokens = Counter("osslsp_generation_tokens_total", "Tokens generated.")
        self.ttft = Histogram("osslsp_time_to_first_token_seconds",
                              "From a request's arrival to its first generated token.", LATENCY_BUCKETS)
        self.latency = Histogram("osslsp_request_latency_seconds",
                                 "From a request's arrival to its last generated token.", LATENCY_BUCKETS)
        self.tokens_per_second = Gauge("osslsp_decode_tokens_per_second",
                                       "Decode speed of the last finished request (tokens after the first).")
        self.throughput = Throughput()
        self.families: list[Metric] = [
            self.requests,
            Gauge("osslsp_queue_depth", "Requests waiting or generating.",
                  lambda: {(): float(queue().depth)}),
            Gauge("osslsp_queue_waiting", "Requests waiting for a place in the engine.",
                  lambda: {(): float(queue().waiting)}),
            Gauge("osslsp_batch_size", "Generations in the engine's running batch.",
                  lambda: {(): float(engine.running)}),
            Gauge("osslsp_batch_capacity", "Generations the engine runs at once (osslsp engine --max-batch).",
                  lambda: {(): float(engine.max_batch)}),
            Gauge("osslsp_generation_tokens_per_second", "Tokens generated per second, all requests, "
                  f"over the last {self.throughput.window:.0f} s.", lambda: {(): self.throughput.per_second()}),
            Gauge("osslsp_attached_clients", "Language servers attached to this engine.",
                  lambda: {(): float(clients())}),
            self.ttft, self.latency, self.prompt_tokens, self.generated_tokens, self.tokens_per_second,
            Gauge("osslsp_gpu_memory_bytes", "Memory allocated by the engine on each GPU.", gpu_memory_bytes),
        ]

    def finished(self, endpoint: str, finish_reason: str, arrived: float, first_token: float | None,
                 finished: float, prompt_tokens: int, generated_tokens: int) -> None:
        """Record one request (times from `time.perf_counter()`)."""
        self.requests.inc(endpoint=endpoint, finish_reason=finish_reason)
        self.prompt_tokens.inc(prompt_tokens)
        self.generated_tokens.inc(generated_tokens)
        if first_token is not None:
            self.ttft.observe(first_token - arrived)
            self.latency.observe(finished - arrived)
            if generated_tokens > 1 and finished > first_token:
                self.tokens_per_second.set((generated_tokens - 1) / (finished - first_token))

    def mean_latency(self) -> float:
        """Mean seconds from a request's arrival to its last token (1 before any)."""
        count = sum(self.latency.counts)
        return self.latency.total / count if count else 1.0

    def render(self) -> str:
        return "".join(family.render() for family in self.families)


def parse_metrics(text: str) -> dict[str, float]:
    """Samples of a Prometheus text page, keyed by `name{labels}` exactly as written (for tests and tools)."""
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            samples[key] = float(value)
    return samples
