"""The fast gpt-oss runner: the loaded Transformers model's own weights, driven by our own steps.

What makes it fast, against `generate()`:
- a static KV cache of `max_context` positions for every layer (sliding ones too), so prefix reuse
  only moves a length: nothing is cropped or copied;
- decode computes only the 4 chosen experts of each layer (GEMVs that pick the experts by index on
  the device, no host sync), and the whole decode step is one CUDA graph replay; greedy decoding
  picks each token inside that graph, which the next replay reads, launched before the host has
  read the pick (greedy_tokens);
- every Triton kernel starts while the one before it finishes (programmatic dependent launch,
  kernels.py) and loads its weights meanwhile; the decode step's attention projections are Triton
  GEMVs for that reason (cuBLAS waits for the kernel before it);
- prefill runs grouped GEMMs over (token, expert) pairs sorted by expert, flash attention with
  sinks and windows, and the LM head on the last position only; a prompt replays the CUDA graph
  of a fixed size that holds it (PREFILL_GRAPH_BUCKETS), so the host launches one graph, not
  ~1,000 kernels.

At start, a dry pass of the steps about to run compiles every kernel variant they use, in parallel
(kernels.compile_only: a first start took 29-40 s compiling them one at a time); then the graphs
are captured.

Weights stay those of the model (no copy): at start the expert weights are transposed in place to
(E, out, in), and q/k/v become views of one fused matrix. The model keeps working through its own
forward afterwards (its experts are switched to `grouped_mm`, which reads either layout).
Experts loaded packed from a released MXFP4 checkpoint (loading.py) are read as stored, already
(E, out, in): the kernels unpack them in registers. Such a model has no FP16 expert weights, so
only this runner can drive it.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType

import torch
import torch.nn.functional as F

from osslsp.engine.kernels_torch import NextNorm
from osslsp.engine.layers import Layer, experts_to_output_major, fuse_qkv, packed_experts
from osslsp.engine.mxfp4 import Mxfp4Weight
from osslsp.engine.runner import NON_FINITE, Runner, TransformersRunner, greedy_pick, shared_prefix_length

log = logging.getLogger(__name__)


def make_runner(model, max_context: int) -> Runner:
    """The fast runner for a gpt-oss model held on CUDA GPUs; the generic one for anything else."""
    reason = unsupported_reason(model)
    if reason is None:
        return FastGptOssRunner(model, max_context)
    log.info("generic Transformers runner: %s", reason)
    return TransformersRunner(model)


def unsupported_reason(model) -> str | None:
    """Why the fast runner cannot drive this model, or None when it can."""
    config = model.config
    if getattr(config, "model_type", None) != "gpt_oss":
        return f"model type {getattr(config, 'model_type', '?')} is not gpt_oss"
    if not torch.cuda.is_available():
        return "no CUDA GPU"
    devices = {parameter.device.type for parameter in model.parameters()}
    if devices != {"cuda"}:
        return f"weights are on {sorted(devices)}, not all on CUDA GPUs"
    if model.dtype not in (torch.float16, torch.bfloat16):
        return f"dtype {model.dtype} (the fast runner does float16/bfloat16)"
    if config.hidden_size % 64 or config.intermediate_size % 64 or config.head_dim != 64:
        return "shapes the kernels were not written for"
    return None


def set_experts_implementation(model, name: str) -> None:
    """Switch the experts' forward (`eager`, `grouped_mm`, ...) in any Transformers 5.x."""
    if hasattr(model, "set_experts_implementation"):
        model.set_experts_implementation(name)
    else:
        model.config._experts_implementation = name


# Cold prefills replay the CUDA graph of the smallest of these sizes that holds them, padded with
# copies of their last token (launching a prompt's ~1,000 kernels from Python would leave the GPU
# waiting on the host). Up to 512 tokens a step is bound by launches and by reading the weights, not
# by its rows, so doubling sizes cost little; past 512, padding rows cost dense and attention work
# like real ones (the experts skip them), so a size every 256 tokens to 2048 and every 512 to
# PREFILL_CHUNK: at most a quarter of padding past 1024 tokens, an eighth near 2k and 4k.
PREFILL_GRAPH_BUCKETS = (16, 64, 128, 256, 512, 768, 1024, 1280, 1536, 1792, 2048, 2560, 3072, 3584, 4096)
# The eager prefills that compile each tile size of the experts (>1024, >64 and fewer tokens), where
# no prefill graphs are captured (their own sizes' warm-ups compile what they use).
WARM_UP_LENGTHS = (1100, 300, 60)
# Longer prompts go through the layers this many tokens at a time: an 8k prompt's activations in one
# piece (about 1.2 GiB with packed experts) would not fit next to the weights on a 16 GB card.
PREFILL_CHUNK = 4096


