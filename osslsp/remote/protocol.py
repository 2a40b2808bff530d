"""The OpenAI-compatible completions API as plain data: requests read and checked, responses and
stream chunks built, stop strings applied, server-sent events parsed. No HTTP and no torch here.

Shapes follow the OpenAI API reference for `/v1/completions` and `/v1/chat/completions`, with
vLLM's extensions that a code assistant needs (`skip_special_tokens`,
`include_stop_str_in_output`, `stop_token_ids`, a prompt given as token ids).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from typing import Any

from osslsp.sampling import Sampling

DONE = "[DONE]"
DEFAULT_COMPLETION_TOKENS = 16  # OpenAI's default for /v1/completions
DEFAULT_CHAT_TOKENS = 2048
MAX_TOKENS = 32768
MAX_STOP_STRINGS = 16  # OpenAI allows 4; each is looked for after every token
MAX_STOP_CHARS = 256
SEED_RANGE = (-2**63, 2**64 - 1)  # what torch.manual_seed accepts


class BadRequest(ValueError):
    """The request is malformed; the message says which field and why (answered with 400)."""


@dataclass(frozen=True, kw_only=True)
class SamplingParams(Sampling):
    """What every generation endpoint accepts: the sampling (`max_tokens` is `max_new_tokens`) and
    what the API adds around it."""

    model: str | None
    stop: tuple[str, ...]
    stop_token_ids: tuple[int, ...]
    stream: bool
    include_usage: bool
    skip_special_tokens: bool
    include_stop_str_in_output: bool
    ignore_eos: bool  # vLLM's extension: generate past end-of-text (fixed-length load tests)
    user: str | None

    @property
    def max_tokens(self) -> int:
        """The API's name for `max_new_tokens`."""
        return self.max_new_tokens


def _field(body: dict, name: str, kinds: type | tuple[type, ...], default: Any) -> Any:
    value = body.get(name, default)
    if value is None:
        return default
    if isinstance(value, bool) and bool not in (kinds if isinstance(kinds, tuple) else (kinds,)):
        raise BadRequest(f"{name}: expected {kinds}, got a boolean")
    if not isinstance(value, kinds):
        raise BadRequest(f"{name}: expected {getattr(kinds, '__name__', kinds)}, got {type(value).__name__}")
    return value


def _number_field(body: dict, name: str, default: float, low: float, high: float) -> float:
    value = float(_field(body, name, (int, float), default))
    if not low <= value <= high:
        raise BadRequest(f"{name}: expected a value from {low:g} to {high:g}, got {value:g}")
    return value


def _stop_strings(body: dict) -> tuple[str, ...]:
    stop = body.get("stop")
    if stop is None:
        return ()
    if isinstance(stop, str):
        stop = [stop]
    if not isinstance(stop, list) or not all(isinstance(item, str) and item for item in stop):
        raise BadRequest("stop: expected a non-empty string or a list of them")
    if len(stop) > MAX_STOP_STRINGS or any(len(item) > MAX_STOP_CHARS for item in stop):
        raise BadRequest(f"stop: at most {MAX_STOP_STRINGS} strings of at most {MAX_STOP_CHARS} characters")
    return tuple(stop)


def _seed(body: dict) -> int:
    seed = _field(body, "seed", int, 0)
    if not SEED_RANGE[0] <= seed <= SEED_RANGE[1]:
        raise BadRequest(f"seed: expected a 64-bit integer, from {SEED_RANGE[0]} to {SEED_RANGE[1]}")
    return seed


def token_ids(value: Any, name: str) -> tuple[int, ...]:
    """Non-negative integers (not booleans), checked at C speed: a prompt has thousands."""
    if not isinstance(value, list) or not set(map(type, value)) <= {int} or (value and min(value) < 0):
        raise BadRequest(f"{name}: expected a list of token ids")
    return tuple(value)


def sampling_params(body: Any, default_max_tokens: int) -> SamplingParams:
    """The sampling fields of a request body; BadRequest names the first bad one."""
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    if _field(body, "n", int, 1) != 1:
        raise BadRequest("n: only 1 is supported")
    if _field(body, "echo", bool, False):
        raise BadRequest("echo: not supported")
    stream_options = _field(body, "stream_options", dict, {})
    return SamplingParams(
        model=_field(body, "model", str, None),
        max_new_tokens=int(_number_field(body, "max_tokens",
                                         _field(body, "max_completion_tokens", int, default_max_tokens),
                                         1, MAX_TOKENS)),
        temperature=_number_field(body, "temperature", 1.0, 0.0, 2.0),
        top_p=_number_field(body, "top_p", 1.0, 0.0, 1.0) or 1.0,
        seed=_seed(body),
        stop=_stop_strings(body),
        stop_token_ids=token_ids(body.get("stop_token_ids") or [], "stop_token_ids"),
        stream=_field(body, "stream", bool, False),
        include_usage=bool(stream_options.get("include_usage", False)),
        skip_special_tokens=_field(body, "skip_special_tokens", bool, True),
        include_stop_str_in_output=_field(body, "include_stop_str_in_output", bool, False),
        ignore_eos=_field(body, "ignore_eos", bool, False),
        user=_field(body, "user", str, None),
    )


