"""The engine server: one model in one process, served to many clients over the OpenAI API.

It hosts the same in-process engine the language server uses (`osslsp.engine.engine.Engine`: one
thread owns the model; on a GPU it batches up to `max_batch` generations) and puts an HTTP front on it:
`/v1/completions`, `/v1/chat/completions`, `/v1/models`, `/tokenize`, `/detokenize`, `/health`,
`/metrics`, and `/osslsp/attach`, a connection each language server holds open so that a shared
engine knows when the last window has gone.

Fairness is round-robin across clients (see `FairQueue`); past its limit a request gets 429 with
Retry-After. Short answers (inline completions) are the engine's interactive requests, admitted
to the batch first. A request stops at the engine's next
decode step when its client closes the connection: aiohttp cancels the handler, and the handler
cancels the generation.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from osslsp.engine.engine import Engine, EngineError
from osslsp.engine.tracing import Trace
from osslsp.models import ModelSource
from osslsp.prompts.harmony import final_channel
from osslsp.prompts.modeltext import Message, ModelText
from osslsp.remote import protocol
from osslsp.remote.audit_writer import AuditWriter
from osslsp.remote.detokenize import IncrementalText
from osslsp.remote.engine_request import build_request
from osslsp.remote.fair_queue import FairQueue, QueueFull
from osslsp.remote.metrics import EngineMetrics
from osslsp.remote.protocol import BadRequest, SamplingParams, StopText

log = logging.getLogger(__name__)

PUBLIC_PATHS = frozenset({"/health"})  # answered without a token: says only whether the model is up
STALL_SECONDS = 30.0  # a finished generation holding its place this long means the queue is stuck
# A prompt longer than this many characters per token of context cannot fit (tokens average about
# four characters): refused before it is tokenized, which takes seconds for megabytes.
MAX_PROMPT_CHARS_PER_TOKEN = 32
MAX_BODY_BYTES = 16 * 2**20  # larger bodies get 413 before they are read


class Unavailable(Exception):
    """The model is not there (failed to load); answered with 503."""


class TooLarge(BadRequest):
    """A prompt that cannot fit the engine's context whatever it tokenizes to; answered with 413."""


