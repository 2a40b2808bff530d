"""The requests the remote backend sends, checked against what vLLM, SGLang, TensorRT-LLM and
llama.cpp accept.

vLLM, SGLang and TensorRT-LLM need a GPU, so they cannot run here; their request models can be
read. The tables below copy, field by field, the types and ranges of their `/v1/completions`
request (named by file and commit) for every field we send or may send. A real `osslsp serve` talks to a
loopback server that records each body and answers as those servers do; every body must fit all
tables, our own engine's parser, and the context the server announced in /v1/models.
docs/remote-engines.md says the same per field.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from osslsp.backends import GenerationSettings
from osslsp.remote import protocol
from osslsp.backends.remote import Endpoint, RemoteBackend
from tests.conftest import REPO
from tests.remote.conftest import SERVE_TINY_FOLDER
from tests.test_server import inline_params, open_document, wait_until_ready

pytestmark = pytest.mark.asyncio(loop_scope="module")

MAX_MODEL_LEN = 4096  # a GPU team's `vllm serve --max-model-len 4096`
SERVED = "served-model"
INT64 = (-(2**63), 2**63 - 1)


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:  # pydantic takes an int for a float field
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_str(value: Any) -> bool:
    return isinstance(value, str)


def is_bool(value: Any) -> bool:
    return isinstance(value, bool)


def is_ids(value: Any) -> bool:
    return isinstance(value, list) and all(is_int(item) for item in value)


def is_str_or_strs(value: Any) -> bool:
    return is_str(value) or (isinstance(value, list) and all(is_str(item) for item in value))


def is_prompt(value: Any) -> bool:
    """list[int] | list[list[int]] | str | list[str]"""
    return is_str_or_strs(value) or is_ids(value) or (
        isinstance(value, list) and all(is_ids(item) for item in value))


def is_bias(value: Any) -> bool:
    """dict[str, float]"""
    return isinstance(value, dict) and all(is_str(k) and is_number(v) for k, v in value.items())


def stop_list(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


@dataclass(frozen=True)
class Field:
    accepts: Callable[[Any], bool]
    valid: Callable[[Any], bool] = lambda value: True  # the server's own range check, where it has one


@dataclass(frozen=True)
class Schema:
    server: str
    source: str
    fields: dict[str, Field]
    required: tuple[str, ...] = ()
    ignored: frozenset[str] = field(default_factory=frozenset)  # not declared: dropped, known and accepted

    def problems(self, body: dict[str, Any]) -> list[str]:
        found = [f"{self.server}: {name} is required" for name in self.required if name not in body]
        for name, value in body.items():
            if name in self.ignored or value is None:
                continue
            if name not in self.fields:
                found.append(f"{self.server}: {name} is not a field of its request ({self.source})")
            elif not self.fields[name].accepts(value):
                found.append(f"{self.server}: {name}={value!r} has the wrong type")
            elif not self.fields[name].valid(value):
                found.append(f"{self.server}: {name}={value!r} is out of its range")
        return found


VLLM = Schema(
    "vLLM",
    "vllm-project/vllm vllm/entrypoints/openai/completion/protocol.py @ d5dba2d7b0ab9b98096560c69db7126b54b14d79 "
    "(CompletionRequest; OpenAIBaseModel extra='allow' in engine/protocol.py "
    "@ d7e52523a55cfd60207c99d9f3b7ed527d2115b7); "
    "ranges: vllm/sampling_params.py @ db573835d3ef40643442e0817059e087355cf458 (SamplingParams._verify_args)",
    {
        "model": Field(is_str),
        "prompt": Field(is_prompt, lambda value: value not in ("", [])),  # validate_prompt_and_prompt_embeds
        "max_tokens": Field(is_int, lambda value: value >= 1),
        "temperature": Field(is_number, lambda value: value >= 0),
        "top_p": Field(is_number, lambda value: 0 < value <= 1),
        "seed": Field(is_int, lambda value: INT64[0] <= value <= INT64[1]),
        "stop": Field(is_str_or_strs, lambda value: all(stop_list(value))),  # "stop cannot contain an empty string"
        "stream": Field(is_bool),
        "stream_options": Field(lambda value: isinstance(value, dict)),
        "user": Field(is_str),
        "n": Field(is_int, lambda value: value >= 1),
        "echo": Field(is_bool),
        "logit_bias": Field(is_bias),
        "stop_token_ids": Field(is_ids),
        "skip_special_tokens": Field(is_bool),
        "include_stop_str_in_output": Field(is_bool),
    },
)
SGLANG = Schema(
    "SGLang",
    "sgl-project/sglang python/sglang/srt/entrypoints/openai/protocol.py @ 9b116dffe828b2dfa7ec0e4d061555b6c354b67a "
    "(CompletionRequest, pydantic's default extra='ignore'); ranges: python/sglang/srt/sampling/sampling_params.py "
    "@ 0bebedd800a35ae29a9adeab6617605970d724bd (SamplingParams.verify)",
    {
        "model": Field(is_str),
        "prompt": Field(is_prompt),
        "max_tokens": Field(is_int, lambda value: value > 0),  # validate_max_tokens_positive
        "temperature": Field(is_number, lambda value: value >= 0),
        "top_p": Field(is_number, lambda value: 0 < value <= 1),
        "seed": Field(is_int),
        "stop": Field(is_str_or_strs),
        "stream": Field(is_bool),
        "stream_options": Field(lambda value: isinstance(value, dict)),
        "user": Field(is_str),
        "n": Field(is_int),
        "echo": Field(is_bool),
        "logit_bias": Field(is_bias),
        "stop_token_ids": Field(is_ids),
        "skip_special_tokens": Field(is_bool),
    },
    required=("model", "prompt"),  # `model: str` has no default at this commit
)
TENSORRT_LLM = Schema(
    "TensorRT-LLM",
    "NVIDIA/TensorRT-LLM tensorrt_llm/serve/openai_protocol.py @ 54cf7be08a3582024dfa6791e8bb8b2034bfad67 "
    "(CompletionRequest, adapted from vLLM's: each field of vLLM's table with the same type, no range "
    "checks in the request; OpenAIBaseModel extra='forbid': an undeclared field is a 400)",
    {name: Field(spec.accepts) for name, spec in VLLM.fields.items()},
    required=("model", "prompt"),
)
LLAMA_CPP = Schema(
    "llama.cpp",
    "llama-cpp-python 0.3.36 (PyPI sdist) llama_cpp/server/types.py (CreateCompletionRequest, pydantic's default "
    "extra='ignore')",
    {
        "model": Field(is_str),
        "prompt": Field(is_str_or_strs),  # text only: no token ids
        "max_tokens": Field(is_int, lambda value: value >= 0),
        "temperature": Field(is_number),
        "top_p": Field(is_number, lambda value: 0 <= value <= 1),
        "seed": Field(is_int),
        "stop": Field(is_str_or_strs),
        "stream": Field(is_bool),
        "user": Field(is_str),
        "n": Field(is_int),
        "echo": Field(is_bool),
        "logit_bias": Field(is_bias),
    },
    # It has no such switch; its text keeps special tokens out, and EOS ends the answer anyway.
    ignored=frozenset({"skip_special_tokens"}),
)


class Recorder(ThreadingHTTPServer):
    """An OpenAI-compatible server on loopback that keeps every request body and answers each
    completion with one streamed chunk, as vLLM does (its /health is 200 with an empty body)."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), RecordingHandler)
        self.bodies: list[dict[str, Any]] = []
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


