"""`textDocument/inlineCompletion`: ghost text at the cursor (LSP 3.18)."""

from __future__ import annotations

from lsprotocol import types

from osslsp.documents import position_at
from osslsp.features.completing import complete_at
from osslsp.prompts.postprocess import replaced_length
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
        _, document, offset, _ = ls.document_at(params.text_document.uri, params.position)
        replaced = replaced_length(text, document[offset:].partition("\n")[0])
        line, character = position_at(document, offset + replaced, ls.position_encoding)
        here = types.Range(start=params.position, end=types.Position(line=line, character=character))
        return types.InlineCompletionList(items=[types.InlineCompletionItem(insert_text=text, range=here)])