class EngineServer:
    """The HTTP application around one engine."""

    def __init__(self, source: ModelSource, dtype: str = "float16", device: str = "auto",
                 max_gpu_memory_gib: float = 0.0, max_context: int = 8192, token: str = "",
                 idle_timeout: float = 0.0, served_name: str = "", experts: str = "auto",
                 audit_path: Path | None = None, max_batch: int = 0, max_waiting: int = 0, trace: bool = False):
        self.source = source
        self.audit = AuditWriter(audit_path, lambda ids: self.text.decode(ids))  # the log of its requests
        self.model_name = served_name or source.spec
        self.token = token
        self.idle_timeout = idle_timeout
        self.engine = Engine(source, dtype, device, max_gpu_memory_gib, max_context, on_state=self._engine_state,
                             experts=experts, max_batch=max_batch, trace=Trace() if trace else None)
        self.metrics = EngineMetrics(self.engine, lambda: self.queue, lambda: self.attached)
        self.queue = FairQueue(self.engine, self.metrics.mean_latency, max_waiting)
        self.text: ModelText | None = None
        self._special_ids: frozenset[int] = frozenset()
        self.state, self.error = "loading", ""
        self.attached = 0
        self.handling = 0
        self.last_active = time.monotonic()
        self.stopping = asyncio.Event()
        self._loaded = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._attachments: set[asyncio.Task] = set()

    # --- the model --------------------------------------------------------------------------

    def _engine_state(self, state: str, message: str) -> None:
        """Called on the engine thread as the model loads."""
        if state == "ready":
            try:
                self.text = ModelText(self.source.text_dir)
                self._special_ids = frozenset(
                    token for token, added in self.text.tokenizer.get_added_tokens_decoder().items()
                    if added.special)
            except Exception as error:  # no tokenizer: as bad as no model
                state, message = "error", str(error)
        if state in ("ready", "error"):
            self.state, self.error = state, message if state == "error" else ""
            self._loop.call_soon_threadsafe(self._loaded.set)
        log.info("engine %s: %s", state, message)

    async def _ready_text(self) -> ModelText:
        await self._loaded.wait()
        if self.state != "ready":
            raise Unavailable(self.error)
        return self.text

    # --- the application --------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._guard], client_max_size=MAX_BODY_BYTES)
        app.add_routes([
            web.get("/health", self.health),
            web.get("/v1/models", self.models),
            web.post("/v1/completions", self.completions),
            web.post("/v1/chat/completions", self.chat_completions),
            web.post("/tokenize", self.tokenize),
            web.post("/detokenize", self.detokenize),
            web.get("/metrics", self.metrics_page),
            web.get("/osslsp/attach", self.attach),
            web.get("/osslsp/trace", self.trace_page),
        ])
        return app

    def _authorized(self, request: web.Request) -> bool:
        """No token is set, or the request carries it as a bearer token."""
        if not self.token:
            return True
        expected = f"Bearer {self.token}".encode()
        return hmac.compare_digest(request.headers.get("Authorization", "").encode(), expected)

    @web.middleware
    async def _guard(self, request: web.Request, handler: Callable) -> web.StreamResponse:
        """The bearer token (when one is set); errors as OpenAI error objects; activity for the idle timer."""
        if request.path not in PUBLIC_PATHS and not self._authorized(request):
            return _error("missing or wrong bearer token (Authorization: Bearer TOKEN)",
                              "authentication_error", 401, headers={"WWW-Authenticate": "Bearer"})
        self.handling += 1
        self.last_active = time.monotonic()
        try:
            return await handler(request)
        except TooLarge as error:
            return _error(str(error), "invalid_request_error", 413)
        except BadRequest as error:
            return _error(str(error), "invalid_request_error", 400)
        except Unavailable as error:
            return _error(f"the model is not available: {error}", "service_unavailable", 503)
        except QueueFull as error:
            return _error(str(error), "rate_limit_exceeded", 429, headers={"Retry-After": str(error.retry_after)})
        finally:
            self.handling -= 1
            self.last_active = time.monotonic()

    async def health(self, request: web.Request) -> web.Response:
        """200 when the model is ready and the queue moves, 503 while it loads or when the queue is
        stuck, 500 when loading failed. The details (the model's name may be its path) go only to
        clients with the token."""
        stalled = self.queue.stalled_for()
        status = {"ready": 200, "loading": 503}.get(self.state, 500)
        body = {"status": self.state}
        if status == 200 and stalled > STALL_SECONDS:
            status, body["status"] = 503, "stuck"
        if self._authorized(request):
            body.update(model=self.model_name, message=self.error, queue_depth=self.queue.depth)
            if status == 503 and self.state == "ready":
                body["message"] = f"a finished request has held the engine for {stalled:.0f} s"
            if self.state == "ready":
                body.update(self.engine.loaded.describe())
        return web.json_response(body, status=status)

    async def models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [
            {"id": self.model_name, "object": "model", "created": 0, "owned_by": "osslsp"}]})

    async def metrics_page(self, request: web.Request) -> web.Response:
        return web.Response(text=self.metrics.render(), content_type="text/plain",
                            headers={"X-Prometheus-Format": "0.0.4"})

    async def tokenize(self, request: web.Request) -> web.Response:
        """vLLM's /tokenize: the ids of a prompt, as this engine's tokenizer makes them."""
        body = await _json_body(request)
        text = await self._ready_text()
        prompt = body.get("prompt")
        if not isinstance(prompt, str):
            raise BadRequest("prompt: expected a string")
        self._check_size(len(prompt))
        tokens = await asyncio.to_thread(text.encode, prompt)
        return web.json_response({"tokens": tokens, "count": len(tokens)})

    async def detokenize(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        text = await self._ready_text()
        return web.json_response({"prompt": text.decode(list(protocol.token_ids(body.get("tokens"), "tokens")))})

    async def trace_page(self, request: web.Request) -> web.Response:
        """Where the time went (`osslsp engine --trace`): request phases and step parts in ms;
        `?reset=1` starts over afterwards."""
        if self.engine.trace is None:
            return _error("not traced: start the engine with --trace", "invalid_request_error", 404)
        summary = self.engine.trace.summary(reset=request.query.get("reset") == "1")
        batch = self.engine.batch
        if batch is not None:  # the grouped GEMMs' tiles chosen at start, by step size (ms a layer)
            summary["expert_tile_ms"] = batch.runner.expert_tile_ms
        return web.json_response(summary)

    async def attach(self, request: web.Request) -> web.StreamResponse:
        """Held open by each language server using this engine; the engine is idle when none are."""
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(protocol.sse(json.dumps({"model": self.model_name})))
        task = asyncio.current_task()
        self._attachments.add(task)
        self.attached += 1
        try:
            await self.stopping.wait()
        finally:
            self.attached -= 1
            self._attachments.discard(task)
        return response

    # --- generation -------------------------------------------------------------------------

    async def completions(self, request: web.Request) -> web.StreamResponse:
        arrived = time.perf_counter()
        body = await _json_body(request)
        params = protocol.sampling_params(body, protocol.DEFAULT_COMPLETION_TOKENS)
        prompt = protocol.completion_prompt(body)
        text = await self._ready_text()
        self._check_model(params)
        self._check_size(len(prompt))
        prompt_ids = prompt if isinstance(prompt, list) else await asyncio.to_thread(text.encode, prompt)
        views = lambda: IncrementalText(lambda ids: text.decode(ids, skip_special=params.skip_special_tokens))  # noqa: E731
        request_id = protocol.new_request_id("cmpl")
        chunk = lambda delta, finish: protocol.completion_chunk(request_id, self.model_name, delta, finish)  # noqa: E731
        return await self._generate(request, "completions", arrived, prompt_ids, params, views, chunk, chunk)

    async def chat_completions(self, request: web.Request) -> web.StreamResponse:
        arrived = time.perf_counter()
        body = await _json_body(request)
        params = protocol.sampling_params(body, protocol.DEFAULT_CHAT_TOKENS)
        messages = [Message(role, content) for role, content in protocol.chat_messages(body)]
        text = await self._ready_text()
        self._check_model(params)
        self._check_size(sum(len(message.content) for message in messages))
        effort = body.get("reasoning_effort") if text.is_harmony else None
        try:
            prompt_text = await asyncio.to_thread(
                text.render, messages, reasoning_effort=effort if isinstance(effort, str) else None)
        except Exception as error:  # the chat template rejects the conversation
            raise BadRequest(f"messages: the chat template refused them: {error}") from error
        if text.is_harmony:  # the answer is the final channel; the analysis before it is not shown
            views = lambda: IncrementalText(text.decode, lambda whole: final_channel(whole, started_in_final=False))  # noqa: E731
        else:
            views = lambda: IncrementalText(lambda ids: text.decode(ids, skip_special=True))  # noqa: E731
        request_id = protocol.new_request_id("chatcmpl")
        first = [True]

        def chunk(delta: str, finish: str | None) -> dict:
            content = {"content": delta} if delta or finish is None else {}
            if first[0]:
                content, first[0] = {"role": "assistant", **content}, False
            return protocol.chat_chunk(request_id, self.model_name, content, finish)

        def whole(content: str, finish: str) -> dict:
            return protocol.chat_completion(request_id, self.model_name, content, finish)

        return await self._generate(request, "chat_completions", arrived,
                                    await asyncio.to_thread(text.encode, prompt_text),
                                    params, views, chunk, whole)

    def _check_size(self, length: int) -> None:
        """TooLarge for a prompt (characters, or token ids) that cannot fit the context."""
        limit = self.engine.max_context * MAX_PROMPT_CHARS_PER_TOKEN
        if length > limit:
            raise TooLarge(f"prompt: {length} characters cannot fit the engine's context of "
                           f"{self.engine.max_context} tokens (at most {limit} characters are read)")

    def _check_model(self, params: SamplingParams) -> None:
        if params.model and params.model != self.model_name:
            raise BadRequest(f"model {params.model!r} is not served here; this engine serves {self.model_name!r}")

    async def _generate(self, request: web.Request, endpoint: str, arrived: float, prompt_ids: list[int],
                        params: SamplingParams, views: Callable[[], Callable[[list[int]], str]],
                        chunk: Callable[[str, str | None], dict],
                        whole: Callable[[str, str], dict]) -> web.StreamResponse:
        """Run one generation: stream it as server-sent events (`chunk` builds each) or answer once
        at the end (`whole` builds the answer). `views` makes the answer's text from its ids
        (each call a new one: it keeps what it decoded)."""
        stop = StopText(params.stop, params.include_stop_str_in_output)
        client = params.user or f"connection-{id(request.transport)}"
        engine_request = build_request(self.text, self._special_ids, self.engine.max_context, prompt_ids, params,
                                       views, stop, client)
        view = views()
        response: web.StreamResponse | None = None
        ids: list[int] = []
        first_token, finish_reason, answer, marks = None, "cancelled", [], None
        try:
            async with self.queue.turn(client, engine_request) as generation:
                marks = generation.marks  # traced: handed to the trace when the request ends
                generation.mark("arrived", arrived)
                if params.stream:
                    response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                                           "Cache-Control": "no-cache"})
                    await response.prepare(request)
                try:
                    async for token in generation:
                        if first_token is None:
                            first_token = time.perf_counter()
                            generation.mark("first_received", first_token)
                        self.metrics.throughput.add()
                        ids.append(token)
                        delta = stop.update(view(ids))
                        if delta:
                            answer.append(delta)
                            if response is not None:
                                await response.write(protocol.sse(json.dumps(chunk(delta, None))))
                                generation.mark("first_written")
                        if stop.stopped:
                            break
                except EngineError as error:
                    finish_reason = "error"
                    return await self._fail(request, response, str(error))
                tail = stop.update(view(ids), final=True)
                answer.append(tail)
                finish_reason = "stop" if stop.stopped or generation.finish_reason != "length" else "length"
            usage = protocol.usage(len(prompt_ids), len(ids))
            if response is None:
                return web.json_response({**whole("".join(answer), finish_reason), "usage": usage})
            await response.write(protocol.sse(json.dumps(chunk(tail, finish_reason))))
            if params.include_usage:
                await response.write(protocol.sse(json.dumps({**chunk("", None), "choices": [], "usage": usage})))
            await response.write(protocol.sse(protocol.DONE))
            await response.write_eof()
            return response
        except ConnectionError:  # the client went away between two tokens
            finish_reason = "cancelled"
            raise asyncio.CancelledError from None
        finally:
            finished = time.perf_counter()
            if marks is not None:
                marks["finished"] = finished
                self.engine.trace.add_request(marks)
            self.metrics.finished(endpoint, finish_reason, arrived, first_token, finished, len(prompt_ids), len(ids))
            self.audit.record(prompt_ids, kind=endpoint, client=client, model=self.model_name, answer="".join(answer),
                              timings={"ttft_ms": round(((first_token or finished) - arrived) * 1000, 1),
                                       "total_ms": round((finished - arrived) * 1000, 1),
                                       "prompt_tokens": len(prompt_ids)},
                              withheld=None if finish_reason in ("stop", "length") else finish_reason)

    async def _fail(self, request: web.Request, response: web.StreamResponse | None,
                    message: str) -> web.StreamResponse:
        body = protocol.error_body(message, "engine_error", 500)
        if response is None:
            return web.json_response(body, status=500)
        await response.write(protocol.sse(json.dumps(body)))
        await response.write_eof()
        return response

    # --- life cycle -------------------------------------------------------------------------

    def idle(self) -> bool:
        """Loaded (well or not), no language server attached, nothing being served."""
        return self.state != "loading" and self.attached == 0 and self.handling == 0 and self.queue.depth == 0

    async def watch_idle(self) -> None:
        """Set `stopping` once idle for `idle_timeout` seconds (never when the timeout is 0)."""
        if self.idle_timeout <= 0:
            return
        while not self.stopping.is_set():
            await asyncio.sleep(min(1.0, self.idle_timeout / 4))
            if not self.idle():
                self.last_active = time.monotonic()
            elif time.monotonic() - self.last_active >= self.idle_timeout:
                log.info("idle for %.0f s: stopping", self.idle_timeout)
                self.stopping.set()


def _error(message: str, kind: str, status: int, headers: dict | None = None) -> web.Response:
    return web.json_response(protocol.error_body(message, kind, status), status=status, headers=headers)


async def _json_body(request: web.Request) -> dict:
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError) as error:
        raise BadRequest(f"the request body is not JSON: {error}") from error
    except RecursionError:
        raise BadRequest("the request body is nested too deeply") from None
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    return body
