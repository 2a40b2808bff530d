"""Code actions over stdio with the tiny model, for a client that renders osslsp/explanation.

What these tests prove with a random-weight model: the actions are offered on stubs (each
language) and not on functions with bodies; `osslsp.generate` runs with progress, ends with
either one edit of exactly the stub's body or a clear message and no edit (the tiny model's text
never parses, so it is the message here: `test_validation.py` proves the edit path with real code),
never edits a document changed meanwhile, and can be cancelled from its progress; explain streams
progress reports and notifications that end with done=true.
"""

from __future__ import annotations

import asyncio

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from tests.actions.samples import BODIED, STUBS
from tests.conftest import SERVE_TINY

pytestmark = pytest.mark.asyncio(loop_scope="module")
STATE: dict = {}


@pytest_lsp.fixture(scope="module", config=ClientServerConfig(server_command=SERVE_TINY))
async def client(lsp_client: LanguageClient, tiny_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("workspace")
    (root / "shapes.py").write_text('class Point:\n    """A point."""\n\n    x: float\n')
    STATE["root"], STATE["edits"], STATE["explanations"] = root, [], []

    @lsp_client.feature(types.WORKSPACE_APPLY_EDIT)
    def apply_edit(params: types.ApplyWorkspaceEditParams) -> types.ApplyWorkspaceEditResult:
        STATE["edits"].append(params)
        return types.ApplyWorkspaceEditResult(applied=True)

    # Every notification kept: waiting for them one at a time misses those that come in a burst.
    @lsp_client.feature("osslsp/explanation")
    def explanation(params) -> None:
        STATE["explanations"].append(params)

    STATE["initialized"] = await lsp_client.initialize_session(types.InitializeParams(
        capabilities=client_capabilities("visual-studio-code"), root_uri=root.as_uri(),
        initialization_options={"explanationNotifications": True, "maxNewTokens": 24, "contextTokens": 1024,
                                "reasoningEffortExplain": "low"}))
    while (await lsp_client.wait_for_notification("osslsp/status")).state not in ("ready", "error"):
        pass
    yield
    await lsp_client.shutdown_session()


def open_document(client: LanguageClient, name: str, text: str, language: str) -> str:
    uri = (STATE["root"] / name).as_uri()
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        text_document=types.TextDocumentItem(uri=uri, language_id=language, version=1, text=text)))
    return uri


def at(text: str, marker: str) -> types.Position:
    offset = text.index(marker)
    return types.Position(line=text.count("\n", 0, offset), character=offset - text.rfind("\n", 0, offset) - 1)


async def actions_at(client: LanguageClient, uri: str, start: types.Position,
                     end: types.Position | None = None) -> list[tuple[str, str, str]]:
    """(title, kind, command) of each code action, read from the raw answer: lsprotocol's client
    side reads a CodeAction with a command as a Command, losing its kind."""
    STATE["request"] = STATE.get("request", 0) + 1
    msg_id = f"code-action-{STATE['request']}"
    answer = asyncio.get_running_loop().create_future()
    client.protocol._request_futures[msg_id] = answer
    params = types.CodeActionParams(text_document=types.TextDocumentIdentifier(uri=uri),
                                    range=types.Range(start=start, end=end or start),
                                    context=types.CodeActionContext(diagnostics=[]))
    client.protocol._send_data({"jsonrpc": "2.0", "id": msg_id, "method": types.TEXT_DOCUMENT_CODE_ACTION,
                                "params": client.protocol._converter.unstructure(params)})
    actions = await asyncio.wait_for(answer, timeout=10) or []
    return [(action["title"], action["kind"], action["command"]["command"]) for action in actions]


async def run_command(client: LanguageClient, command: str, uri: str, where) -> None:
    await client.workspace_execute_command_async(types.ExecuteCommandParams(command=command, arguments=[uri, where]))


async def test_code_action_kinds_are_advertised(client: LanguageClient):
    provider = STATE["initialized"].capabilities.code_action_provider
    assert set(provider.code_action_kinds) == {types.CodeActionKind.RefactorRewrite, types.CodeActionKind.Refactor}


@pytest.mark.parametrize("language", sorted(STUBS))
async def test_generate_is_offered_on_stubs_and_not_on_bodies(client: LanguageClient, language: str):
    (name, stub), (_, bodied) = STUBS[language], BODIED[language]
    text = f"{stub}\n{bodied}"
    uri = open_document(client, f"offer.{name}", text, language)
    on_stub = await actions_at(client, uri, at(text, "MARK"))
    assert on_stub == [("Generate function from docstring", "refactor.rewrite", "osslsp.generate")]
    on_body = await actions_at(client, uri, at(text, "BODY"))
    assert on_body == []


async def test_explain_is_offered_on_a_selection_only(client: LanguageClient):
    text = "def twice(x):\n    return 2 * x\n"
    uri = open_document(client, "select.py", text, "python")
    selected = await actions_at(client, uri, at(text, "return"), types.Position(line=1, character=16))
    assert selected == [("Explain selection", "refactor", "osslsp.explain")]
    assert await actions_at(client, uri, at(text, "return")) == []


async def test_generate_ends_in_one_body_edit_or_a_clear_message(client: LanguageClient):
    _, stub = STUBS["python"]
    uri = open_document(client, "gen.py", stub, "python")
    before_messages, before_edits = len(client.messages), len(STATE["edits"])
    await run_command(client, "osslsp.generate", uri, at(stub, "MARK"))
    edits = STATE["edits"][before_edits:]
    messages = [m.message for m in client.messages[before_messages:]]
    if edits:  # a random model that happened to write a valid body: the edit covers the body only
        [change] = edits[0].edit.document_changes
        assert change.text_document.version == 1
        [edit] = change.edits
        assert edit.range == types.Range(start=types.Position(line=1, character=len('    """Return the sum; MARK."""')),
                                         end=types.Position(line=2, character=len("    pass")))
    else:
        assert len(messages) == 1 and "could not generate a body for add" in messages[0], messages
        assert "attempts" in messages[0]


