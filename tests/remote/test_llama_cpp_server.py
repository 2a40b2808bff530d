"""The remote backend against a server we did not write: llama.cpp's OpenAI server.

`python -m llama_cpp.server` (llama-cpp-python) runs SmolLM2's GGUF on the CPU, on loopback; a
real `osslsp serve --model smollm2` uses it through `engine = "http://127.0.0.1:PORT"`. The
language server keeps SmolLM2's tokenizer and chat template (the `smollm2` model setting) to
build prompts; llama.cpp only generates. llama.cpp has no /health: readiness comes from
/v1/models. SmolLM2's text is checked loosely, never word for word.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import pytest
import pytest_lsp
from lsprotocol import types
from pygls.exceptions import JsonRpcRequestCancelled
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from osslsp.models import smollm2_file
from tests.conftest import REPO
from tests.test_server import inline_params, keep_edits_and_explanations, open_document, wait_until_ready

pytest.importorskip(
    "llama_cpp",
    reason='llama-cpp-python is not installed: CMAKE_ARGS="-DGGML_NATIVE=OFF" pip install '
           '"llama-cpp-python[server]==0.3.36" (builds llama.cpp from source, ~15 minutes on 2 cores; '
           "a native build dies with SIGILL on some CPUs)",
)

pytestmark = pytest.mark.asyncio(loop_scope="module")
SERVE_SMOLLM2 = [sys.executable, "-m", "osslsp", "serve", "--model", "smollm2"]
START_TIMEOUT_S = 120  # loading a 90 MB GGUF takes seconds; a loaded CI machine gets room
ADD = 'def add(a, b):\n    """Return the sum of a and b."""\n    return\n'
STATUS = {}
EDITS: list[types.ApplyWorkspaceEditParams] = []
EXPLANATIONS: list = []


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def llama_server():
    """llama.cpp's server on SmolLM2, loopback only; its URL. A context of 8192 (SmolLM2's own;
    the server's default 2048 is less than osslsp's default prompt budget plus an answer)."""
    port = free_port()
    log = tempfile.TemporaryFile(mode="w+")
    process = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(smollm2_file()), "--host", "127.0.0.1",
         "--port", str(port), "--n_ctx", "8192"],
        stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT_S
    try:
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                pytest.fail(f"llama.cpp's server did not start (exit {process.poll()}): {log.read()[-2000:]}")
            try:
                with urllib.request.urlopen(url + "/v1/models", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


@pytest_lsp.fixture(scope="module", config=ClientServerConfig(server_command=SERVE_SMOLLM2))
async def client(lsp_client: LanguageClient, llama_server):
    keep_edits_and_explanations(lsp_client, EDITS, EXPLANATIONS)
    await lsp_client.initialize_session(types.InitializeParams(
        capabilities=client_capabilities("visual-studio-code"),
        root_uri=(REPO / "tests").as_uri(),
        initialization_options={"engine": llama_server, "maxNewTokens": 32, "explanationNotifications": True},
    ))
    STATUS["ready"] = await wait_until_ready(lsp_client)
    yield
    await lsp_client.shutdown_session()


async def test_the_language_server_is_ready_on_llama_cpp(client: LanguageClient, llama_server):
    assert STATUS["ready"].state == "ready", STATUS["ready"].message
    assert llama_server in STATUS["ready"].message


async def test_completes_a_documented_add_at_return(client: LanguageClient):
    uri = open_document(client, "llama_add.py", ADD)
    result = await asyncio.wait_for(client.text_document_inline_completion_async(inline_params(uri, 2, 10)), 120)
    assert result.items and result.items[0].insert_text.strip(), result


async def test_generate_writes_a_body_or_says_why(client: LanguageClient):
    assert STATUS["ready"].state == "ready", STATUS["ready"].message  # a reason, but not this one
    uri = open_document(client, "llama_stub.py", ADD.replace("return", "pass"))
    edits, messages = len(EDITS), len(client.messages)
    await asyncio.wait_for(client.workspace_execute_command_async(types.ExecuteCommandParams(
        command="osslsp.generate", arguments=[uri, {"line": 0, "character": 5}])), 240)
    if len(EDITS) > edits:
        [change] = EDITS[-1].edit.document_changes
        assert change.edits[0].new_text.strip()
    else:  # SmolLM2 may write a body that does not parse: then the user is told so
        assert any(message.message.strip() for message in client.messages[messages:]), client.messages


async def test_explain_streams_an_answer(client: LanguageClient):
    uri = open_document(client, "llama_explain.py", "def add(a, b):\n    return a + b\n")
    selection = types.Range(start=types.Position(line=0, character=0), end=types.Position(line=1, character=16))
    before = len(EXPLANATIONS)
    await asyncio.wait_for(client.workspace_execute_command_async(types.ExecuteCommandParams(
        command="osslsp.explain", arguments=[uri, selection])), 240)
    assert len(EXPLANATIONS) > before and EXPLANATIONS[-1].done
    assert EXPLANATIONS[-1].markdown.strip()


async def test_cancel_mid_generation_then_the_next_request_is_served(client: LanguageClient):
    uri = open_document(client, "llama_cancel.py", "def add(a, b):\n    return a + b\n")
    selection = types.Range(start=types.Position(line=0, character=0), end=types.Position(line=1, character=16))
    before = len(EXPLANATIONS)
    pending = asyncio.create_task(client.protocol.send_request_async(
        types.WORKSPACE_EXECUTE_COMMAND, types.ExecuteCommandParams(command="osslsp.explain",
                                                                    arguments=[uri, selection]),
        msg_id="cancel-on-llama"))
    deadline = time.monotonic() + 120
    while len(EXPLANATIONS) == before:  # the first words have arrived: llama.cpp is generating
        assert not pending.done() and time.monotonic() < deadline, "no explanation began"
        await asyncio.sleep(0.01)
    client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id="cancel-on-llama"))
    with pytest.raises(JsonRpcRequestCancelled):
        await asyncio.wait_for(pending, 60)
    uri = open_document(client, "llama_after.py", ADD)
    result = await asyncio.wait_for(client.text_document_inline_completion_async(inline_params(uri, 2, 10)), 120)
    assert result.items and result.items[0].insert_text.strip(), result
