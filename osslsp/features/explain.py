"""`osslsp.explain`: an explanation of a selection, streamed as it is written.

Every client sees `$/progress` reports with the text so far. Clients that render
`osslsp/explanation` themselves (initializationOptions.explanationNotifications) get the Markdown
as it grows; any other client gets the finished explanation as a Markdown file under the cache
directory, opened with `window/showDocument` (never written into the workspace).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from typing import Any

from lsprotocol import types

from osslsp.actions.explain import explain_stream, explanation_document, selection_in
from osslsp.assistant import AssistantError, Superseded, display_path
from osslsp.features.command_support import range_argument, tell, uri_argument
from osslsp.features.progress import Progress
from osslsp.paths import cache_dir
from osslsp.server import OsslspServer

EXPLAIN = "osslsp.explain"
EXPLANATION_NOTIFICATION = "osslsp/explanation"
REPORT_EVERY_S = 0.05  # at most this often a report and a notification while the text grows


def _notify(ls: OsslspServer, uri: str, selected: types.Range, markdown: str, done: bool) -> None:
    where = {name: {"line": position.line, "character": position.character}
             for name, position in (("start", selected.start), ("end", selected.end))}
    ls.protocol.notify(EXPLANATION_NOTIFICATION, {"uri": uri, "range": where, "markdown": markdown, "done": done})


async def _show_document(ls: OsslspServer, name: str, document: str) -> None:
    """Write the explanation under the cache directory and ask the client to open it."""
    folder = cache_dir() / "explanations"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{name}-{hashlib.sha1(document.encode()).hexdigest()[:8]}.md"
        target.write_text(document)
    except OSError as error:
        return tell(ls, f"cannot write the explanation under {folder}: {error}", types.MessageType.Error)
    try:
        result = await asyncio.shield(ls.window_show_document_async(
            types.ShowDocumentParams(uri=target.as_uri(), take_focus=True)))
    except Exception as error:  # a client without showDocument: the file is still there
        return tell(ls, f"the explanation is in {target} (the editor could not open it: {error})",
                    types.MessageType.Info)
    if not result.success:
        tell(ls, f"the explanation is in {target}", types.MessageType.Info)


async def explain_range(ls: OsslspServer, uri: str, selected: types.Range) -> None:
    """Stream an explanation of a range; the end is a notification or a shown document."""
    path, text, start, language_id = ls.document_at(uri, selected.start)
    _, _, end, _ = ls.document_at(uri, selected.end)
    if ls.assistant is None:
        return tell(ls, "the server is not initialized yet", types.MessageType.Error)
    try:
        selection = selection_in(path, text, start, end, language_id)
    except AssistantError as error:
        return tell(ls, str(error))
    shown_path = display_path(path, ls.assistant.root)
    first, last = selection.lines
    progress = Progress(ls, f"osslsp: explaining {shown_path}:{first}-{last}")
    await progress.begin()
    notifying = ls.explanation_notifications
    markdown, last_sent = "", 0.0

    async def stream() -> str:
        nonlocal markdown, last_sent
        async for markdown in explain_stream(ls.assistant, selection):
            if time.monotonic() - last_sent >= REPORT_EVERY_S:
                last_sent = time.monotonic()
                progress.report(markdown)
                if notifying:
                    _notify(ls, uri, selected, markdown, False)
        return markdown

    try:
        markdown = await progress.run(stream())
    except asyncio.CancelledError:
        progress.end("cancelled")
        if notifying:
            _notify(ls, uri, selected, markdown, True)
        if progress.cancelled:
            return None
        raise
    except Superseded:
        return progress.end("superseded")
    except AssistantError as error:
        progress.end(str(error))
        return tell(ls, str(error), types.MessageType.Error)
    document = explanation_document(selection, shown_path, markdown)
    progress.report(markdown or "no explanation")
    progress.end("explained")
    if notifying:
        _notify(ls, uri, selected, markdown or document, True)
    else:
        await _show_document(ls, f"{path.stem}-{first}-{last}", document)


def register(server: OsslspServer) -> None:
    @server.command(EXPLAIN)
    async def explain(ls: OsslspServer, *arguments: Any) -> None:
        """[uri, range]: explain the range (osslsp/explanation or window/showDocument)."""
        uri = uri_argument(arguments, EXPLAIN, "range")
        await explain_range(ls, uri, range_argument(arguments[1]))
