"""Continuous batching: the running sequences, their cache slots, and one step at a time.

Generations join the batch at a step boundary (the engine admits them) and leave it at one:
finished, stopped, failed, cancelled or superseded. Each step
- prefills joining prompts: a short remainder rides in the step as rows (so a keystroke's few new
  tokens cost no extra pass), a long one goes through a flash-attention prefill of at most
  `prefill_chunk` tokens per step while others decode (so a long prompt never stalls them);
- advances every decoding sequence by one token in one batched pass;
- samples each sequence's next token with its own settings, constraint and stop conditions, as
  `generation.generate` does for one.
A slot keeps its cache after its sequence leaves: the next request with the same cache key (a
client, a document) reuses its longest shared prefix.
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import torch

from osslsp.engine.batched_runner import FUSED_PREFILL_ROWS, BatchedGptOssRunner, greedy_picks
from osslsp.engine.generation import NonFiniteLogits, repeats_itself, sample
from osslsp.engine.runner import shared_prefix_length
from osslsp.engine.tracing import StepLaps, Trace
from osslsp.sampling import Sampling

# Prompt tokens prefilled per step while other sequences decode. A prefill reads every expert's
# weights whatever its length, so short chunks save the running decodes little and cost the
# joining prompt much: on an H200 (gpt-oss-20b shapes, FP16) 512 tokens took 33.6 ms and 2,048
# took 36.4 ms (benchmarks/TEAM_LOAD.md).
PREFILL_CHUNK = 2048


class Member(Protocol):
    """What the scheduler needs of a generation (engine.Generation)."""

    request: object  # engine.Request
    cancelled: threading.Event

    def mark(self, name: str) -> None:
        """When traced, note the first time it passed `name` (tracing.REQUEST_MARKS)."""


# An event for a generation's reader: (generation, "token" | "done" | "error", value).
Event = tuple[Member, str, object]


@dataclass
class Slot:
    """One sequence's place in the cache, and the ids its keys and values hold from position 0."""

    index: int
    cached_ids: list[int] = field(default_factory=list)
    key: str | None = None  # whose prefix it keeps (a client's, a document's)
    busy: bool = False
    last_used: int = 0


class Slots:
    """The cache slots: a request takes its key's idle slot, else the idle one sharing the longest
    prefix with its prompt, else the least recently used."""

    def __init__(self, count: int):
        self.slots = [Slot(index) for index in range(count)]
        self._clock = itertools.count(1)

    def take(self, key: str | None, prompt_ids: list[int]) -> Slot | None:
        idle = [slot for slot in self.slots if not slot.busy]
        if not idle:
            return None
        own = [slot for slot in idle if key is not None and slot.key == key]
        slot = own[0] if own else max(
            idle, key=lambda slot: (shared_prefix_length(slot.cached_ids, prompt_ids), -slot.last_used))
        slot.busy, slot.last_used = True, next(self._clock)
        if key is not None:
            slot.key = key
        return slot


@dataclass
class Sequence:
    """A generation in the batch: its slot, how much of its prompt the slot holds, what it produced."""

    generation: Member
    slot: Slot
    prompt: list[int]
    sampling: Sampling
    stop_ids: frozenset[int]
    outbox: list[Event]  # the scheduler's events of this step
    prefilled: int = 0  # prompt ids in the slot's cache
    produced: list[int] = field(default_factory=list)
    generator: torch.Generator | None = None

    @property
    def request(self):
        return self.generation.request

    @property
    def decoding(self) -> bool:
        """Its newest token waits to go through the model."""
        return bool(self.produced)

    @property
    def greedy(self) -> bool:
        """Its next token is the argmax, unconstrained (picked for all such rows at once)."""
        return self.sampling.temperature <= 0 and self.request.constraint is None

    def pick(self, logits: torch.Tensor, argmax: int) -> int:
        """The next token from logits (V,) (argmax: the batch's argmax of that row)."""
        if self.greedy:
            return argmax
        if self.generator is None and self.sampling.temperature > 0:
            self.generator = torch.Generator(logits.device).manual_seed(self.sampling.seed)
        allowed = self.request.constraint(self.produced) if self.request.constraint else None
        return sample(logits.float(), self.sampling, self.generator, allowed)

    def accept(self, token: int) -> str:
        """Take a sampled token: "" to go on, else why the sequence ends ("stop", "length", ...)."""
        if token in self.stop_ids:
            return "stop"
        self.produced.append(token)
        self.outbox.append((self.generation, "token", token))
        if len(self.produced) == 1:
            self.generation.mark("first_token")
        request = self.request
        if self.generation.cancelled.is_set():
            return "cancelled"
        if request.stop_on_repetition and repeats_itself(self.produced):
            return "repetition"
        if request.stop_when is not None and request.stop_when(self.produced):
            return "stop"
        if len(self.produced) >= self.sampling.max_new_tokens:
            return "length"
        return ""


