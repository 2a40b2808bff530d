"""The workspace index in the server: built in the background with cancellable `$/progress`,
kept current from open buffers (didOpen/didChange/didClose) and, for files changed outside the
editor, from a file watcher. Completions are answered meanwhile with what the index has."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from lsprotocol import types
from pygls.uris import to_fs_path

from osslsp.features.progress import Progress
from osslsp.server import OsslspServer


async def index_workspace(server: OsslspServer) -> None:
    """Refresh the index on a worker thread, reporting progress; then watch for outside changes."""
    index = server.index
    if index is None:
        return
    loop = asyncio.get_running_loop()
    cancel = threading.Event()  # read by the indexer between batches
    progress = Progress(server, "osslsp: indexing the workspace")
    await progress.begin()
    progress.on_cancel(cancel.set)
    server.set_state("indexing", f"indexing {server.root}")

    def report(done: int, total: int, path: str) -> None:
        loop.call_soon_threadsafe(progress.report, path, int(100 * done / max(total, 1)))

    try:
        stats = await asyncio.to_thread(index.refresh, report, cancel)
        summary = f"indexed {stats.files} files, {stats.definitions} definitions"
    except Exception as error:  # a broken index is rebuilt next time; completions go on without it
        summary = f"indexing failed: {error}"
        server.log(summary, types.MessageType.Warning)
    if cancel.is_set():
        summary = "indexing cancelled: completions use what was indexed"
    progress.end(summary)
    server.set_state(*server.model_state)
    server.log(summary)
    if not cancel.is_set():
        index.start_watching()


def _path(uri: str) -> Path | None:
    path = to_fs_path(uri)
    return Path(path) if path else None


def register(server: OsslspServer) -> None:
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
