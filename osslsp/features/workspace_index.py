"""The workspace index in the server: built in the background with cancellable `$/progress`,
kept current from open buffers (didOpen/didChange/didClose) and, for files changed outside the
editor, from a file watcher. Completions are answered meanwhile with what the index has."""

from __future__ import annotations

import asyncio
import threading
import uuid
from pathlib import Path

from lsprotocol import types
from pygls.uris import to_fs_path

from osslsp.server import OsslspServer

_cancels: dict[str, threading.Event] = {}


async def index_workspace(server: OsslspServer) -> None:
    """Refresh the index on a worker thread, reporting progress; then watch for outside changes."""
    index = server.index
    if index is None:
        return
    loop = asyncio.get_running_loop()
    cancel = threading.Event()
    token = f"osslsp-index-{uuid.uuid4()}"
    window = server.client_capabilities.window
    reporting = bool(window and window.work_done_progress)
    if reporting:
        try:
            await asyncio.shield(server.work_done_progress.create_async(token))
        except Exception:
            reporting = False
    if reporting:
        _cancels[token] = cancel
        server.work_done_progress.begin(token, types.WorkDoneProgressBegin(
            title="osslsp: indexing the workspace", cancellable=True, percentage=0))
    server.set_state("indexing", f"indexing {server.root}")

    def report(done: int, total: int, path: str) -> None:
        if reporting:
            value = types.WorkDoneProgressReport(message=path, percentage=int(100 * done / max(total, 1)))
            loop.call_soon_threadsafe(server.work_done_progress.report, token, value)

    try:
        stats = await asyncio.to_thread(index.refresh, report, cancel)
        summary = f"indexed {stats.files} files, {stats.definitions} definitions"
    except Exception as error:  # a broken index is rebuilt next time; completions go on without it
        summary = f"indexing failed: {error}"
        server.log(summary, types.MessageType.Warning)
    finally:
        _cancels.pop(token, None)
    if cancel.is_set():
        summary = "indexing cancelled: completions use what was indexed"
    if reporting:
        server.work_done_progress.end(token, types.WorkDoneProgressEnd(message=summary))
    server.set_state(*server.model_state)
    server.log(summary)
    if not cancel.is_set():
        index.start_watching()


def _path(uri: str) -> Path | None:
    path = to_fs_path(uri)
    return Path(path) if path else None


def register(server: OsslspServer) -> None:
    @server.feature(types.WINDOW_WORK_DONE_PROGRESS_CANCEL)
    def cancel_progress(ls: OsslspServer, params: types.WorkDoneProgressCancelParams) -> None:
        """The user cancelled indexing: stop after the current batch, keep what was indexed."""
        event = _cancels.get(str(params.token))
        if event is not None:
            event.set()

    def update_buffer(ls: OsslspServer, uri: str) -> None:
        index = ls.index
        path = _path(uri)
        document = ls.workspace.text_documents.get(uri)
        if index is not None and path is not None and document is not None:
            index.set_buffer(path, document.source)

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: OsslspServer, params: types.DidOpenTextDocumentParams) -> None:
        """An open buffer is the truth for its file."""
        update_buffer(ls, params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: OsslspServer, params: types.DidChangeTextDocumentParams) -> None:
        """Re-extract the edited buffer (a few milliseconds)."""
        update_buffer(ls, params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: OsslspServer, params: types.DidCloseTextDocumentParams) -> None:
        """Closed: the file on disk is the truth again."""
        index = ls.index
        path = _path(params.text_document.uri)
        if index is not None and path is not None:
            index.drop_buffer(path)
