"""`textDocument/codeAction` and `osslsp.generate`: a function body from its docstring.

The code action offers "Generate function from docstring" (refactor.rewrite) on a stub and
"Explain selection" (refactor) on a non-empty selection; both are commands, as generation is slow.
`osslsp.generate` runs with cancellable `$/progress` and sends `workspace/applyEdit` replacing the
stub's body, only if the document is still the version it was generated for.
"""

from __future__ import annotations

import asyncio
from typing import Any

from lsprotocol import types

from osslsp.actions.generate import DocumentChanged, generate_body
from osslsp.actions.stubs import find_stub, supports
from osslsp.assistant import AssistantError, Superseded
from osslsp.documents import position_at
from osslsp.features.command_support import document_version, position_argument, tell, uri_argument
from osslsp.features.explain import EXPLAIN
from osslsp.features.progress import Progress
from osslsp.languages import language_for
from osslsp.server import OsslspServer

GENERATE = "osslsp.generate"
GENERATE_TITLE = "Generate function from docstring"
EXPLAIN_TITLE = "Explain selection"


def _actions(ls: OsslspServer, params: types.CodeActionParams) -> list[types.CodeAction]:
    uri = params.text_document.uri
    path, text, start, language_id = ls.document_at(uri, params.range.start)
    _, _, end, _ = ls.document_at(uri, params.range.end)
    language = language_for(path, language_id)
    if not ls.settings.enabled or language is None or not supports(language.name):
        return []
    only = params.context.only or []

    def wanted(kind: str) -> bool:
        return not only or any(kind == asked or kind.startswith(f"{asked}.") for asked in only)

    actions = []
    if wanted(types.CodeActionKind.RefactorRewrite) and find_stub(text, language.name, start, max(start, end)):
        actions.append(types.CodeAction(
            title=GENERATE_TITLE, kind=types.CodeActionKind.RefactorRewrite,
            command=types.Command(title=GENERATE_TITLE, command=GENERATE, arguments=[uri, params.range.start])))
    if wanted(types.CodeActionKind.Refactor) and text[min(start, end):max(start, end)].strip():
        actions.append(types.CodeAction(
            title=EXPLAIN_TITLE, kind=types.CodeActionKind.Refactor,
            command=types.Command(title=EXPLAIN_TITLE, command=EXPLAIN, arguments=[uri, params.range])))
    return actions


async def generate_at(ls: OsslspServer, uri: str, position: types.Position) -> None:
    """Generate the body of the stub at a position and ask the client to apply it."""
    path, text, offset, language_id = ls.document_at(uri, position)
    version = document_version(ls, uri)
    language = language_for(path, language_id)
    if language is None or not supports(language.name):
        return tell(ls, f"osslsp cannot generate functions in {language_id or path.suffix or path.name} files")
    stub = find_stub(text, language.name, offset)
    if stub is None:
        return tell(ls, "put the cursor on a documented function whose body is empty or only a placeholder "
                        "(pass, ..., raise NotImplementedError, todo!(), a TODO comment) to generate it")
    if ls.assistant is None:
        return tell(ls, "the server is not initialized yet", types.MessageType.Error)
    progress = Progress(ls, f"osslsp: generating {stub.name}")
    await progress.begin()

    def on_attempt(attempt: int, problems: str) -> None:
        progress.report(f"attempt {attempt}" + (f", after: {problems}" if problems else ""))

    try:
        generated = await progress.run(generate_body(
            ls.assistant, path, text, stub, is_current=lambda: document_version(ls, uri) == version,
            on_attempt=on_attempt))
    except asyncio.CancelledError:
        progress.end("cancelled")
        if progress.cancelled:
            return None
        raise
    except Superseded:
        return progress.end("superseded")
    except DocumentChanged as error:
        progress.end(str(error))
        return tell(ls, str(error))
    except AssistantError as error:
        progress.end(str(error))
        return tell(ls, str(error), types.MessageType.Error)
    progress.end(generated.message)
    if generated.new_text is None:
        return tell(ls, generated.message)
    if document_version(ls, uri) != version:
        return tell(ls, f"{path.name} changed while {stub.name} was generated: nothing was applied")
    await _apply(ls, uri, version, text, stub.body_start, stub.body_end, generated.new_text, stub.name)


async def _apply(ls: OsslspServer, uri: str, version: int | None, text: str, start: int, end: int,
                 new_text: str, name: str) -> None:
    """Send the edit, tied to the document version it was made for."""
    encoding = ls.position_encoding
    edit_range = types.Range(start=types.Position(*position_at(text, start, encoding)),
                             end=types.Position(*position_at(text, end, encoding)))
    edit = types.TextEdit(range=edit_range, new_text=new_text)
    workspace = ls.client_capabilities.workspace
    versioned = workspace and workspace.workspace_edit and workspace.workspace_edit.document_changes
    change = types.WorkspaceEdit(document_changes=[types.TextDocumentEdit(
        text_document=types.OptionalVersionedTextDocumentIdentifier(uri=uri, version=version), edits=[edit])]) \
        if versioned else types.WorkspaceEdit(changes={uri: [edit]})
    try:
        result = await asyncio.shield(ls.workspace_apply_edit_async(
            types.ApplyWorkspaceEditParams(edit=change, label=f"osslsp: generate {name}")))
    except Exception as error:  # a client that cannot apply edits: say so, keep serving
        return tell(ls, f"the editor did not apply the body of {name}: {error}")
    if not result.applied:
        tell(ls, f"the editor did not apply the body of {name}: {result.failure_reason or 'no reason given'}")


def register(server: OsslspServer) -> None:
    @server.feature(types.TEXT_DOCUMENT_CODE_ACTION, types.CodeActionOptions(
        code_action_kinds=[types.CodeActionKind.RefactorRewrite, types.CodeActionKind.Refactor]))
    def code_action(ls: OsslspServer, params: types.CodeActionParams) -> list[types.CodeAction]:
        """Generate on a stub, explain on a selection."""
        return _actions(ls, params)

    @server.command(GENERATE)
    async def generate(ls: OsslspServer, *arguments: Any) -> None:
        """[uri, position]: replace the body of the stub at the position (workspace/applyEdit)."""
        uri = uri_argument(arguments, GENERATE, "position")
        await generate_at(ls, uri, position_argument(arguments[1]))
