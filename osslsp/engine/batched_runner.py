"""The batched gpt-oss runner: many sequences advanced together, one KV-cache slot each.

It drives the fast runner's layers (the same weights, kernels, router and LM head) over a slotted
cache: per layer (S + 1, NKV, T, D), full length for every layer (sliding layers mask to their
window) so that a slot keeps a whole prefix for its client's next request. The last slot is
scratch, written by the rows that pad a step to a captured size.

A step is B rows, each a (slot, position, token): a running sequence's newest token, or one token
of a short prompt chunk (its rows sit at consecutive positions of one slot; every row's keys are
written before any row attends, so the chunk attends causally to itself). Per layer: norm, QKV,
RoPE and the cache write into each row's slot, decode attention with per-row lengths and the
sinks, output projection, router, experts, and the LM head on all B rows. The experts of one row
are the decode GEMVs; of several rows, the prefill grouped GEMMs (pairs sorted by expert, so an
expert's weights are read once for all the rows that chose it), FP16 or packed MXFP4 alike. On
CUDA each step size in GRAPH_SIZES is one CUDA graph; a step pads up to the next size.
Long prompt chunks go through the fast runner's prefill (flash attention) into their slot.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from types import ModuleType

import torch
import torch.nn.functional as F

from osslsp.engine import kernels_torch
from osslsp.engine.gpt_oss_fast import FastGptOssRunner, kernels_compile_only, unsupported_reason

log = logging.getLogger(__name__)

GRAPH_SIZES = (1, 2, 4, 8, 16, 24, 32, 48, 64)  # rows a step may have, each one CUDA graph
CACHE_MEMORY_SHARE = 0.8  # of the GPU memory free after loading, what slots may take at most
FUSED_PREFILL_ROWS = 16  # a prompt remainder this short rides in a step as rows (this many rows are kept for them)
# Tiles (BLOCK_M, BLOCK_N, BLOCK_K, warps, stages) tried for a step's grouped expert GEMMs; the
# fastest for each step size is kept at start (None: the prefill kernels' own choice, tuned for
# prompts, not for a batch of decode rows; for packed experts of up to 16 rows, the grouped GEMVs).
# The 4 numbers are grouped-GEMV tiles (kernels.MXFP4_GROUPED_GEMV) for packed experts of more
# rows; FP16 experts fail them, and the tuning skips them.
EXPERT_TILE_CANDIDATES = (None, (16, 64, 128, 4, 3), (16, 128, 64, 4, 4), (16, 64, 256, 4, 3), (32, 64, 128, 4, 3),
                          (4, 4, 32, 4))


def batching_unsupported_reason(model) -> str | None:
    """Why this model cannot be batched, or None when it can (gpt-oss on one device: CUDA with the
    Triton kernels, or any device with their PyTorch twins)."""
    if getattr(model.config, "model_type", None) != "gpt_oss":
        return f"model type {getattr(model.config, 'model_type', '?')} is not gpt_oss"
    devices = {parameter.device for parameter in model.parameters()}
    if len(devices) != 1:
        return "the model is split across devices"
    if next(iter(devices)).type == "cuda":
        return unsupported_reason(model)
    return None


def make_batched_runner(model, max_context: int, max_batch: int) -> BatchedGptOssRunner | None:
    """A batched runner for up to `max_batch` sequences (fewer when their caches do not fit the GPU's
    free memory), or None when the model cannot be batched (then it is served one at a time)."""
    reason = batching_unsupported_reason(model)
    if reason is not None:
        log.info("no batching: %s", reason)
        return None
    on_cuda = model.device.type == "cuda"
    slots = min(max_batch, slots_that_fit(model, max_context)) if on_cuda else max_batch
    if slots < 2:
        log.warning("no batching: the GPU's free memory holds no KV caches for two sequences of %d tokens "
                    "(lower --max-context)", max_context)
        return None
    if slots < max_batch:
        log.warning("KV caches for %d of %d sequences fit the GPU: batching up to %d (lower --max-context "
                    "for more)", slots, max_batch, slots)
    fast = FastGptOssRunner(model, max_context, kernels=None if on_cuda else kernels_torch, prefill_graphs=False)
    return BatchedGptOssRunner(fast, n_slots=slots, max_rows=slots + FUSED_PREFILL_ROWS)


def slot_bytes(model, max_context: int) -> int:
    """Bytes of one slot's keys and values, all layers, full context."""
    config = model.config
    per_layer = 2 * config.num_key_value_heads * max_context * config.head_dim * model.dtype.itemsize
    return per_layer * config.num_hidden_layers


