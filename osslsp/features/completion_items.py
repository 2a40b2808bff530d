"""`textDocument/completion`: the same suggestion for clients without inline completion.

A client that declares inline completion gets an empty list: it shows the suggestion as ghost text,
and a completion item with the same text would open its suggestion list over the ghost text."""

from __future__ import annotations

from lsprotocol import types

from osslsp.features.suggestion import complete_at, replaced_range
from osslsp.server import OsslspServer


def _has_inline_completion(ls: OsslspServer) -> bool:
    """The client declared `textDocument.inlineCompletion` in its capabilities."""
    text_document = ls.client_capabilities.text_document
    return text_document is not None and text_document.inline_completion is not None


def register(server: OsslspServer) -> None:
    @server.feature(types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions(trigger_characters=[".", "(", " "]))
    async def completion(ls: OsslspServer, params: types.CompletionParams) -> types.CompletionList:
        """The suggestion as one completion item whose label is its first line; its edit replaces
        what the inline item's range covers.

        The list is marked incomplete so that the client asks again as the user types on.
        """
        if _has_inline_completion(ls):
            return types.CompletionList(is_incomplete=False, items=[])
        text = await complete_at(ls, params.text_document.uri, params.position)
        if text is None:
            return types.CompletionList(is_incomplete=True, items=[])
        here = replaced_range(ls, params.text_document.uri, params.position, text)
        label = text.strip().splitlines()[0][:80]
        item = types.CompletionItem(
            label=label,
            kind=types.CompletionItemKind.Snippet,
            detail="osslsp",
            documentation=types.MarkupContent(kind=types.MarkupKind.Markdown, value=f"```\n{text}\n```"),
            text_edit=types.TextEdit(range=here, new_text=text),
            insert_text_format=types.InsertTextFormat.PlainText,
            sort_text="0",
            filter_text=label,
        )
        return types.CompletionList(is_incomplete=True, items=[item])
