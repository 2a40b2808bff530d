"""gpt-oss's harmony format, as text: its markers, and reading the final channel out of an answer.

A harmony answer is messages on channels (`analysis` for thinking, `final` for the answer), each
`<|channel|>NAME<|message|>TEXT` and closed by an end marker. A prompt may pre-fill the final
channel (`FINAL_CHANNEL`) so that the model answers at once.
"""

from __future__ import annotations

import re

CHANNEL = "<|channel|>"
FINAL_CHANNEL = "<|channel|>final<|message|>"
END = "<|end|>"  # closes one message; the answer may go on with another
END_MARKERS = (END, "<|return|>", "<|call|>", "<|endoftext|>")
_MARKER = re.compile(r"<\|[a-z_0-9]+\|>")


def is_harmony_template(chat_template: str, channel_id: int | None) -> bool:
    """A chat template (and a tokenizer that knows the channel marker as `channel_id`) of the
    harmony format."""
    return CHANNEL in chat_template and channel_id is not None


def final_channel(raw: str, started_in_final: bool = True) -> str:
    """The final-channel text of an answer, without harmony markers.

    `started_in_final`: the prompt pre-filled the final channel (or the model has no channels),
    so the text is the answer from its first token; otherwise only what follows the model's own
    switch to the final channel counts (the analysis before it is never shown).
    """
    if FINAL_CHANNEL in raw:
        raw = raw.rsplit(FINAL_CHANNEL, 1)[1]
    elif not started_in_final:
        return ""
    for marker in END_MARKERS:
        raw = raw.split(marker, 1)[0]
    return _MARKER.sub("", raw)


def final_message_ended(raw: str) -> bool:
    """The answer opened the final channel and closed its message."""
    return FINAL_CHANNEL in raw and END in raw.rsplit(FINAL_CHANNEL, 1)[1]
