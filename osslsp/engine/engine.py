"""The engine: one thread owns the model; requests queue to it and stream tokens back.

Model work never runs on the server's event loop or on pygls's thread pool (which also reads
stdin): a long prefill there would starve cancels and keystrokes. Each request carries a stop flag
that the decode loop checks every step, and the newest request for a document supersedes older ones.
Interactive requests (inline completions) go first: a long job (an explanation, a generated
function) yields to one at its next step boundary and resumes after it.

With `max_batch` > 1 and a gpt-oss model, generations run together instead (batching.py): they join
and leave the running batch at step boundaries, interactive ones admitted first, and background
ones never fill the whole batch, so a long chat cannot keep completions out.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
import time
from collections.abc import Callable

import torch

from osslsp.engine.batched_runner import make_batched_runner
from osslsp.engine.batching import BatchScheduler
from osslsp.engine.generation import generate, repeats_itself
from osslsp.engine.loading import LoadedModel, ModelLoadError, load_model
from osslsp.engine.requests import Generation, Request, Waiting, deliver
from osslsp.engine.gpt_oss_fast import make_runner
from osslsp.engine.runner import Runner
from osslsp.engine.tracing import StepLaps, Trace
from osslsp.models import ModelSource

log = logging.getLogger(__name__)

# Generations batched by default on a GPU (max_batch 0). Decode reads the weights once a step
# whatever the batch, so 32 sequences cost little more than one; on a CPU they run one at a time.
AUTO_BATCH = 32


class EngineError(Exception):
    """A request failed inside the engine; the message is meant for the user."""


def _user_message(error: BaseException) -> str:
    if isinstance(error, torch.OutOfMemoryError):
        return ("the GPU ran out of memory for this request: lower osslsp.contextTokens, "
                "or free the GPU (engine = \"shared\" lets windows share one model)")
    return str(error) or type(error).__name__


class Engine:
    """Loads a model on its own thread, then serves requests in order, interactive ones first; a
    newer request for the same key cancels the older one, which is then skipped or stopped at its
    next step."""

    def __init__(self, source: ModelSource, dtype: str = "float16", device: str = "auto",
                 max_gpu_memory_gib: float = 0.0, max_context: int = 8192,
                 on_state: Callable[[str, str], None] = lambda state, message: None, experts: str = "auto",
                 max_batch: int = 1, trace: Trace | None = None):
        self.source = source
        self.trace = trace  # where requests' marks and steps' timings go (None: not traced)
        self.max_context = max_context  # the KV cache's length: prompt and answer together
        self.max_batch = max_batch  # generations run together (1: one at a time; 0: AUTO_BATCH on a GPU)
        self.batch: BatchScheduler | None = None
        self._serving = 0  # one at a time: generations being served (an interactive one inside a long one)
        self._load_args = (dtype, device, max_gpu_memory_gib, experts)
        self._on_state = on_state
        self.state = "idle"  # idle, loading, ready, error, closed
        self.error = ""
        self.loaded: LoadedModel | None = None
        self.runner: Runner | None = None
        self._waiting = Waiting()
        self._latest: dict[str, Generation] = {}
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="osslsp-engine", daemon=True)

    def start(self) -> None:
        """Start loading in the background (returns at once)."""
        self._thread.start()

    @property
    def loading_done(self) -> bool:
        """Loading has finished, well or not."""
        return self._ready.is_set()

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Block until loading finished (well or not); True when the model is ready."""
        self._ready.wait(timeout)
        return self.state == "ready"

    def submit(self, request: Request, loop: asyncio.AbstractEventLoop | None = None) -> Generation:
        """Queue a request; an older one with the same key is cancelled."""
        generation = Generation(request, loop)
        if self.trace is not None:
            generation.marks = {"submitted": time.perf_counter()}
        with self._lock:
            if request.key is not None:
                older = self._latest.get(request.key)
                if older is not None:
                    older.cancel()
                self._latest[request.key] = generation
        if self.state in ("error", "closed"):
            generation._emit("error", EngineError(self.error or "the model was unloaded (settings changed)"))
        else:
            self._waiting.put(generation)
        return generation

    def close(self) -> None:
        """Cancel what is queued and running (at its next step) and stop the thread; a model
        still loading is dropped when loaded."""
        self.state = "closed"
        with self._lock:
            for generation in self._latest.values():
                generation.cancel()
        self._waiting.close()

    def join(self, timeout: float | None = None) -> None:
        """Wait until the thread has ended and the model's memory is free (after close)."""
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _set_state(self, state: str, message: str) -> None:
        if self.state != "closed":  # a closed engine reports nothing: its successor speaks
            self.state = state
            self._on_state(state, message)

    def _run(self) -> None:
        dtype, device, max_gpu_memory_gib, experts = self._load_args
        self._set_state("loading", f"loading {self.source.spec}")
        try:
            self.loaded = load_model(self.source, dtype, device, max_gpu_memory_gib, experts, self.max_context)
            if self.max_batch == 0:
                self.max_batch = AUTO_BATCH if self.loaded.model.device.type == "cuda" else 1
            batched = make_batched_runner(self.loaded.model, self.max_context, self.max_batch) \
                if self.max_batch > 1 else None
            if batched is not None:
                self.batch = BatchScheduler(batched, self.loaded.stop_ids, self.max_batch, self._ended,
                                            deliver, trace=self.trace)
                self.max_batch, self.runner = self.batch.max_batch, batched.fast
            else:
                self.max_batch, self.runner = 1, make_runner(self.loaded.model, self.max_context)
        except ModelLoadError as error:
            self.error = str(error)
        except Exception as error:  # a bug or a broken checkpoint: report it, keep the server up
            log.exception("loading %s failed", self.source.spec)
            self.error = f"loading {self.source.spec} failed: {_user_message(error)}"
        if self.error:
            self._set_state("error", self.error)
        else:
            self._set_state("ready", f"{self.source.spec} ready on {self.loaded.device}")
        self._ready.set()
        if self.batch is not None:
            self._run_batched()
        while (generation := self._waiting.get()) is not None:
            self._take(generation)
        self.loaded = self.runner = self.batch = None  # the weights' memory goes with the last references

    @property
    def background_limit(self) -> int:
        """Generations that are not interactive run at most this many at once: the rest of the
        batch (a quarter) is kept for inline completions."""
        return max(1, self.max_batch - max(1, self.max_batch // 4)) if self.max_batch > 1 else 1

    @property
    def waiting(self) -> int:
        """Generations queued for the engine thread, not yet running."""
        return len(self._waiting)

    @property
    def running(self) -> int:
        """Generations in the running batch (0 or 1 when generations run one at a time)."""
        return len(self.batch.running) if self.batch is not None else self._serving

    def _run_batched(self) -> None:
        """Steps of the running batch until closed: admit at each step boundary, then one step."""
        batch = self.batch
        while self.state != "closed":
            if not batch.running:
                generation = self._waiting.get()
                if generation is None:
                    return
                self._join(generation)
            laps = StepLaps(time.perf_counter()) if self.trace is not None else None
            while not batch.full:
                background = sum(not s.request.interactive for s in batch.running) < self.background_limit
                generation = self._waiting.get_nowait(background)
                if generation is None:
                    break
                self._join(generation)
            if self.state == "closed":
                break
            if laps is not None:
                laps.lap("admit")
            try:
                batch.step(laps)
            except Exception as error:  # a bug or a GPU fault: fail these requests, keep serving
                log.exception("a batched step failed")
                batch.fail(error)
        batch.close()

    def _join(self, generation: Generation) -> None:
        """Admit a generation taken from the waiting ones to the batch (unless it failed or was
        cancelled there)."""
        if self.error or generation.cancelled.is_set() or self.state == "closed":
            self._take(generation)  # answers it at once
            return
        try:
            room = self._room(generation.request)
        except EngineError as error:
            generation._emit(*self._ended(generation, "error", error))
            return
        generation.mark("admitted")
        self.batch.admit(generation, min(generation.request.sampling.max_new_tokens, room))

    def _room(self, request: Request) -> int:
        """How many tokens the answer may have: the cache holds prompt and answer (EngineError if none)."""
        room = self.max_context - len(request.prompt_ids)
        if room < 1:
            raise EngineError(f"the prompt has {len(request.prompt_ids)} tokens and the model's cache holds "
                              f"{self.max_context}: lower osslsp.contextTokens")
        return room

    def _forget(self, generation: Generation) -> None:
        """A generation has ended: it no longer stands for its key."""
        with self._lock:
            if self._latest.get(generation.request.key) is generation:
                del self._latest[generation.request.key]

    def _ended(self, generation: Generation, reason: str, error: BaseException | None) -> tuple[str, object]:
        """A generation left the batch: its last event for its reader (why it ended)."""
        self._forget(generation)
        generation.finish_reason = reason
        if error is None:
            return "done", reason
        if not isinstance(error, EngineError):
            log.warning("generation failed: %s", error)
        return "error", error if isinstance(error, EngineError) else EngineError(_user_message(error))

    def _take(self, generation: Generation) -> None:
        """Serve a generation taken from the waiting ones (unless it failed or was cancelled there)."""
        if self.error:
            generation._emit("error", EngineError(self.error))
        elif generation.cancelled.is_set() or self.state == "closed":  # superseded or closing
            generation.finish_reason = "cancelled"
            generation._emit("done", "cancelled")
        else:
            generation.mark("admitted")
            self._serving += 1
            try:
                self._serve(generation)
            finally:
                self._serving -= 1

    def _serve_interactive_waiting(self) -> None:
        """At a long job's step boundary: serve the interactive generations waiting now (the long
        job's next step finds the cache changed and prefills its own tokens again)."""
        while (urgent := self._waiting.interactive_nowait()) is not None:
            self._take(urgent)

    def _serve(self, generation: Generation) -> None:
        request = generation.request
        produced: list[int] = []
        looped = False

        def should_stop() -> bool:
            nonlocal looped
            if self.state == "closed":
                generation.cancel()
            if generation.cancelled.is_set():
                return True
            if not request.interactive:
                self._serve_interactive_waiting()
            if request.stop_on_repetition and repeats_itself(produced):
                looped = True
                return True
            return request.stop_when is not None and bool(produced) and request.stop_when(produced)

        try:
            # The answer must fit the KV cache with its prompt (the fast runner's cache has a fixed length).
            room = self._room(request)
            sampling = dataclasses.replace(request.sampling,
                                           max_new_tokens=min(request.sampling.max_new_tokens, room))
            for token in generate(self.runner, request.prompt_ids, sampling,
                                  request.stops(self.loaded.stop_ids), should_stop, request.constraint):
                produced.append(token)
                if len(produced) == 1:
                    generation.mark("first_token")
                generation._emit("token", token)
        except Exception as error:
            log.warning("generation failed: %s", error)
            generation.finish_reason = "error"
            generation._emit("error", EngineError(_user_message(error)))
            return
        finally:
            self._forget(generation)
        if generation.cancelled.is_set():
            generation.finish_reason = "cancelled"
        elif looped:
            generation.finish_reason = "repetition"
        elif len(produced) >= sampling.max_new_tokens:
            generation.finish_reason = "length"
        else:
            generation.finish_reason = "stop"
        generation._emit("done", generation.finish_reason)