async def test_generate_reports_progress(client: LanguageClient):
    _, stub = STUBS["rust"]
    uri = open_document(client, "progress.rs", stub, "rust")
    known = set(client.progress_reports)
    await run_command(client, "osslsp.generate", uri, at(stub, "MARK"))
    [token] = set(client.progress_reports) - known
    kinds = [report.kind for report in client.progress_reports[token]]
    assert kinds[0] == "begin" and kinds[-1] == "end" and "report" in kinds
    assert client.progress_reports[token][0].title == "osslsp: generating add"


async def test_a_document_changed_while_generating_gets_no_edit(client: LanguageClient):
    _, stub = STUBS["python"]
    uri = open_document(client, "stale.py", stub, "python")
    before_messages, before_edits = len(client.messages), len(STATE["edits"])
    pending = asyncio.create_task(client.workspace_execute_command_async(types.ExecuteCommandParams(
        command="osslsp.generate", arguments=[uri, at(stub, "MARK")])))
    await asyncio.sleep(0)  # the request is on its way: the edit follows it
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
        content_changes=[types.TextDocumentContentChangeWholeDocument(text="# rewritten\n" + stub)]))
    await pending
    assert STATE["edits"][before_edits:] == []
    messages = [m.message for m in client.messages[before_messages:]]
    assert messages == ["stale.py changed while add was generated: nothing was applied"]


async def test_generate_can_be_cancelled_from_its_progress(client: LanguageClient):
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
        settings={"osslsp": {"maxNewTokens": 1000}}))  # 8000 tokens: far longer than the test
    _, stub = STUBS["go"]
    uri = open_document(client, "cancel.go", stub, "go")
    known = set(client.progress_reports)
    pending = asyncio.create_task(client.workspace_execute_command_async(types.ExecuteCommandParams(
        command="osslsp.generate", arguments=[uri, at(stub, "MARK")])))
    while not set(client.progress_reports) - known or not client.progress_reports[
            next(iter(set(client.progress_reports) - known))]:
        await asyncio.sleep(0.05)
    [token] = set(client.progress_reports) - known
    # Cancelled as soon as it begins: the tiny model's random text may end on its own early, and
    # its prompt (with whatever the index holds by then) varies from run to run.
    client.protocol.notify(types.WINDOW_WORK_DONE_PROGRESS_CANCEL, types.WorkDoneProgressCancelParams(token=token))
    assert await asyncio.wait_for(pending, timeout=20) is None
    assert client.progress_reports[token][-1].message == "cancelled"
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
        settings={"osslsp": {"maxNewTokens": 24}}))


async def test_generate_elsewhere_says_what_a_stub_is(client: LanguageClient):
    _, bodied = BODIED["python"]
    uri = open_document(client, "nostub.py", bodied, "python")
    before = len(client.messages)
    await run_command(client, "osslsp.generate", uri, at(bodied, "BODY"))
    [message] = client.messages[before:]
    assert "documented function" in message.message and message.type == types.MessageType.Warning


async def test_explain_streams_progress_and_notifications(client: LanguageClient):
    text = "import math\n\n\ndef hypotenuse(a, b):\n    return math.sqrt(a * a + b * b)\n"
    uri = open_document(client, "explain.py", text, "python")
    selected = types.Range(start=at(text, "return"), end=types.Position(line=4, character=35))
    known = set(client.progress_reports)
    before = len(STATE["explanations"])
    # The notifications come before the command's answer (one stream of messages, in order).
    await asyncio.wait_for(client.workspace_execute_command_async(types.ExecuteCommandParams(
        command="osslsp.explain", arguments=[uri, selected])), 120)
    notifications = STATE["explanations"][before:]
    assert notifications and notifications[-1].done
    assert all(n.uri == uri and n.range.start.line == 4 for n in notifications)
    assert notifications[-1].markdown
    growing = [n.markdown for n in notifications]
    assert all(later.startswith(earlier) for earlier, later in zip(growing, growing[1:]) if earlier)
    [token] = set(client.progress_reports) - known
    reports = [r for r in client.progress_reports[token] if r.kind == "report"]
    assert reports and reports[-1].message == notifications[-1].markdown


async def test_explain_of_an_empty_selection_is_a_clear_message(client: LanguageClient):
    text = "x = 1\n\n\ny = 2\n"
    uri = open_document(client, "blank.py", text, "python")
    before = len(client.messages)
    await client.workspace_execute_command_async(types.ExecuteCommandParams(
        command="osslsp.explain", arguments=[uri, types.Range(start=types.Position(line=1, character=0),
                                                              end=types.Position(line=2, character=0))]))
    assert [m.message for m in client.messages[before:]] == ["select the code to explain first: the selection is empty"]


async def test_unsupported_language_gets_no_actions_and_a_clear_message(client: LanguageClient):
    text = "key: value\nother: thing\n"
    uri = open_document(client, "conf.yaml", text, "yaml")
    whole = types.Range(start=types.Position(line=0, character=0), end=types.Position(line=1, character=5))
    assert await actions_at(client, uri, whole.start, whole.end) == []
    before = len(client.messages)
    await client.workspace_execute_command_async(types.ExecuteCommandParams(
        command="osslsp.explain", arguments=[uri, whole]))
    [message] = client.messages[before:]
    assert "cannot explain yaml files" in message.message