def prefill_graph_buckets(max_context: int, chunk: int) -> list[int]:
    """The prefill sizes to capture for a context of max_context tokens, ascending: those of
    PREFILL_GRAPH_BUCKETS below the largest piece a prefill runs (min(chunk, max_context)), then that."""
    largest = min(chunk, max_context)
    return [bucket for bucket in PREFILL_GRAPH_BUCKETS if bucket < largest] + [largest]


def kernels_compile_only(kernels: ModuleType):
    """The kernels' compile_only context (see kernels.compile_only), or None for kernels with
    nothing to compile (kernels_torch)."""
    return getattr(kernels, "compile_only", None)


def plan_prefill(n_new: int, buckets: list[int], chunk: int) -> list[tuple[int, int | None]]:
    """How a prefill of n_new tokens runs: pieces of `chunk` tokens then the rest, each (tokens,
    bucket): replayed by the captured graph of the smallest bucket that holds it, or eagerly where
    none does (bucket None: its capture failed, or the runner has no graphs)."""
    lengths = [chunk] * ((n_new - 1) // chunk) + [n_new - (n_new - 1) // chunk * chunk]
    return [(length, min((b for b in buckets if length <= b), default=None)) for length in lengths]


@dataclass
class _PrefillGraph:
    """A captured prefill of `bucket` tokens: fill ids and positions, replay, read logits (1, V)."""

    bucket: int
    ids: torch.Tensor  # (bucket,)
    positions: torch.Tensor  # (bucket,)
    n_real: torch.Tensor  # (1,): the prefill's own tokens; the rest pad it to the bucket
    graph: torch.cuda.CUDAGraph
    logits: torch.Tensor  # (1, V)

    def run(self, new_ids: list[int], start: int) -> torch.Tensor:
        """Logits (1, V) after new_ids (at most `bucket`) at positions start..; rewritten by the next run.
        The padding repeats the last token at its own position: those rows compute exactly what it
        does (the experts copy its output rather than read weights for them: see n_real), so they
        write its keys and values to its cache slot, and the last row is its."""
        n = len(new_ids)
        self.ids.copy_(torch.tensor(new_ids + new_ids[-1:] * (self.bucket - n)))
        self.positions.copy_(torch.arange(start, start + self.bucket).clamp_(max=start + n - 1))
        self.n_real.fill_(n)
        self.graph.replay()
        return self.logits


class FastGptOssRunner:
    """Runner protocol for gpt-oss on CUDA: static cache, expert-gather decode in a CUDA graph."""

    def __init__(self, model, max_context: int, kernels: ModuleType | None = None, prefill_graphs: bool = True,
                 dense_gemvs: bool = True):
        """`kernels`: the Triton kernels by default; `kernels_torch` runs the same steps anywhere.
        `prefill_graphs`: capture the prefill graphs (their memory pool and start-up time are
        wasted where another runner does the prefills: the batched runner).
        `dense_gemvs`: the decode step's qkv (with its rope and cache write) and o_proj through the
        kernels' own GEMVs, which read their weights while the kernel before them finishes; False:
        through F.linear (cuBLAS), the ablation benchmarks compare against."""
        if kernels is None:
            from osslsp.engine import kernels  # Triton: imported only here, on CUDA
        self.kernels = kernels
        self.dense_gemvs = dense_gemvs
        config = model.config
        self.model = model
        self.max_context = max_context
        self.cached_ids: list[int] = []
        self.n_q, self.n_kv, self.head_dim = config.num_attention_heads, config.num_key_value_heads, config.head_dim
        self.scale = self.head_dim ** -0.5
        self.eps = config.rms_norm_eps
        self.top_k = config.num_experts_per_tok
        first_experts = model.model.layers[0].mlp.experts
        self.limit, self.alpha = float(first_experts.limit), float(first_experts.alpha)
        self.dtype = model.dtype
        if model.device.type == "cuda":
            _use_expandable_segments()

        with torch.inference_mode():
            self.layers = [self._prepare_layer(layer, config) for layer in model.model.layers]
        set_experts_implementation(model, "grouped_mm")  # the model's own forward must read the new layout
        self.embed = model.model.embed_tokens.weight  # (V, H)
        self.final_norm = model.model.norm.weight  # (H,)
        self.lm_head = model.lm_head.weight  # (V, H)
        self.device = self.embed.device
        devices = {layer.device for layer in self.layers} | {self.device, self.lm_head.device}
        self.rope = {device: self._rope_tables(device) for device in devices}
        # Decode inputs live on the device so that a graph replay reads them: token and position.
        self.token = torch.zeros(1, dtype=torch.long, device=self.device)
        self.position = {device: torch.zeros(1, dtype=torch.long, device=device) for device in devices}
        self.decode_attention = {d: kernels.DecodeAttention(self.n_q, self.n_kv, self.head_dim, d) for d in devices}
        packed = isinstance(self.layers[0].gate_up, Mxfp4Weight)
        decode_experts = kernels.DecodeExpertsMxfp4 if packed else kernels.DecodeExperts
        self.decode_experts = {
            d: decode_experts(config.hidden_size, config.intermediate_size, self.top_k, self.dtype, d)
            for d in devices
        }
        self.decode_router = {d: kernels.DecodeRouter(self.top_k, self.dtype, d) for d in devices}
        # Held for the decode graph's life: the graph reads and writes the pick's buffers (its ticket
        # counter too), so they must not go back to the allocator for other tensors to take.
        self.greedy_picker = kernels.GreedyPick(self.device)
        self.graph: torch.cuda.CUDAGraph | None = None
        self.graph_logits: torch.Tensor | None = None
        self.graph_pick: torch.Tensor | None = None  # (1,) the graph's greedy pick, NON_FINITE for bad logits
        self.picks: list[torch.Tensor] = []  # two pinned (1,) buffers the picks come back to, in turn
        self.picked: list[torch.cuda.Event] = []  # when each of them holds its pick
        self.uses = 0  # prefills and decode steps run: a greedy stream ends when another one runs
        self.prefill_graphs: list[_PrefillGraph] = []
        if devices == {self.device} and self.device.type == "cuda":
            self._compile_kernels(prefill_graphs)
            self._capture_decode_graph()
            if prefill_graphs:
                self._capture_prefill_graphs()  # each size runs eagerly before its capture
            else:
                self._warm_up()
        else:  # the CPU, or a model split over GPUs (a graph spans one GPU): eager steps only
            self._warm_up()

    # -- setup ------------------------------------------------------------------------------------

    def _prepare_layer(self, layer: torch.nn.Module, config) -> Layer:
        attention, experts = layer.self_attn, layer.mlp.experts
        device = attention.q_proj.weight.device
        expert_weights = packed_experts(experts)
        if expert_weights is None:
            experts_to_output_major(experts)
            expert_weights = (experts.gate_up_proj, experts.down_proj)
        qkv_weight, qkv_bias = fuse_qkv(attention)
        cache_shape = (self.n_kv, self.max_context, self.head_dim)
        window = attention.sliding_window or self.kernels.NO_WINDOW
        return Layer(
            device=device,
            input_norm=layer.input_layernorm.weight,
            post_norm=layer.post_attention_layernorm.weight,
            qkv_weight=qkv_weight,
            qkv_bias=qkv_bias,
            o_weight=attention.o_proj.weight,
            o_bias=attention.o_proj.bias,
            sinks=attention.sinks,
            window=int(window),
            router_weight=layer.mlp.router.weight,
            router_bias=layer.mlp.router.bias,
            gate_up=expert_weights[0],
            gate_up_bias=experts.gate_up_proj_bias,
            down=expert_weights[1],
            down_bias=experts.down_proj_bias,
            k_cache=torch.zeros(cache_shape, dtype=self.dtype, device=device),
            v_cache=torch.zeros(cache_shape, dtype=self.dtype, device=device),
        )

    def _rope_tables(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """cos, sin (T, D/2): the model's own rotary embedding (YaRN scaling included) at every position."""
        rotary = self.model.model.rotary_emb
        positions = torch.arange(self.max_context, device=rotary.inv_freq.device)[None]  # (1, T)
        probe = torch.empty(1, dtype=self.dtype, device=rotary.inv_freq.device)
        with torch.inference_mode():
            cos, sin = rotary(probe, positions)  # (1, T, D/2), or (1, T, D) as [half, half] in older versions
        half = self.head_dim // 2
        return cos[0, :, :half].contiguous().to(device), sin[0, :, :half].contiguous().to(device)

    def _compile_kernels(self, prefill_graphs: bool) -> None:
        """Compile, in parallel, the kernel variants of the steps the start-up runs next: a dry pass
        of them in which every launch only compiles."""
        compile_only = kernels_compile_only(self.kernels)
        if compile_only is None:
            return
        if prefill_graphs:
            lengths = prefill_graph_buckets(self.max_context, PREFILL_CHUNK)
        else:  # _warm_up's prefills, the last one's 5 new tokens after a shared prefix
            lengths = [min(length, self.max_context - 8) for length in WARM_UP_LENGTHS] + [5]
        with compile_only(), torch.inference_mode():
            self.greedy_picker(self._decode_step(), self.token, self.position[self.device],
                               torch.empty_like(self.token), NON_FINITE)
            for length in lengths:
                ids, positions, n_real = self._prefill_graph_inputs(length)
                self._prefill_step(ids, positions, n_real=n_real if prefill_graphs else None)
        torch.cuda.synchronize(self.device)

    def _warm_up(self) -> None:
        """Compile every kernel variant once (prefills of each tile size, one decode)."""
        vocab = self.embed.shape[0]
        for length in WARM_UP_LENGTHS:
            self.cached_ids = []
            self.prefill([index % vocab for index in range(min(length, self.max_context - 8))])
        self.prefill(list(range(56)) + [1, 2, 3, 4, 5])  # prefix reuse: a few tokens
        self.decode_one(7)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.cached_ids = []

    @torch.inference_mode()
    def _capture_decode_graph(self) -> None:
        """The decode step as one graph, ending with its greedy pick, which becomes the next
        replay's token; the graph also advances the position (see greedy_tokens). Pinned buffers
        take each pick back to the host, by a copy on the stream."""
        pick = self.greedy_picker
        position = self.position[self.device]
        self.graph_pick = torch.zeros(1, dtype=torch.long, device=self.device)
        stream = torch.cuda.Stream(self.device)
        stream.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(stream):
            for _ in range(2):  # warm-up runs on a side stream, as CUDA graph capture wants
                pick(self._decode_step(), self.token, position, self.graph_pick, NON_FINITE)
        torch.cuda.current_stream(self.device).wait_stream(stream)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.graph_logits = self._decode_step()  # (1, V), rewritten by every replay
            pick(self.graph_logits, self.token, position, self.graph_pick, NON_FINITE)
        self.picks = [torch.empty(1, dtype=torch.long, pin_memory=True) for _ in range(2)]  # (1,) each
        self.picked = [torch.cuda.Event() for _ in range(2)]
        torch.cuda.synchronize(self.device)

    @torch.inference_mode()
    def _capture_prefill_graphs(self) -> None:
        """A graph for each prefill size up to a PREFILL_CHUNK piece, all in one memory pool: the
        largest one's activations (and the expert scratch) are reserved once and the smaller ones
        reuse them. Every size runs once eagerly first (nothing may compile or load a kernel inside
        a capture), all before the first capture, so that no warm-up's activations come on top of
        the pool. A size that fails (out of memory, anything) stays eager."""
        warm = []
        for bucket in reversed(prefill_graph_buckets(self.max_context, PREFILL_CHUNK)):
            try:
                ids, positions, n_real = inputs = self._prefill_graph_inputs(bucket)
                self._prefill_step(ids, positions, n_real=n_real)  # Triton compiles, CUDA loads cuBLAS's kernels
                torch.cuda.synchronize(self.device)
                warm.append(inputs)
            except Exception as error:  # the eager path still works: a slower prompt, nothing wrong
                log.warning("no CUDA graph for %d-token prefills: %s", bucket, error)
            torch.cuda.empty_cache()  # the warm-up's activations
        pool = torch.cuda.graph_pool_handle()
        for ids, positions, n_real in warm:  # largest first
            try:
                graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(graph, pool=pool):
                    logits = self._prefill_step(ids, positions, n_real=n_real)
                self.prefill_graphs.append(_PrefillGraph(len(ids), ids, positions, n_real, graph, logits))
            except Exception as error:
                log.warning("no CUDA graph for %d-token prefills: %s", len(ids), error)
        self.prefill_graphs.reverse()  # ascending
        torch.cuda.synchronize(self.device)
        torch.cuda.empty_cache()

    def _prefill_graph_inputs(self, bucket: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """A prefill graph's static inputs: ids (bucket,), positions (bucket,), n_real (1,)."""
        return (torch.zeros(bucket, dtype=torch.long, device=self.device), torch.arange(bucket, device=self.device),
                torch.full((1,), bucket, device=self.device))

    # -- Runner protocol --------------------------------------------------------------------------

    @torch.inference_mode()
    def prefill(self, ids: list[int]) -> torch.Tensor:
        if not ids:
            raise ValueError("cannot prefill an empty prompt")
        if len(ids) > self.max_context:
            raise ValueError(f"prompt of {len(ids)} tokens is longer than the context of {self.max_context}")
        keep = shared_prefix_length(self.cached_ids, ids)
        self.cached_ids = self.cached_ids[:keep]  # the static cache only needs its length cut back
        new_ids = ids[keep:]
        self.uses += 1
        try:
            logits = self._prefill(new_ids, start=keep)
        except BaseException:
            self.cached_ids = []  # a failed step may have written part of its keys
            raise
        self.cached_ids.extend(new_ids)
        return logits[0].float()  # (V,)

    @torch.inference_mode()
    def decode_one(self, token_id: int) -> torch.Tensor:
        position = len(self.cached_ids)
        if position >= self.max_context:
            raise ValueError(f"the context of {self.max_context} tokens is full")
        self.uses += 1
        self.token.fill_(token_id)
        for tensor in self.position.values():
            tensor.fill_(position)
        try:
            if self.graph is not None:
                self.graph.replay()
                logits = self.graph_logits
            else:
                logits = self._decode_step()
        except BaseException:
            self.cached_ids = []
            raise
        self.cached_ids.append(token_id)
        return logits[0].float()  # (V,): a copy, so the next replay cannot change it

    @torch.inference_mode()
    def greedy_tokens(self, token_id: int, most: int) -> Iterator[int]:
        """GreedyRunner.greedy_tokens. With the decode graph, each replay takes the token the one
        before picked on the device, and the next replay is launched before this one's pick is
        read back: the GPU does not wait for the host between tokens. When the stream stops early,
        the replay launched ahead is dropped (its keys lie past cached_ids, so nothing reads them)."""
        if self.graph is None:
            for _ in range(most):
                picked = greedy_pick(self.decode_one(token_id))
                uses = self.uses
                yield picked
                if picked == NON_FINITE or len(self.cached_ids) >= self.max_context or self.uses != uses:
                    return
                token_id = picked
            return
        position = len(self.cached_ids)
        if position >= self.max_context:
            raise ValueError(f"the context of {self.max_context} tokens is full")
        if most <= 0:
            return
        end = min(self.max_context, position + most)  # the positions of this stream's steps end here
        self.uses += 1
        uses = self.uses
        try:
            self.token.fill_(token_id)
            self.position[self.device].fill_(position)  # from here each replay advances it
            self._launch_step(position)
            while True:
                if position + 1 < end:
                    self._launch_step(position + 1)  # on the token this step picks, before it is read
                self.picked[position % 2].synchronize()
                picked = int(self.picks[position % 2])
                self.cached_ids.append(token_id)
                yield picked
                if picked == NON_FINITE or position + 1 >= end or self.uses != uses:
                    return
                token_id, position = picked, position + 1
        except BaseException as error:
            if not isinstance(error, GeneratorExit):
                self.cached_ids = []  # a failed step may have written part of its keys
            raise

    def _launch_step(self, position: int) -> None:
        """Replay the decode graph for the token in self.token at `position` (in self.position);
        its pick comes back to self.picks[position % 2], ready when self.picked[position % 2] is."""
        self.graph.replay()
        self.picks[position % 2].copy_(self.graph_pick, non_blocking=True)
        self.picked[position % 2].record()

    # -- steps ------------------------------------------------------------------------------------

    def _decode_step(self) -> torch.Tensor:
        """One token (self.token at self.position) through every layer; logits (1, V)."""
        k = self.kernels
        residual = F.embedding(self.token, self.embed)  # (1, H)
        delta = None
        normed = None  # the layer's input norm of residual, when the previous layer's experts wrote it
        for index, layer in enumerate(self.layers):
            residual, delta = _to_device(residual, delta, layer.device)
            with _on(layer.device):
                position = self.position[layer.device]
                cos, sin = self.rope[layer.device]
                if normed is None:
                    normed = torch.empty_like(residual)
                    k.add_rmsnorm(residual, delta, layer.input_norm, self.eps, normed)
                q = torch.empty(1, self.n_q * self.head_dim, dtype=self.dtype, device=layer.device)
                if self.dense_gemvs:
                    k.decode_qkv_rope(normed, layer.qkv_weight, layer.qkv_bias, cos, sin, position, q,
                                      layer.k_cache, layer.v_cache)
                else:
                    qkv = F.linear(normed, layer.qkv_weight, layer.qkv_bias)  # (1, (NQ + 2 NKV) D)
                    k.rope_and_cache(qkv, cos, sin, position, q, layer.k_cache, layer.v_cache)
                attended = torch.empty_like(q)  # (1, NQ D)
                self.decode_attention[layer.device](
                    q[0], layer.k_cache, layer.v_cache, position, layer.window, layer.sinks, self.scale, attended[0]
                )
                if self.dense_gemvs:
                    delta = torch.empty_like(residual)  # (1, H)
                    k.decode_linear(attended, layer.o_weight, layer.o_bias, delta)
                else:
                    delta = F.linear(attended, layer.o_weight, layer.o_bias)  # (1, H)
                experts = self.decode_experts[layer.device]
                k.add_rmsnorm(residual, delta, layer.post_norm, self.eps, normed, experts.x_pairs)
                expert_ids, expert_weights = self.decode_router[layer.device](
                    normed[0], layer.router_weight, layer.router_bias)  # (K,) each
                delta = torch.empty_like(residual)
                then_norm = self._next_norm(index, residual[0], normed[0])
                experts(normed[0], layer.gate_up, layer.gate_up_bias, layer.down, layer.down_bias,
                        expert_ids, expert_weights, self.limit, self.alpha, delta[0],
                        x_pairs_ready=experts.x_pairs is not None, then_norm=then_norm)
                if then_norm is None:
                    normed = None
                else:
                    delta = None  # already in the residual
        if normed is not None:  # the final norm is written
            with _on(self.lm_head.device):
                return F.linear(normed, self.lm_head)
        return self._logits(residual, delta)

    def _next_norm(self, index: int, residual: torch.Tensor, normed: torch.Tensor) -> NextNorm | None:
        """What the experts of layer `index` do after their output at decode: add it to residual
        (H,) and write the next norm of it (the next layer's input norm, or the final one) to
        normed (H,); None when that norm is on another device (a split model)."""
        last = index + 1 == len(self.layers)
        next_device = self.lm_head.device if last else self.layers[index + 1].device
        if next_device != self.layers[index].device:
            return None
        return NextNorm(residual, self.final_norm if last else self.layers[index + 1].input_norm, self.eps, normed)

    def _prefill(self, new_ids: list[int], start: int) -> torch.Tensor:
        """Logits (1, V) after the new tokens at positions start..: pieces as plan_prefill says (the
        static cache holds the earlier pieces' keys), each a graph replay where one was captured."""
        graphs = {graph.bucket: graph for graph in self.prefill_graphs}
        first = start
        for length, bucket in plan_prefill(len(new_ids), list(graphs), PREFILL_CHUNK):
            piece = new_ids[first - start:first - start + length]
            if bucket is None:
                logits = self._prefill_step(torch.tensor(piece, device=self.device),
                                            torch.arange(first, first + length, device=self.device))
            else:
                logits = graphs[bucket].run(piece, first)
            first += length
        return logits

    def _prefill_step(self, ids: torch.Tensor, positions: torch.Tensor,
                      caches: list[tuple[torch.Tensor, torch.Tensor]] | None = None,
                      n_real: torch.Tensor | None = None) -> torch.Tensor:
        """Tokens ids (n,) at ascending positions (n,) through every layer; logits (1, V) of the last.
        `caches`: (k, v) of each layer, each (NKV, T, D), to write into instead of the runner's own
        (a slot of the batched runner's caches). `n_real` (1,) on the device: the tokens from this
        one on are copies of the one before, padding a captured graph (see prefill_experts)."""
        k = self.kernels
        n = ids.shape[0]
        residual = F.embedding(ids, self.embed)  # (n, H)
        positions = {d: positions.to(d) for d in self.position}  # (n,) on every device
        delta = None
        for index, layer in enumerate(self.layers):
            k_cache, v_cache = caches[index] if caches else (layer.k_cache, layer.v_cache)
            residual, delta = _to_device(residual, delta, layer.device)
            with _on(layer.device):
                cos, sin = self.rope[layer.device]
                normed = torch.empty_like(residual)
                k.add_rmsnorm(residual, delta, layer.input_norm, self.eps, normed)
                qkv = F.linear(normed, layer.qkv_weight, layer.qkv_bias)  # (n, (NQ + 2 NKV) D)
                q = torch.empty(n, self.n_q * self.head_dim, dtype=self.dtype, device=layer.device)
                k.rope_and_cache(qkv, cos, sin, positions[layer.device], q, k_cache, v_cache)
                attended = torch.empty_like(q)  # (n, NQ D)
                k.prefill_attention(q, k_cache, v_cache, positions[layer.device], layer.window,
                                    layer.sinks, self.scale, attended)
                delta = F.linear(attended, layer.o_weight, layer.o_bias)  # (n, H)
                k.add_rmsnorm(residual, delta, layer.post_norm, self.eps, normed)
                expert_ids, expert_weights = self._route(normed, layer)  # (n, K) each
                delta = k.prefill_experts(normed, expert_ids, expert_weights, layer.gate_up, layer.gate_up_bias,
                                          layer.down, layer.down_bias, self.limit, self.alpha,
                                          n_real=n_real)  # (n, H)
        return self._logits(residual[-1:], delta[-1:])  # only the last position's logits

    def _route(self, normed: torch.Tensor, layer: Layer) -> tuple[torch.Tensor, torch.Tensor]:
        """Top-k expert ids and their softmax weights, exactly as the model's router computes them."""
        router_logits = F.linear(normed, layer.router_weight, layer.router_bias)  # (n, E)
        top_values, top_ids = torch.topk(router_logits, self.top_k, dim=-1)  # (n, K)
        return top_ids, torch.softmax(top_values, dim=-1, dtype=top_values.dtype)

    def _logits(self, residual: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        """Final residual add, norm and LM head of rows (m, H) -> (m, V)."""
        residual, delta = _to_device(residual, delta, self.lm_head.device)
        with _on(self.lm_head.device):
            normed = torch.empty_like(residual)
            self.kernels.add_rmsnorm(residual, delta, self.final_norm, self.eps, normed)
            return F.linear(normed, self.lm_head)


def _use_expandable_segments() -> None:
    """Let PyTorch's caching allocator grow its segments in place from now on (the KV cache and
    activations), so that prompts of different lengths do not leave reserved memory in pieces: at
    an 8k context 0.7 GiB was reserved but unused without it. The setting is process-wide; the
    engine's process serves this one model."""
    # torch 2.11 deprecates torch.cuda.memory._set_allocator_settings in favour of the first.
    try:
        setting = getattr(torch._C, "_accelerator_setAllocatorSettings", None)
        (setting or torch.cuda.memory._set_allocator_settings)("expandable_segments:True")
    except (AttributeError, RuntimeError) as error:  # a differently built PyTorch
        log.info("expandable segments unavailable: %s", error)


def _to_device(residual: torch.Tensor, delta: torch.Tensor | None, device: torch.device):
    """Hidden states follow the layers across GPUs of a split model (a no-op on one GPU)."""
    if residual.device == device:
        return residual, delta
    return residual.to(device), None if delta is None else delta.to(device)


def _on(device: torch.device):
    """Make `device` current, so that Triton launches there (kernels go to the current device)."""
    return torch.cuda.device(device) if device.type == "cuda" else contextlib.nullcontext()
