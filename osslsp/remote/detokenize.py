"""A growing answer's text, decoded a few ids at a time instead of all of them after every token.

Decoding every id again after each new one costs O(n) a token and O(n^2) an answer: for a
2,000-token chat answer, on the server's event loop, about a second of work. Here each new id
costs two decodes of a short window: the ids since the text was last settled, with the ids
before them as context (a tokenizer may decode an id differently at the start of a text, as
SentencePiece's leading space). A window whose text ends in half a UTF-8 character is not
settled until the character is complete. The result is the text that decoding all the ids at
once gives, for byte-level BPE (gpt-oss, SmolLM2) and SentencePiece alike.
"""

from __future__ import annotations

from collections.abc import Callable

INCOMPLETE = "\ufffd"  # what decoding gives for a UTF-8 character whose bytes have not all come


class IncrementalText:
    """Called with a growing list of ids (each call: the last call's ids and more), returns
    `shape(decode(ids))`; given any other list it starts over."""

    def __init__(self, decode: Callable[[list[int]], str], shape: Callable[[str], str] | None = None):
        self._decode = decode
        self._shape = shape
        self._ids: list[int] = []
        self._settled = ""  # the text of ids[:self._read], as whole decoding gives it
        self._context = 0  # where the window of the next decode starts (ids before _read)
        self._read = 0  # ids whose text is settled
        self._pending = ""  # the text of ids[self._read:], not settled yet

    def __call__(self, ids: list[int]) -> str:
        known = len(self._ids)
        if len(ids) < known or ids[:known] != self._ids:
            self.__init__(self._decode, self._shape)
            known = 0
        for token in ids[known:]:
            self._add(token)
        text = self._settled + self._pending
        return self._shape(text) if self._shape is not None else text

    def _add(self, token: int) -> None:
        self._ids.append(token)
        before = self._decode(self._ids[self._context:self._read])
        window = self._decode(self._ids[self._context:])
        if not window.startswith(before):  # the window's text does not extend its context's: decode all
            self._settled, self._pending = self._decode(self._ids), ""
        elif window.endswith(INCOMPLETE):
            self._pending = window[len(before):]
            return
        else:
            self._settled, self._pending = self._settled + window[len(before):], ""
        self._context, self._read = self._read, len(self._ids)
