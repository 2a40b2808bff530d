"""The language server over stdio, driven by pytest-lsp, with the tiny model."""

from __future__ import annotations

import asyncio

import pytest
import pytest_lsp
from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams, JsonRpcRequestCancelled
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from osslsp.audit import audit_file, read_records
from tests.conftest import REPO, SERVE_TINY

pytestmark = pytest.mark.asyncio(loop_scope="module")
INITIALIZE = {}


async def wait_until_ready(client: LanguageClient):
    """Wait for the server's osslsp/status to reach ready (or error)."""
    while True:
        status = await client.wait_for_notification("osslsp/status")
        if status.state in ("ready", "error"):
            return status


@pytest_lsp.fixture(scope="module", config=ClientServerConfig(server_command=SERVE_TINY))
async def client(lsp_client: LanguageClient, tiny_dir):
    INITIALIZE["result"] = await lsp_client.initialize_session(
        types.InitializeParams(
            capabilities=client_capabilities("visual-studio-code"),
            root_uri=REPO.as_uri(),
            initialization_options={"maxNewTokens": 24, "contextTokens": 1024},
        )
    )
    INITIALIZE["status"] = await wait_until_ready(lsp_client)
    yield
    await lsp_client.shutdown_session()


def open_document(client: LanguageClient, name: str, text: str, language: str = "python") -> str:
    uri = (REPO / "tests" / "scratch" / name).as_uri()
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        text_document=types.TextDocumentItem(uri=uri, language_id=language, version=1, text=text)))
    return uri


def keep_edits_and_explanations(client: LanguageClient, edits: list, explanations: list) -> None:
    """Apply every workspace/applyEdit, kept in `edits`, and keep every osslsp/explanation as it
    comes: waiting for notifications one at a time misses those that come in a burst."""
    @client.feature(types.WORKSPACE_APPLY_EDIT)
    def apply_edit(params: types.ApplyWorkspaceEditParams) -> types.ApplyWorkspaceEditResult:
        edits.append(params)
        return types.ApplyWorkspaceEditResult(applied=True)

    @client.feature("osslsp/explanation")
    def explanation(params) -> None:
        explanations.append(params)


def inline_params(uri: str, line: int, character: int) -> types.InlineCompletionParams:
    return types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        position=types.Position(line=line, character=character),
        context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Invoked),
    )


async def test_capabilities_advertise_inline_completion(client: LanguageClient):
    capabilities = INITIALIZE["result"].capabilities
    assert capabilities.inline_completion_provider
    assert capabilities.completion_provider is not None
    assert INITIALIZE["status"].state == "ready", INITIALIZE["status"]


async def test_inline_completion_returns_an_item_at_the_cursor(client: LanguageClient):
    uri = open_document(client, "add.py", 'def add(a, b):\n    """Return the sum."""\n    return a\n')
    result = await client.text_document_inline_completion_async(inline_params(uri, 2, 12))
    assert result.items, "expected one completion"
    item = result.items[0]
    assert item.insert_text.strip()
    assert item.range == types.Range(start=types.Position(line=2, character=12), end=types.Position(line=2, character=12))


async def test_classic_completion_falls_back_to_the_same_text(client: LanguageClient):
    uri = open_document(client, "classic.py", 'def add(a, b):\n    """Return the sum."""\n    return a\n')
    inline = await client.text_document_inline_completion_async(inline_params(uri, 2, 12))
    result = await client.text_document_completion_async(types.CompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line=2, character=12)))
    assert [item.text_edit.new_text for item in result.items] == [inline.items[0].insert_text]


async def test_cancelled_request_gets_request_cancelled_and_server_keeps_serving(client: LanguageClient):
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
        settings={"osslsp": {"maxNewTokens": 4000}}))
    # The tiny model runs on here for thousands of tokens: cancel arrives mid-generation.
    uri = open_document(client, "long.py", "x = 1\n")
    pending = asyncio.create_task(client.protocol.send_request_async(
        types.TEXT_DOCUMENT_INLINE_COMPLETION, inline_params(uri, 1, 0), msg_id="cancel-me"))
    await asyncio.sleep(0.05)  # prefill takes ~20 ms; the tokens that follow take seconds
    client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id="cancel-me"))
    with pytest.raises(JsonRpcRequestCancelled):
        await pending
    # The audit log holds the cancelled generation too: its prompt reached the model.
    records = read_records(audit_file(True), 50)
    assert any(record["file"].endswith("long.py") and record["withheld"] == "cancelled by the editor"
               and record["shown"] is None and "x = 1" in record["prompt"] for record in records)
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
        settings={"osslsp": {"maxNewTokens": 24}}))
    uri = open_document(client, "after.py", 'def add(a, b):\n    """Return the sum."""\n    return a\n')
    result = await asyncio.wait_for(
        client.text_document_inline_completion_async(inline_params(uri, 2, 12)), timeout=30)
    assert result.items


async def test_position_past_the_end_is_a_clear_error(client: LanguageClient):
    uri = open_document(client, "short.py", "x = 1\n")
    with pytest.raises(JsonRpcInvalidParams, match="past the end"):
        await client.text_document_inline_completion_async(inline_params(uri, 40, 0))


async def test_unknown_document_is_a_clear_error(client: LanguageClient):
    uri = (REPO / "tests" / "scratch" / "never-opened.py").as_uri()
    with pytest.raises(JsonRpcInvalidParams, match="not open"):
        await client.text_document_inline_completion_async(inline_params(uri, 0, 0))


