"""Explain for a client that does not render osslsp/explanation: a Markdown document under the
cache directory, opened with window/showDocument, after progress reports with the text so far."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from tests.conftest import SERVE_TINY

pytestmark = pytest.mark.asyncio(loop_scope="module")
ROOT: list[Path] = []


@pytest_lsp.fixture(scope="module", config=ClientServerConfig(server_command=SERVE_TINY))
async def client(lsp_client: LanguageClient, tiny_dir, tmp_path_factory):
    ROOT.append(tmp_path_factory.mktemp("workspace"))
    await lsp_client.initialize_session(types.InitializeParams(
        capabilities=client_capabilities("neovim"), root_uri=ROOT[0].as_uri(),
        initialization_options={"maxNewTokens": 24, "contextTokens": 1024, "reasoningEffortExplain": "low"}))
    while (await lsp_client.wait_for_notification("osslsp/status")).state not in ("ready", "error"):
        pass
    yield
    await lsp_client.shutdown_session()


async def test_explain_opens_a_markdown_document_outside_the_workspace(client: LanguageClient):
    text = "def twice(x):\n    return 2 * x\n"
    uri = (ROOT[0] / "calc.py").as_uri()
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        text_document=types.TextDocumentItem(uri=uri, language_id="python", version=1, text=text)))
    known = set(client.progress_reports)
    selected = types.Range(start=types.Position(line=1, character=4), end=types.Position(line=1, character=16))
    await client.workspace_execute_command_async(types.ExecuteCommandParams(
        command="osslsp.explain", arguments=[uri, selected]))
    [shown] = client.shown_documents
    document = Path(shown.uri.removeprefix("file://"))
    assert document.suffix == ".md" and document.is_relative_to(Path(os.environ["OSSLSP_CACHE_DIR"]))
    assert not document.is_relative_to(ROOT[0])
    content = document.read_bytes().decode()  # as written: the model's text may hold a \r
    assert content.startswith("# Explanation of calc.py:2-2") and "return 2 * x" in content
    [token] = set(client.progress_reports) - known
    reports = [report for report in client.progress_reports[token] if report.kind == "report"]
    assert reports and reports[-1].message.strip() in content