# Called once per sequence when it leaves the batch with (generation, finish reason, error or
# None); returns the last event for its reader: ("done", reason) or ("error", error).
Ended = Callable[[Member, str, BaseException | None], tuple[str, object]]


class BatchScheduler:
    """The running batch of one batched runner. Not thread-safe: the engine thread owns it."""

    def __init__(self, runner: BatchedGptOssRunner, model_stop_ids: frozenset[int], max_batch: int,
                 ended: Ended, deliver: Callable[[list[Event]], None], prefill_chunk: int = PREFILL_CHUNK,
                 trace: Trace | None = None):
        self.runner = runner
        self.model_stop_ids = model_stop_ids
        self.max_batch = min(max_batch, runner.n_slots)
        self.prefill_chunk = prefill_chunk
        self.slots = Slots(runner.n_slots)
        self.running: list[Sequence] = []
        self.steps: collections.Counter[int] = collections.Counter()  # batched passes by their row count
        self._ended = ended
        self._deliver = deliver  # hands a step's events to their readers, all at once
        self._outbox: list[Event] = []
        self.trace = trace  # where each step's laps go (None: not traced)
        self._laps: StepLaps | None = None  # the step's, while one runs traced

    @property
    def full(self) -> bool:
        return len(self.running) >= self.max_batch

    def admit(self, generation: Member, max_new_tokens: int) -> None:
        """Join the batch at the next step (the caller checked `full` and the prompt's room)."""
        request = generation.request
        slot = self.slots.take(request.cache_key or request.key, request.prompt_ids)
        keep = shared_prefix_length(slot.cached_ids, request.prompt_ids)
        del slot.cached_ids[keep:]
        sampling = dataclasses.replace(request.sampling, max_new_tokens=max_new_tokens)
        self.running.append(Sequence(generation, slot, list(request.prompt_ids), sampling,
                                     request.stops(self.model_stop_ids), self._outbox, prefilled=keep))

    def close(self) -> None:
        """End every running sequence as cancelled (the engine is closing)."""
        for sequence in list(self.running):
            self._end(sequence, "cancelled")
        self._flush()

    def fail(self, error: BaseException) -> None:
        """End every running sequence with `error` (a step failed where no one sequence is to
        blame); their slots are emptied, since the step may have written part of their keys."""
        for sequence in list(self.running):
            sequence.slot.cached_ids = []
            self._end(sequence, "error", error)
        self._flush()

    def step(self, laps: StepLaps | None = None) -> None:
        """One step: the cancelled leave; prompts are prefilled (in part); every sequence that can
        decodes one token. `laps`: time the step's parts (traced)."""
        self._laps = laps
        for sequence in list(self.running):
            if sequence.generation.cancelled.is_set():
                self._end(sequence, "cancelled")
        rows: list[tuple[Sequence, int, int, bool]] = []  # (sequence, position, token, wants its logits)
        for sequence in self.running:
            if sequence.decoding:
                position = len(sequence.prompt) + len(sequence.produced) - 1
                rows.append((sequence, position, sequence.produced[-1], True))
        self._lap("build")
        self._prefill(rows)
        self._lap("prefill")
        if rows:
            self._decode(rows)
        self._flush()
        if laps is not None:
            laps.rows = len(rows)
            laps.lap("flush")
            self.trace.add_step(laps)
            self._laps = None

    def _lap(self, part: str) -> None:
        """End a part of a traced step."""
        if self._laps is not None:
            self._laps.lap(part)

    def _flush(self) -> None:
        """Deliver the step's events together: one wake-up of the server's event loop a step, not
        one a token (each wake-up is a system call, where the GIL may pass to the event loop)."""
        if self._outbox:
            self._deliver(list(self._outbox))
            self._outbox.clear()

    def _prefill(self, rows: list[tuple[Sequence, int, int, bool]]) -> None:
        """Rows for short prompt remainders (up to FUSED_PREFILL_ROWS tokens, as many as the step has
        room for); a flash-attention prefill for long ones, at most `prefill_chunk` tokens this step
        while others decode (the whole prompt when none does).

        A short remainder that finds no room waits for a later step: prefilled alone, it would be a
        pass of its own that every running sequence waits for (on an H200, 16 typing clients whose
        answers ended together spent a third of the engine's time in such passes, and 32 clients had
        steps of 440 ms), where one step later it rides in the batch for almost nothing."""
        budget = self.prefill_chunk if rows else math.inf
        room = self.runner.max_rows - len(rows)
        # Interactive requests first, then in order of joining.
        waiting = sorted((s for s in self.running if not s.decoding), key=lambda s: not s.request.interactive)
        for sequence in waiting:
            left = sequence.prompt[sequence.prefilled:]
            if len(left) <= FUSED_PREFILL_ROWS:
                if len(left) <= room:
                    rows.extend((sequence, sequence.prefilled + offset, token, offset == len(left) - 1)
                                for offset, token in enumerate(left))
                    room -= len(left)
            elif budget > 0:
                chunk = left[:int(min(budget, len(left)))]
                budget -= len(chunk)
                self._prefill_chunk(sequence, chunk)

    def _prefill_chunk(self, sequence: Sequence, chunk: list[int]) -> None:
        """Prefill a chunk of the prompt into the sequence's slot; sample its first token when done."""
        try:
            logits = self.runner.prefill(sequence.slot.index, chunk, sequence.prefilled)  # (1, V)
        except Exception as error:
            sequence.slot.cached_ids = []  # a failed step may have written part of its keys
            self._end(sequence, "error", error)
            return
        sequence.slot.cached_ids.extend(chunk)
        sequence.prefilled += len(chunk)
        if sequence.prefilled == len(sequence.prompt):
            self._sample([(sequence, logits[0])], greedy_picks(logits))

    def _decode(self, rows: list[tuple[Sequence, int, int, bool]]) -> None:
        """One batched pass over the rows; then each row that wants logits samples its sequence."""
        self.steps[len(rows)] += 1
        try:
            logits, picks = self.runner.step([(sequence.slot.index, position, token)
                                              for sequence, position, token, _ in rows])  # (B, V), (2, B)
        except Exception as error:
            for sequence in {id(row[0]): row[0] for row in rows}.values():
                sequence.slot.cached_ids = []
                self._end(sequence, "error", error)
            return
        self._lap("forward")
        for sequence, _, token, _ in rows:
            sequence.slot.cached_ids.append(token)
            if not sequence.decoding:
                sequence.prefilled += 1
        wanted = [index for index, row in enumerate(rows) if row[3]]
        chosen = picks if len(wanted) == len(rows) else picks[:, wanted]  # (2, m)
        self._sample([(rows[index][0], logits[index]) for index in wanted], chosen)
        self._lap("sample")

    def _sample(self, picks: list[tuple[Sequence, torch.Tensor]], greedy: torch.Tensor) -> None:
        """Next tokens for sequences given their logits rows and those rows' greedy picks (2, m)
        (`greedy_picks`: finiteness and argmax, read back in one copy); the rows that are not
        greedy sample one by one."""
        finite, argmax = greedy.tolist()
        for (sequence, row), is_finite, best in zip(picks, finite, argmax):
            try:
                if not is_finite:
                    raise NonFiniteLogits()
                token = sequence.pick(row, best)
            except Exception as error:
                self._end(sequence, "error", error)
                continue
            reason = sequence.accept(token)
            if reason:
                self._end(sequence, reason)

    def _end(self, sequence: Sequence, reason: str, error: BaseException | None = None) -> None:
        sequence.generation.mark("done")
        self.running.remove(sequence)
        sequence.slot.busy = False
        kind, value = self._ended(sequence.generation, reason, error)
        self._outbox.append((sequence.generation, kind, value))