async def test_empty_document_gets_a_list(client: LanguageClient):
    uri = open_document(client, "empty.py", "")
    result = await client.text_document_inline_completion_async(inline_params(uri, 0, 0))
    assert isinstance(result, types.InlineCompletionList)  # empty or not: the tiny model's text is random
    assert all(item.range.start == types.Position(line=0, character=0) for item in result.items)


async def test_malformed_params_get_an_answer(client: LanguageClient):
    # pygls alone never answers a request whose params do not deserialize. The test client
    # refuses to send such params, so the raw message goes out below its type checks.
    answer = asyncio.get_running_loop().create_future()
    client.protocol._request_futures["malformed"] = answer
    client.protocol._send_data({"jsonrpc": "2.0", "id": "malformed", "method": types.TEXT_DOCUMENT_INLINE_COMPLETION,
                                "params": {"textDocument": {"uri": 3}, "position": {"line": -1}}})
    with pytest.raises(JsonRpcException, match="invalid params"):
        await asyncio.wait_for(answer, timeout=10)


async def test_bad_setting_warns_and_keeps_serving(client: LanguageClient):
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
        settings={"osslsp": {"maxNewTokens": "lots", "dtype": "fp8"}}))
    uri = open_document(client, "still.py", 'def add(a, b):\n    """Return the sum."""\n    return a\n')
    result = await client.text_document_inline_completion_async(inline_params(uri, 2, 12))
    assert result.items
    warnings = [m.message for m in client.log_messages if m.type == types.MessageType.Warning]
    assert any("maxNewTokens" in w for w in warnings) and any("dtype" in w for w in warnings)


async def test_show_prompt_command_returns_the_prompt(client: LanguageClient):
    uri = open_document(client, "prompt.py", "import os\n\ndef main():\n    pri")
    result = await client.workspace_execute_command_async(types.ExecuteCommandParams(
        command="osslsp.showPrompt", arguments=[uri, {"line": 3, "character": 7}]))
    assert result["prompt"].endswith("<|channel|>final<|message|>```python\n    pri")
    assert 0 < result["promptTokens"] <= 1024


async def test_a_broken_style_guide_is_named_with_its_line_and_the_bundled_one_applies(client: LanguageClient, tmp_path):
    broken = tmp_path / "team-guide.toml"
    broken.write_text('[python]\nextends = "python-pep8"\n[python.layout\nmax_line_length = 100\n')
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
        settings={"osslsp": {"styleGuide": str(broken), "maxNewTokens": 24}}))
    uri = open_document(client, "guided.py", "import os\n\ndef main():\n    pri")
    result = await client.workspace_execute_command_async(types.ExecuteCommandParams(
        command="osslsp.showPrompt", arguments=[uri, {"line": 3, "character": 7}]))
    assert "python-pep8" in result["prompt"]  # the bundled guide still reaches the prompt
    warnings = [m.message for m in client.messages if m.type == types.MessageType.Warning]
    assert any(str(broken) in w and ":3" in w for w in warnings), warnings


async def test_with_a_debounce_only_the_newest_request_of_a_burst_generates(client: LanguageClient):
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
        settings={"osslsp": {"debounceMs": 300, "styleGuide": ""}}))
    uri = open_document(client, "burst.py", 'def add(a, b):\n    """Return the sum."""\n    return a\n')
    older = asyncio.create_task(client.text_document_inline_completion_async(inline_params(uri, 2, 11)))
    await asyncio.sleep(0.05)
    newer = await client.text_document_inline_completion_async(inline_params(uri, 2, 12))
    assert not (await older).items and newer.items
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
        settings={"osslsp": {"debounceMs": 0}}))


async def test_a_request_dropped_by_the_debounce_logs_why(tiny_dir, tmp_path):
    log_file = tmp_path / "osslsp.log"
    client = await ClientServerConfig(server_command=[*SERVE_TINY, "--log-file", str(log_file)]).start()
    try:
        await client.initialize_session(types.InitializeParams(
            capabilities=client_capabilities("visual-studio-code"), root_uri=REPO.as_uri(),
            initialization_options={"maxNewTokens": 4, "debounceMs": 300, "indexEnabled": False}))
        await wait_until_ready(client)
        uri = open_document(client, "dropped.py", 'def add(a, b):\n    """Return the sum."""\n    return a\n')
        older = asyncio.create_task(client.text_document_inline_completion_async(inline_params(uri, 2, 11)))
        await asyncio.sleep(0.05)
        await client.text_document_inline_completion_async(inline_params(uri, 2, 12))
        assert not (await older).items
    finally:
        await client.shutdown_session()
    assert ("completion withheld at tests/scratch/dropped.py:3:12: superseded by a newer request before the "
            "typing paused") in log_file.read_text()


async def test_a_new_dtype_reloads_the_model_and_completions_go_on(client: LanguageClient):
    # Last in this module: the server runs in bfloat16 from here on.
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
        settings={"osslsp": {"dtype": "bfloat16"}}))
    status = await wait_until_ready(client)
    assert status.state == "ready"
    details = await client.workspace_execute_command_async(types.ExecuteCommandParams(
        command="osslsp.status", arguments=[]))
    assert details["dtype"] == "bfloat16"
    uri = open_document(client, "reloaded.py", 'def add(a, b):\n    """Return the sum."""\n    return a\n')
    result = await client.text_document_inline_completion_async(inline_params(uri, 2, 12))
    assert isinstance(result, types.InlineCompletionList)