def slots_that_fit(model, max_context: int) -> int:
    """How many slots (plus the scratch slot, and the fast runner's own cache) fit the GPU's free
    memory, within CACHE_MEMORY_SHARE."""
    free, _ = torch.cuda.mem_get_info(model.device)
    return int(free * CACHE_MEMORY_SHARE) // slot_bytes(model, max_context) - 2


def greedy_picks(logits: torch.Tensor) -> torch.Tensor:
    """Per row of logits (B, V): whether all are finite (1/0) and the argmax, as (2, B). Computed on
    the device, inside a step's graph, so that reading a step's greedy tokens back is one copy."""
    return torch.stack([torch.isfinite(logits).all(dim=-1).long(), logits.argmax(dim=-1)])


class BatchedGptOssRunner:
    """Prefill into a slot, and batched steps of (slot, position, token) rows; slots hold no ids here
    (the scheduler tracks which ids each slot's cache holds)."""

    def __init__(self, fast: FastGptOssRunner, n_slots: int, max_rows: int):
        self.fast = fast
        self.kernels: ModuleType = fast.kernels
        self.n_slots, self.max_rows, self.max_context = n_slots, max_rows, fast.max_context
        self.device = fast.device
        shape = (n_slots + 1, fast.n_kv, fast.max_context, fast.head_dim)  # (S + 1, NKV, T, D)
        self.caches = [(torch.zeros(shape, dtype=fast.dtype, device=self.device),
                        torch.zeros(shape, dtype=fast.dtype, device=self.device)) for _ in fast.layers]
        # A step's rows on the device, read by graph replays: tokens, positions, slots, and 1 for a
        # row of the step / 0 for one padding it to a captured size (4, max_rows).
        self.rows = torch.zeros(4, max_rows, dtype=torch.long, device=self.device)
        self.attention = self.kernels.SlotsDecodeAttention(fast.n_q, fast.n_kv, fast.head_dim, max_rows,
                                                                 self.device)
        self.sizes = [size for size in GRAPH_SIZES if size < max_rows] + [max_rows]
        self.graphs: dict[int, tuple[torch.cuda.CUDAGraph, torch.Tensor, torch.Tensor]] = {}  # logits, picks
        self._done = torch.cuda.Event() if self.device.type == "cuda" else None
        self.expert_tiles: dict[int, tuple[int, int, int, int, int] | None] = {}  # by step size
        self.expert_tile_ms: dict[int, dict[str, float]] = {}  # by step size: each candidate's time in a graph
        if self.device.type == "cuda":
            self._tune_expert_tiles()
            self._capture_graphs()

    @property
    def scratch_slot(self) -> int:
        return self.n_slots

    @torch.inference_mode()
    def prefill(self, slot: int, ids: list[int], start: int) -> torch.Tensor:
        """Write `ids` at positions start.. into `slot`; logits (1, V) of the last."""
        if start + len(ids) > self.max_context:
            raise ValueError(f"prompt of {start + len(ids)} tokens is longer than the context of {self.max_context}")
        ids_tensor = torch.tensor(ids, device=self.device)  # (n,)
        positions = torch.arange(start, start + len(ids), device=self.device)  # (n,)
        caches = [(k_cache[slot], v_cache[slot]) for k_cache, v_cache in self.caches]  # (NKV, T, D) each
        logits = self.fast._prefill_step(ids_tensor, positions, caches)
        self._wait()
        return logits

    @torch.inference_mode()
    def step(self, rows: list[tuple[int, int, int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Rows of (slot, position, token) -> logits (B, V) and their greedy picks (2, B) (see
        `greedy_picks`), valid until the next step."""
        n = len(rows)
        if not 0 < n <= self.max_rows:
            raise ValueError(f"a step has 1 to {self.max_rows} rows, not {n}")
        size = next(size for size in self.sizes if size >= n) if self.graphs else n
        padding = [(self.scratch_slot, 0, 0)] * (size - n)
        slots, positions, tokens = zip(*(rows + padding))
        self.rows[:, :size].copy_(torch.tensor([tokens, positions, slots, [1] * n + [0] * (size - n)]))
        if self.graphs:
            graph, logits, picks = self.graphs[size]
            graph.replay()
        else:
            logits = self._step(size)
            picks = greedy_picks(logits)
        self._wait()
        return logits[:n], picks[:, :n]

    def _wait(self) -> None:
        """Wait for the GPU's work so far without holding the GIL (reading a result back holds it
        for the whole wait), so that the server's event loop streams answers meanwhile."""
        if self._done is not None:
            self._done.record()
            self._done.synchronize()

    def _step(self, n: int) -> torch.Tensor:
        """The first n rows of self.rows through every layer; logits (n, V)."""
        fast, k = self.fast, self.kernels
        tokens, positions, slots = self.rows[0, :n], self.rows[1, :n], self.rows[2, :n]  # (n,) each
        n_real = self.rows[3, :n].sum(0, keepdim=True)  # (1,): padding rows follow the real ones
        cos, sin = fast.rope[self.device]  # (T, D/2) each
        residual = F.embedding(tokens, fast.embed)  # (n, H)
        delta = None
        for layer, (k_cache, v_cache) in zip(fast.layers, self.caches):
            normed = torch.empty_like(residual)  # (n, H)
            k.add_rmsnorm(residual, delta, layer.input_norm, fast.eps, normed)
            qkv = F.linear(normed, layer.qkv_weight, layer.qkv_bias)  # (n, (NQ + 2 NKV) D)
            q = torch.empty(n, fast.n_q * fast.head_dim, dtype=fast.dtype, device=self.device)  # (n, NQ D)
            k.rope_and_cache_slots(qkv, cos, sin, positions, slots, q, k_cache, v_cache)
            attended = torch.empty_like(q)  # (n, NQ D)
            self.attention(q, k_cache, v_cache, positions, slots, layer.window, layer.sinks, fast.scale, attended)
            delta = F.linear(attended, layer.o_weight, layer.o_bias)  # (n, H)
            k.add_rmsnorm(residual, delta, layer.post_norm, fast.eps, normed)
            expert_ids, expert_weights = fast._route(normed, layer)  # (n, K) each
            if n == 1:  # one row: the decode GEMVs read only its K experts
                delta = torch.empty_like(residual)
                fast.decode_experts[self.device](
                    normed[0], layer.gate_up, layer.gate_up_bias, layer.down, layer.down_bias,
                    expert_ids[0], expert_weights[0], fast.limit, fast.alpha, delta[0],
                )
            else:
                # Padding rows (after the real ones) get no expert blocks: the experts read no
                # weights for them and copy the last real row's output (they write only scratch).
                tiles = self.expert_tiles.get(n)
                delta = k.prefill_experts(normed, expert_ids, expert_weights, layer.gate_up, layer.gate_up_bias,
                                          layer.down, layer.down_bias, fast.limit, fast.alpha,
                                          **({"config": tiles} if tiles else {}), n_real=n_real)  # (n, H)
        return fast._logits(residual, delta)  # (n, V)

    @torch.inference_mode()
    def _tune_expert_tiles(self) -> None:
        """For each step size, the fastest of EXPERT_TILE_CANDIDATES on one layer's experts (rows
        routed as the model routes random hidden states), timed as a step runs them: replayed in a
        CUDA graph (timed eagerly, kernel launches dominate and the choice is noise). A tile that
        fails to compile or capture is skipped."""
        fast, layer = self.fast, self.fast.layers[0]
        generator = torch.Generator(self.device).manual_seed(0)
        sizes = [size for size in self.sizes if size > 1]  # one row takes the decode GEMVs
        runs = {}  # by (size, tiles): one call of the experts
        for size in sizes:
            x = torch.randn(size, fast.embed.shape[1], device=self.device, generator=generator).to(fast.dtype)
            expert_ids, expert_weights = fast._route(x, layer)  # (size, K) each
            for tiles in EXPERT_TILE_CANDIDATES:
                runs[size, tiles] = functools.partial(
                    self.kernels.prefill_experts, x, expert_ids, expert_weights, layer.gate_up, layer.gate_up_bias,
                    layer.down, layer.down_bias, fast.limit, fast.alpha, config=tiles)  # -> (size, H)
        compile_only = kernels_compile_only(self.kernels)
        if compile_only is not None:
            with compile_only():  # every candidate's variants at once
                for run in runs.values():
                    with contextlib.suppress(Exception):  # the timing below skips the candidate, says why
                        run()
        for size in sizes:
            timings = {}
            for tiles in EXPERT_TILE_CANDIDATES:
                run = runs[size, tiles]
                try:
                    timings[tiles] = self._graph_milliseconds(run)
                except Exception as error:  # noqa: BLE001 (Triton's resource errors have no common type)
                    log.debug("expert tiles %s for %d rows: %s", tiles, size, error)
            self.expert_tiles[size] = min(timings, key=timings.get) if timings else None
            self.expert_tile_ms[size] = {str(tiles): round(ms, 4) for tiles, ms in timings.items()}
            log.info("expert tiles for %d rows: %s (ms a layer in a graph: %s)", size, self.expert_tiles[size],
                     self.expert_tile_ms[size])

    def _graph_milliseconds(self, run, calls: int = 8, replays: int = 5) -> float:
        """Milliseconds one call of `run` takes inside a CUDA graph: `calls` calls captured in one
        graph, the fastest of `replays` replays (after one to warm up)."""
        stream = torch.cuda.Stream(self.device)
        stream.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(stream):
            run()  # compiles the kernels; capture wants a warm-up on a side stream
        torch.cuda.current_stream(self.device).wait_stream(stream)
        torch.cuda.synchronize(self.device)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            for _ in range(calls):
                run()
        graph.replay()
        best = float("inf")
        for _ in range(replays):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            graph.replay()
            end.record()
            end.synchronize()
            best = min(best, start.elapsed_time(end) / calls)
        return best

    @torch.inference_mode()
    def _capture_graphs(self) -> None:
        """One CUDA graph per step size, sharing one memory pool (steps never run concurrently).
        Capture-time rows point at the scratch slot, position 0."""
        self.rows[2].fill_(self.scratch_slot)
        pool = torch.cuda.graph_pool_handle()
        stream = torch.cuda.Stream(self.device)
        stream.wait_stream(torch.cuda.current_stream(self.device))
        compile_only = kernels_compile_only(self.kernels)
        if compile_only is not None:
            with compile_only():  # every size's variants at once
                for size in self.sizes:
                    self._step(size)
        with torch.cuda.stream(stream):
            for size in self.sizes:  # warm-up on a side stream, as capture wants
                self._step(size)
        torch.cuda.current_stream(self.device).wait_stream(stream)
        torch.cuda.synchronize(self.device)
        for size in self.sizes:
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, pool=pool):
                logits = self._step(size)  # (size, V), rewritten by every replay
                picks = greedy_picks(logits)  # (2, size)
            self.graphs[size] = (graph, logits, picks)
        torch.cuda.synchronize(self.device)