def completion_prompt(body: dict) -> str | list[int]:
    """`prompt` of /v1/completions: one text or one list of token ids (batches are not served)."""
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], (str, list)):
        prompt = prompt[0]  # a batch of one
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, list) and prompt:
        return list(token_ids(prompt, "prompt"))
    raise BadRequest("prompt: expected a string or a non-empty list of token ids")


def chat_messages(body: dict) -> list[tuple[str, str]]:
    """(role, content) pairs of /v1/chat/completions; content parts of type text are joined."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("messages: expected a non-empty list")
    pairs = []
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise BadRequest(f"messages[{index}]: expected an object with a role")
        content = message.get("content") or ""
        if isinstance(content, list):
            content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
        if not isinstance(content, str):
            raise BadRequest(f"messages[{index}].content: expected a string")
        pairs.append((message["role"], content))
    return pairs


def held_back(text: str, stops: tuple[str, ...]) -> int:
    """How many characters at the end of `text` might begin a stop string (not to be shown yet)."""
    longest = 0
    for stop in stops:
        for size in range(min(len(stop) - 1, len(text)), longest, -1):
            if text.endswith(stop[:size]):
                longest = size
                break
    return longest


class StopText:
    """Generated text as the client may see it: cut at the first stop string, and never showing
    what might be the start of one until the next token settles it."""

    def __init__(self, stops: tuple[str, ...], include_stop: bool):
        self.stops = stops
        self.include_stop = include_stop
        self.shown = ""
        self.stopped = False

    def update(self, text: str, final: bool = False) -> str:
        """The delta to send, given all text decoded so far; `final`: no more tokens come."""
        if self.stopped:
            return ""
        cut = self.find_stop(text)
        if cut is not None:
            self.stopped = True
            visible = text[:cut]
        elif final:
            visible = text.rstrip("\ufffd")
        else:
            visible = text[: len(text) - held_back(text, self.stops)]
            if visible.endswith("\ufffd"):  # half a UTF-8 character: wait for the rest
                visible = visible.rstrip("\ufffd")
        if len(visible) <= len(self.shown):
            return ""
        delta, self.shown = visible[len(self.shown):], visible
        return delta

    def find_stop(self, text: str) -> int | None:
        """Where the visible text ends when a stop string occurs (the earliest one), else None."""
        found = [(index, stop) for stop in self.stops if (index := text.find(stop)) >= 0]
        if not found:
            return None
        index, stop = min(found)
        return index + len(stop) if self.include_stop else index


def _envelope(kind: str, model: str, request_id: str) -> dict[str, Any]:
    return {"id": request_id, "object": kind, "created": int(time.time()), "model": model}


def new_request_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


def completion_chunk(request_id: str, model: str, text: str, finish_reason: str | None) -> dict[str, Any]:
    """One `text_completion` object; streaming sends many, each with the new text only."""
    return {**_envelope("text_completion", model, request_id),
            "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": finish_reason}]}


def chat_chunk(request_id: str, model: str, delta: dict[str, str], finish_reason: str | None) -> dict[str, Any]:
    return {**_envelope("chat.completion.chunk", model, request_id),
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]}


def chat_completion(request_id: str, model: str, content: str, finish_reason: str) -> dict[str, Any]:
    return {**_envelope("chat.completion", model, request_id),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                         "logprobs": None, "finish_reason": finish_reason}]}


def error_body(message: str, kind: str, code: int) -> dict[str, Any]:
    """OpenAI's error object."""
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def sse(data: str) -> bytes:
    """One server-sent event carrying `data` (JSON text or [DONE])."""
    return f"data: {data}\n\n".encode()


async def sse_data(lines: AsyncIterable[bytes]) -> AsyncIterator[str]:
    """The `data` of each server-sent event in a stream of lines (comments and other fields skipped)."""
    data: list[str] = []
    async for raw in lines:
        line = raw.decode("utf-8").rstrip("\r\n")
        if not line:
            if data:
                yield "\n".join(data)
                data = []
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
    if data:
        yield "\n".join(data)
