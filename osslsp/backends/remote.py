"""The remote backend: generation by an OpenAI-compatible server, everything else stays here.

`RemoteBackend` implements `osslsp.backends.base.Backend`. It sends the prompt text the language server
built to `/v1/completions` with `stream: true` and yields the text as it arrives. Cancelling a
stream closes its HTTP response, which stops the generation at the server's next step (our
engine; vLLM and SGLang abort a request whose client is gone). Stop ids travel as their token
strings, `stop_when` is checked here, and a newer request with the same key cancels the older.
A `SharedEngine` (osslsp/backends/shared.py) is found, and started when missing, while connecting.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from osslsp.backends.shared import SharedEngine
from osslsp.prompts.modeltext import ModelText
from osslsp.remote import protocol

log = logging.getLogger(__name__)


class RemoteError(Exception):
    """The engine could not be reached or refused; the message says what to do."""


@dataclass(frozen=True)
class Endpoint:
    """Where an OpenAI-compatible server answers: a base URL, or a Unix socket."""

    url: str  # no trailing slash; for a Unix socket only the path part of requests matters
    socket: Path | None = None
    token: str = ""

    @classmethod
    def parse(cls, value: str, token: str = "") -> Endpoint:
        """`http(s)://host:port[/prefix]` or `unix:PATH`; RemoteError says what is wrong."""
        if value.startswith("unix:") and len(value) > 5:
            return cls("http://localhost", Path(value[5:]).expanduser(), token)
        if value.startswith(("http://", "https://")) and len(value.split("://", 1)[1].strip("/")) > 0:
            return cls(value.rstrip("/").removesuffix("/v1"), None, token)
        raise RemoteError(f'osslsp.engine = {value!r}: expected "local", "shared", '
                          'an http(s)://host:port URL or unix:PATH')

    def __str__(self) -> str:
        return f"unix:{self.socket}" if self.socket else self.url


class RemoteTextStream:
    """Text deltas from one streamed completion; cancel() closes the response."""

    def __init__(self, backend: RemoteBackend, body: dict[str, Any], key: str | None,
                 stop_when: Callable[[str], bool] | None):
        self._backend = backend
        self._key = key
        self._body = body
        self._stop_when = stop_when
        self._response: aiohttp.ClientResponse | None = None
        self._cancelled = False
        self.finish_reason = ""

    def cancel(self) -> None:
        if not self.finish_reason:
            self.finish_reason = "cancelled"
        self._cancelled = True
        if self._response is not None:
            self._response.close()

    def _stop(self, reason: str) -> None:
        self.finish_reason = self.finish_reason or reason
        if self._response is not None:
            self._response.close()

    async def __aiter__(self) -> AsyncIterator[str]:
        if self._cancelled:
            return
        text = ""
        try:
            async with self._backend.post("/v1/completions", self._body) as response:
                self._response = response
                await _check(response, str(self._backend.endpoint))
                async for data in protocol.sse_data(response.content):
                    if data == protocol.DONE or self._cancelled:
                        break
                    choice = _choice(json.loads(data), str(self._backend.endpoint))
                    if choice is None:
                        continue  # the usage chunk
                    if choice.get("text"):
                        text += choice["text"]
                        yield choice["text"]
                        if self._stop_when is not None and self._stop_when(text):
                            self._stop("stop")
                            return
                    if choice.get("finish_reason"):
                        self.finish_reason = self.finish_reason or choice["finish_reason"]
        except asyncio.CancelledError:
            self.cancel()
            raise
        except (aiohttp.ClientError, ConnectionError, ValueError) as error:
            if not self._cancelled:
                raise RemoteError(f"the engine at {self._backend.endpoint} failed: {error}") from error
        finally:
            self._response = None
            self._backend.forget(self._key, self)
        self.finish_reason = self.finish_reason or "stop"


def _choice(chunk: Any, where: str) -> dict | None:
    if not isinstance(chunk, dict):
        raise RemoteError(f"the engine at {where} sent {chunk!r}, not a completion chunk")
    if "error" in chunk:
        error = chunk["error"]
        raise RemoteError(f"the engine at {where}: {error.get('message') if isinstance(error, dict) else error}")
    choices = chunk.get("choices") or []
    return choices[0] if choices else None


async def _check(response: aiohttp.ClientResponse, where: str) -> None:
    """RemoteError with the server's own message for any answer but 200."""
    if response.status == 200:
        return
    text = await response.text()
    try:
        message = json.loads(text)["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = text.strip()[:300] or response.reason
    if response.status == 401:
        raise RemoteError(f"the engine at {where} refused the token ({message}): set osslsp.engineToken "
                          "to the token the engine was started with")
    raise RemoteError(f"the engine at {where} answered {response.status}: {message}")


class RemoteBackend:
    """Generation by an OpenAI-compatible server (our `osslsp engine`, vLLM, SGLang, llama.cpp)."""

    # The completions API cannot hold the first tokens to a text, so prompts reach it unhealed
    # (osslsp/prompts/healing.py): a pause after a space may then get an empty answer.
    constrains_tokens = False

    def __init__(self, endpoint: Endpoint, model: str, text_loader: Callable[[], ModelText],
                 on_state: Callable[[str, str], None], shared: SharedEngine | None = None):
        self.endpoint = endpoint
        self.model = model  # replaced by the name the server serves it under
        self.shared = shared
        # The shared engine loaded the very files our tokenizer comes from: it takes the ids we
        # already have and skips tokenizing. Any other server gets text, its tokenizer's business.
        self.send_ids = shared is not None
        self._text_loader = text_loader
        self._on_state = on_state
        self.state, self.error = "loading", ""
        self.client_id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._session: aiohttp.ClientSession | None = None
        self._connecting: asyncio.Task | None = None
        self._attachment: asyncio.Task | None = None
        self._health: dict[str, Any] = {}
        self.max_model_len: int | None = None  # from /v1/models where the server says (vLLM, SGLang)
        self._latest: dict[str, RemoteTextStream] = {}
        self._closed = False

    # --- the Backend protocol ---------------------------------------------------------------

    def start(self) -> None:
        self._connecting = asyncio.get_running_loop().create_task(self._connect())

    async def wait_ready(self) -> None:
        if self._connecting is None:
            self.start()
        await asyncio.shield(self._connecting)

    def stream(self, prompt_text: str, prompt_ids: list[int], stop_ids: frozenset[int], settings,
               key: str | None, stop_when: Callable[[str], bool] | None) -> RemoteTextStream:
        text = self._text_loader()
        body = {
            "model": self.model,
            "prompt": prompt_ids if self.send_ids else prompt_text,
            "max_tokens": self._max_tokens(settings.max_new_tokens, len(prompt_ids)),
            "temperature": settings.temperature,
            "stream": True,
            "stop": sorted(text.decode([token]) for token in stop_ids),
            "skip_special_tokens": False,  # harmony markers come back, as they do in-process
            "user": self.client_id,  # the engine takes turns between clients
        }
        stream = RemoteTextStream(self, body, key, stop_when)
        if key is not None:
            older = self._latest.get(key)
            if older is not None:
                older.cancel()
            self._latest[key] = stream
        return stream

    def _max_tokens(self, wanted: int, prompt_tokens: int) -> int:
        """`wanted`, clipped to what the server's context leaves: vLLM and SGLang answer 400 to a
        prompt plus max_tokens past it, where our engine and llama.cpp clip. One token spare:
        SGLang wants the sum below the context, and a server may add a BOS to a text prompt."""
        if self.max_model_len is None:
            return wanted
        return max(1, min(wanted, self.max_model_len - prompt_tokens - 1))

    def forget(self, key: str | None, stream: RemoteTextStream) -> None:
        """A stream has ended: it no longer stands for its key."""
        if key is not None and self._latest.get(key) is stream:
            del self._latest[key]

    def describe(self) -> dict[str, object]:
        return {"engine": str(self.endpoint), "model": self.model, **self._health}

    def join(self) -> None:
        """Nothing to wait for: the model lives in the server."""

    def close(self) -> None:
        self._closed = True
        for task in (self._connecting, self._attachment):
            if task is not None:
                task.cancel()
        if self._session is not None and not self._session.closed:
            asyncio.get_running_loop().create_task(self._session.close())

    # --- HTTP -------------------------------------------------------------------------------

    def post(self, path: str, body: dict[str, Any]):
        return self._client().post(self.endpoint.url + path, json=body)

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = (aiohttp.UnixConnector(path=str(self.endpoint.socket)) if self.endpoint.socket
                         else aiohttp.TCPConnector())
            headers = {"Authorization": f"Bearer {self.endpoint.token}"} if self.endpoint.token else {}
            self._session = aiohttp.ClientSession(
                connector=connector, headers=headers,
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=10))
        return self._session

    async def _get(self, path: str) -> tuple[int, Any]:
        async with self._client().get(self.endpoint.url + path) as response:
            if response.status == 401:
                await _check(response, str(self.endpoint))
            text = await response.text()
            try:
                return response.status, json.loads(text) if text else {}
            except ValueError:
                return response.status, {}

    # --- connecting -------------------------------------------------------------------------

    def _set_state(self, state: str, message: str) -> None:
        self.state = state
        self.error = message if state == "error" else ""
        self._on_state(state, message)

    async def _connect(self) -> None:
        self._set_state("loading", f"connecting to the engine at {self.endpoint}")
        try:
            await self._wait_healthy()
            if self.shared is not None:  # at once: an idle shared engine leaves after its timeout
                self._attachment = asyncio.get_running_loop().create_task(self._stay_attached())
            status, models = await self._get("/v1/models")
            cards = [m for m in models.get("data", []) if isinstance(m, dict)] if status == 200 else []
            served = [card.get("id") for card in cards]
            if served and self.model not in served:
                self.model = served[0]
            length = next((card.get("max_model_len") for card in cards if card.get("id") == self.model), None)
            self.max_model_len = length if isinstance(length, int) and not isinstance(length, bool) else None
            await asyncio.to_thread(self._text_loader)
        except Exception as error:  # unreachable, refused, or no tokenizer here: as bad as no model
            self._set_state("error", str(error))
            return
        self._set_state("ready", f"{self.model} ready on the engine at {self.endpoint}")

    async def _wait_healthy(self) -> None:
        """Until /health says ready; starts the shared engine when none answers."""
        launched = False
        while True:
            try:
                status, self._health = await self._get("/health")
            except (aiohttp.ClientConnectionError, OSError) as error:
                if self.shared is None:
                    raise RemoteError(f"cannot reach the engine at {self.endpoint}: {error}. Is it running? "
                                      "(`osslsp engine --listen HOST:PORT`, vLLM, SGLang, llama.cpp's server)") from error
                if not launched:
                    self.shared.launch()
                    launched = True
                elif (failure := self.shared.failure()) is not None:
                    raise RemoteError(failure) from error
                await asyncio.sleep(0.1)
                continue
            if status == 200:
                return
            if status == 404:  # /health is ours and vLLM's, not the OpenAI API's (llama.cpp lacks it)
                await self._wait_models()
                return
            if status != 503:  # 503: still loading
                raise RemoteError(f"the engine at {self.endpoint} cannot serve: "
                                  f"{self._health.get('message') or self._health or status}")
            await asyncio.sleep(0.2)

    async def _wait_models(self) -> None:
        """Readiness from /v1/models, for a server without /health: 503 is still loading, 200 or
        404 (no such endpoint either) leave it to the first request to tell."""
        while True:
            status, answer = await self._get("/v1/models")
            if status in (200, 404):
                return
            if status != 503:
                raise RemoteError(f"the engine at {self.endpoint} cannot serve: /v1/models answered "
                                  f"{status} {answer.get('error') or answer or ''}".rstrip())
            await asyncio.sleep(0.2)

    async def _stay_attached(self) -> None:
        """Hold /osslsp/attach open, so the shared engine knows this window uses it; start it
        again if it goes away while this window lives."""
        try:
            async with self._client().get(self.endpoint.url + "/osslsp/attach") as response:
                async for _ in response.content:
                    pass
        except (aiohttp.ClientError, OSError):
            pass
        if not self._closed:
            log.warning("the shared engine at %s went away: starting it again", self.endpoint)
            self._connecting = asyncio.get_running_loop().create_task(self._connect())
