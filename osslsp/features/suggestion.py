"""The suggestion at a position, what inline and classic completion share: from a document position
to the text to insert, and the range it replaces."""

from __future__ import annotations

import asyncio

from lsprotocol import types

from osslsp.assistant import AssistantError, Superseded, display_path
from osslsp.completions import complete, log_withheld
from osslsp.documents import position_at
from osslsp.languages import language_for
from osslsp.prompts.postprocess import replaced_length
from osslsp.server import OsslspServer


async def complete_at(ls: OsslspServer, uri: str, position: types.Position) -> str | None:
    """The cleaned completion at a position, or None; bad positions raise InvalidParams."""
    path, text, offset, language_id = ls.document_at(uri, position)
    settings = ls.settings
    if not settings.enabled or ls.assistant is None:
        return None
    language = language_for(path, language_id)
    name = language.name if language else language_id
    if settings.languages and name not in settings.languages:
        return None
    if settings.debounce_ms:
        # Typing on sends newer requests for the document: only the newest outlives the pause.
        ticket = ls.completion_tickets[uri] = ls.completion_tickets.get(uri, 0) + 1
        where = display_path(path, ls.assistant.root)
        try:
            await asyncio.sleep(settings.debounce_ms / 1000)
        except asyncio.CancelledError:
            log_withheld(where, text[:offset], "cancelled by the editor before the typing paused")
            raise
        if ls.completion_tickets[uri] != ticket:
            log_withheld(where, text[:offset], "superseded by a newer request before the typing paused")
            return None
    assistant = ls.assistant
    try:
        completion = await complete(assistant, assistant.cursor_at(path, text, offset, language_id), key=uri)
    except Superseded:
        return None
    except AssistantError as error:
        ls.tell_once(str(error))
        return None
    ls.log(f"completion {completion.timings}", types.MessageType.Log)
    return completion.text


def replaced_range(ls: OsslspServer, uri: str, position: types.Position, text: str) -> types.Range:
    """Where a suggestion goes: at the cursor, and over the brackets and quotes the editor closed
    after it when the suggestion writes them itself (`{` + `}")` completed as `total}")`), so that
    accepting it never doubles them."""
    _, document, offset, _ = ls.document_at(uri, position)
    replaced = replaced_length(text, document[offset:].partition("\n")[0])
    line, character = position_at(document, offset + replaced, ls.position_encoding)
    return types.Range(start=position, end=types.Position(line=line, character=character))
