"""The workspace index in the server: built in the background with cancellable `$/progress`,
kept current from open buffers (didOpen/didChange/didClose) and, for files changed outside the
editor, from a file watcher. Completions are answered meanwhile with what the index has."""

from __future__ import annotations

import asyncio
import gc
import threading
from pathlib import Path

from lsprotocol import types
from pygls.uris import to_fs_path

from osslsp.features.progress import Progress
from osslsp.index import IndexPolicy
from osslsp.index.hosting import collector_paused, on_daemon_thread, worker_pool
from osslsp.server import OsslspServer

# A buffer being typed in is re-indexed once typing pauses this long. A re-index holds the
# interpreter for milliseconds (a parse and a SQLite transaction): run at every keystroke, it slows
# that keystroke's prompt build, which shares the interpreter. The prompt reads the buffer itself,
# so only other files' completions see the index's copy, and a pause comes before they are asked.
EDIT_SETTLE_S = 0.3

# Added to the extraction workers' nice value (each gets 0.64 of the server's CPU share): the
# server answers the editor while they work, and its writer keeps up with them instead of storing
# a backlog after they finish.
WORKER_NICENESS = 2
# The server's index: workers that yield to it; checkpoints and merges on threads of their own,
# never inside a keystroke's write; the collector paused while a refresh makes rows by the hundred
# thousand, then what the process holds (the index's tables, the model) frozen: no longer walked
# by the collector's full passes, which took 30-50 ms and landed on a keystroke's re-index.
SERVER_POLICY = IndexPolicy(worker_pool=worker_pool(WORKER_NICENESS), run_aside=on_daemon_thread,
                            during_refresh=collector_paused, after_change=gc.freeze)


async def index_workspace(server: OsslspServer) -> None:
    """Refresh the index on a worker thread, reporting progress; then watch for outside changes."""
    index = server.index
    if index is None:
        return
    index.use_policy(SERVER_POLICY)
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


class BufferUpdates:
    """Re-extracts edited buffers off the event loop, only the newest text of each document.

    A re-index is a tree-sitter parse and a SQLite transaction (tens of milliseconds for a large
    file); on the loop, a keystroke's completion would wait for it. A burst of keystrokes queued
    behind a running re-index costs one more, with the last text. `None` stands for a closed
    buffer, so a close after an edit wins, as it should. An edit (`settle`) waits until the
    edits pause for `settle_s`.
    """

    def __init__(self, server: OsslspServer, settle_s: float = EDIT_SETTLE_S):
        self._server = server
        self._settle_s = settle_s
        self._settled_at = 0.0  # the loop's clock
        self._pending: dict[Path, str | None] = {}
        self._worker: asyncio.Task | None = None

    def push(self, path: Path, text: str | None, settle: bool = False) -> None:
        self._pending.pop(path, None)  # re-inserted last: documents are served in the order edited
        self._pending[path] = text
        if settle:
            self._settled_at = asyncio.get_running_loop().time() + self._settle_s
        if self._worker is None or self._worker.done():
            self._worker = asyncio.get_running_loop().create_task(self._drain())

    async def idle(self) -> None:
        """Wait until every pushed change is in the index."""
        while self._worker is not None and not self._worker.done():
            await asyncio.shield(self._worker)

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        while self._pending:
            while (wait := self._settled_at - loop.time()) > 0:
                await asyncio.sleep(wait)
            path = next(iter(self._pending))
            text = self._pending.pop(path)
            index = self._server.index
            if index is None:
                continue
            try:
                if text is None:
                    await asyncio.to_thread(index.drop_buffer, path)
                else:
                    await asyncio.to_thread(index.set_buffer, path, text)
            except Exception as error:  # the index is a cache: completions go on with what it has
                self._server.log(f"re-indexing {path} failed: {error}", types.MessageType.Warning)


def register(server: OsslspServer) -> None:
    updates = BufferUpdates(server)

    def update_buffer(ls: OsslspServer, uri: str, settle: bool) -> None:
        path = _path(uri)
        document = ls.workspace.text_documents.get(uri)
        if ls.index is not None and path is not None and document is not None:
            updates.push(path, document.source, settle)

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: OsslspServer, params: types.DidOpenTextDocumentParams) -> None:
        """An open buffer is the truth for its file."""
        update_buffer(ls, params.text_document.uri, settle=False)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: OsslspServer, params: types.DidChangeTextDocumentParams) -> None:
        """Re-extract the edited buffer, off the loop, once typing pauses."""
        update_buffer(ls, params.text_document.uri, settle=True)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: OsslspServer, params: types.DidCloseTextDocumentParams) -> None:
        """Closed: the file on disk is the truth again."""
        path = _path(params.text_document.uri)
        if ls.index is not None and path is not None:
            updates.push(path, None)