class RecordingHandler(BaseHTTPRequestHandler):
    server: Recorder

    def log_message(self, *args) -> None:
        pass

    def _send(self, status: int, data: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == "/health":
            self._send(200, b"")
        elif self.path == "/v1/models":
            card = {"id": SERVED, "object": "model", "owned_by": "vllm", "max_model_len": MAX_MODEL_LEN}
            self._send(200, json.dumps({"object": "list", "data": [card]}).encode())
        else:
            self._send(404, b'{"detail": "Not Found"}')

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.bodies.append(body)
        chunks = [protocol.completion_chunk("cmpl-1", SERVED, "pass", None),
                  protocol.completion_chunk("cmpl-1", SERVED, "", "stop")]
        self._send(200, b"".join(protocol.sse(json.dumps(chunk)) for chunk in chunks) + protocol.sse(protocol.DONE),
                   "text/event-stream")


@pytest.fixture(scope="module")
def recorder():
    server = Recorder()
    yield server
    server.stop()


@pytest_lsp.fixture(scope="module", config=ClientServerConfig(server_command=SERVE_TINY_FOLDER))
async def client(lsp_client: LanguageClient, recorder, tiny_dir):
    @lsp_client.feature(types.WORKSPACE_APPLY_EDIT)
    def apply_edit(params: types.ApplyWorkspaceEditParams) -> types.ApplyWorkspaceEditResult:
        return types.ApplyWorkspaceEditResult(applied=True)

    await lsp_client.initialize_session(types.InitializeParams(
        capabilities=client_capabilities("visual-studio-code"),
        root_uri=REPO.as_uri(),
        # The largest answers a user may ask for: more than the server's context leaves.
        initialization_options={"maxNewTokens": 4096, "contextTokens": 1024, "engine": recorder.url},
    ))
    status = await wait_until_ready(lsp_client)
    assert status.state == "ready", status.message
    yield
    await lsp_client.shutdown_session()


def check(body: dict[str, Any], prompt_tokens: int) -> list[str]:
    """Why vLLM, SGLang, TensorRT-LLM, llama.cpp or our engine would refuse this body (empty: none would)."""
    schemas = (VLLM, SGLANG, TENSORRT_LLM) + (() if is_ids(body.get("prompt")) else (LLAMA_CPP,))
    found = [problem for schema in schemas for problem in schema.problems(body)]
    try:
        protocol.sampling_params(body, protocol.DEFAULT_COMPLETION_TOKENS)
        protocol.completion_prompt(body)
    except protocol.BadRequest as error:
        found.append(f"osslsp engine: {error}")
    # vLLM refuses a sum over max_model_len, SGLang one that reaches it (tokenizer_manager.py).
    if prompt_tokens + body.get("max_tokens", 16) >= MAX_MODEL_LEN:
        found.append(f"vLLM and SGLang: {prompt_tokens} prompt tokens + max_tokens {body.get('max_tokens')} "
                     f"do not fit the announced max_model_len {MAX_MODEL_LEN}")
    return found


async def test_every_request_of_completion_generate_and_explain_fits_each_server(
        client: LanguageClient, recorder: Recorder, tiny_text):
    made = []
    text = 'def add(a, b):\n    """Return the sum of a and b."""\n    return\n'
    uri = open_document(client, "shape_add.py", text)
    await client.text_document_inline_completion_async(inline_params(uri, 2, 10))
    made.append(len(recorder.bodies))
    stub = open_document(client, "shape_stub.py", text.replace("return", "pass"))
    await client.workspace_execute_command_async(types.ExecuteCommandParams(
        command="osslsp.generate", arguments=[stub, {"line": 0, "character": 5}]))
    made.append(len(recorder.bodies))
    selection = types.Range(start=types.Position(line=0, character=0), end=types.Position(line=2, character=10))
    await asyncio.wait_for(client.workspace_execute_command_async(types.ExecuteCommandParams(
        command="osslsp.explain", arguments=[uri, selection])), 60)
    made.append(len(recorder.bodies))

    assert made[0] >= 1 and made[1] > made[0] and made[2] > made[1], made  # each sent at least one request
    for body in recorder.bodies:
        assert body["model"] == SERVED and body["stream"] is True and body["stop"]
        assert check(body, tiny_text.count(body["prompt"])) == []


async def test_token_id_prompts_fit_vllm_sglang_and_tensorrt_llm(recorder: Recorder, tiny_text):
    # Only our shared engine gets ids (it has our tokenizer); the GPU servers would take them too.
    states = []
    backend = RemoteBackend(Endpoint.parse(recorder.url), "gpt-oss-20b", lambda: tiny_text,
                            lambda state, message: states.append((state, message)))
    backend.send_ids = True
    await backend.wait_ready()
    assert backend.state == "ready", states
    prompt = "<|start|>user<|message|>Say hi<|end|><|start|>assistant"
    ids = tiny_text.encode(prompt)
    before = len(recorder.bodies)
    settings = GenerationSettings(max_new_tokens=MAX_MODEL_LEN)
    stream = backend.stream(prompt, ids, tiny_text.stop_ids, settings, None, None)
    assert "".join([delta async for delta in stream]) == "pass"
    backend.close()
    [body] = recorder.bodies[before:]
    assert body["prompt"] == ids
    assert body["max_tokens"] == MAX_MODEL_LEN - len(ids) - 1  # what the announced context leaves
    assert check(body, len(ids)) == []


async def test_the_tables_catch_what_the_servers_refuse():
    good = {"model": SERVED, "prompt": "x", "max_tokens": 8, "temperature": 0.0, "stream": True,
            "stop": ["<|end|>"], "skip_special_tokens": False, "user": "me"}
    assert check(good, 1) == []
    refused = {
        "an empty stop string": {"stop": ["<|end|>", ""]},
        "max_tokens 0": {"max_tokens": 0},
        "a negative temperature": {"temperature": -0.5},
        "a field none of them has": {"top_a": 0.5},
        "a seed past 64 bits": {"seed": 2**64},
        "a prompt plus max_tokens past the context": {"max_tokens": MAX_MODEL_LEN},
    }
    for what, change in refused.items():
        assert check({**good, **change}, 1), what
    assert LLAMA_CPP.problems({**good, "prompt": [1, 2, 3]}), "llama.cpp takes no token ids"
    assert TENSORRT_LLM.problems({**good, "top_a": 0.5}), "TensorRT-LLM forbids undeclared fields"
    assert SGLANG.problems({key: value for key, value in good.items() if key != "model"}), "SGLang needs model"
