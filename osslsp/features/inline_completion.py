"""`textDocument/inlineCompletion`: ghost text at the cursor (LSP 3.18)."""

from __future__ import annotations

from lsprotocol import types

from osslsp.features.suggestion import complete_at, replaced_range
from osslsp.server import OsslspServer


def register(server: OsslspServer) -> None:
    # Registered with options, or pygls never advertises inlineCompletionProvider.
    @server.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
    async def inline_completion(ls: OsslspServer, params: types.InlineCompletionParams) -> types.InlineCompletionList:
        """One suggestion at the cursor; an empty list when there is nothing to say.

        A suggestion that writes the brackets and quotes the editor closed after the cursor
        (`{` + `}")` completed as `total}")`) replaces them: its range covers them.
        """
        text = await complete_at(ls, params.text_document.uri, params.position)
        if text is None:
            return types.InlineCompletionList(items=[])
        here = replaced_range(ls, params.text_document.uri, params.position, text)
        return types.InlineCompletionList(items=[types.InlineCompletionItem(insert_text=text, range=here)])
