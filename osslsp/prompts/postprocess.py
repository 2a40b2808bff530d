"""From what the model wrote to what the editor shows.

The model continues our pre-filled answer (an opening fence and the current line up to the
cursor). What comes back may hold harmony markers, an analysis channel, the closing fence, prose
after it, lines past the end of the block, or a copy of the code that follows the cursor. Every
peer trims the same things (NOTES: lsp-ai, Continue, Tabby); this module does it once for all.
"""

from __future__ import annotations

import re

from osslsp.languages import parser
from osslsp.prompts.completion import Cursor

_MARKER = re.compile(r"<\|[a-z_0-9]+\|>")
_FINAL = "<|channel|>final<|message|>"
_END_MARKERS = ("<|end|>", "<|return|>", "<|call|>", "<|endoftext|>")
_CLOSERS = tuple(")]}")
_OPENERS = (":", "{", "(", "[", "=>", "->", " do", "then")


def final_channel(raw: str, started_in_final: bool = True) -> str:
    """The final-channel text of an answer, without harmony markers.

    `started_in_final`: the prompt pre-filled the final channel (or the model has no channels),
    so the text is the answer from its first token; otherwise only what follows the model's own
    switch to the final channel counts (the analysis before it is never shown).
    """
    if _FINAL in raw:
        raw = raw.rsplit(_FINAL, 1)[1]
    elif not started_in_final:
        return ""
    for marker in _END_MARKERS:
        raw = raw.split(marker, 1)[0]
    return _MARKER.sub("", raw)


def syntax_error_count(text: str, language: str) -> int:
    """How many ERROR and MISSING nodes tree-sitter finds in a whole document."""
    tree = parser(language).parse(text.encode("utf-8", "surrogatepass"))
    count, stack = 0, [tree.root_node]
    while stack:
        node = stack.pop()
        if node.is_error or node.is_missing:
            count += 1
        if node.has_error:
            stack.extend(node.children)
    return count


def _indent_width(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


def is_multiline_trigger(cursor: Cursor) -> bool:
    """A new or opening line invites a block; a cursor inside a line gets the rest of that line."""
    if cursor.line_suffix.strip() and cursor.line_suffix.strip() not in _CLOSERS:
        return False
    stripped = cursor.line_prefix.rstrip()
    return not stripped.strip() or stripped.endswith(_OPENERS)


def _cut_at_block_end(lines: list[str], cursor: Cursor) -> list[str]:
    """Keep the lines of the statement or block that starts at the cursor."""
    base = _indent_width(cursor.line_prefix)
    opened = cursor.line_prefix.rstrip().endswith(_OPENERS)
    kept = [lines[0]]
    for line in lines[1:]:
        if not line.strip():
            kept.append(line)
            continue
        width = _indent_width(line)
        if width < base or (width == base and not opened and not kept[-1].rstrip().endswith(_OPENERS)):
            # Back at or above the level we started at: the block ended, unless it closes ours.
            if width == base and line.strip()[0] in _CLOSERS:
                kept.append(line)
            break
        if width == base and opened and line.strip()[0] not in _CLOSERS:
            break
        kept.append(line)
        if width == base and line.strip()[0] in _CLOSERS:
            break
    while kept and not kept[-1].strip():
        kept.pop()
    return kept


def _drop_suffix_copy(lines: list[str], cursor: Cursor) -> list[str]:
    """Cut where the completion starts repeating the lines that follow the cursor."""
    following = [line.strip() for line in cursor.suffix.split("\n")[1:] if line.strip()][:3]
    if not following:
        return lines
    for index in range(1, len(lines)):
        window = [line.strip() for line in lines[index:] if line.strip()][: len(following)]
        if window and window == following[: len(window)]:
            return lines[:index]
    return lines


def _drop_line_suffix_overlap(text: str, cursor: Cursor) -> str:
    """`foo(|)` completed as `bar)` would double the `)`: remove what the line already has."""
    tail = cursor.line_suffix.strip()
    first, newline, rest = text.partition("\n")
    if tail and first.rstrip().endswith(tail):
        first = first.rstrip()[: -len(tail)]
    return first + newline + rest


def _indent_to_cursor(text: str, cursor: Cursor) -> str:
    """On a blank line, a model that starts a new line and writes at column 0 meant the cursor's
    line and indentation: insert its first line at the cursor, indent what follows to match."""
    indent = cursor.line_prefix
    if indent.strip() or not text.startswith("\n"):
        return text
    lines = text.lstrip("\n").split("\n")
    lines[0] = lines[0].lstrip(" \t")
    lines[1:] = [line if not line.strip() or line.startswith(indent) else indent + line for line in lines[1:]]
    return "\n".join(lines)


def clean_completion(raw: str, cursor: Cursor, prefill: str) -> str | None:
    """The text to insert at the cursor, or None when nothing useful is left."""
    text = final_channel(raw)
    # Some models restate the pre-filled start; the continuation begins after it.
    if text.startswith(prefill):
        text = text[len(prefill):]
    text = _indent_to_cursor(text.split("```", 1)[0], cursor)
    lines = text.split("\n")
    if is_multiline_trigger(cursor):
        lines = _cut_at_block_end(lines, cursor)
        lines = _drop_suffix_copy(lines, cursor)
    else:
        lines = lines[:1]
    text = "\n".join(line.rstrip() for line in lines[:-1]) + ("\n" if len(lines) > 1 else "")
    text += lines[-1].rstrip() if lines else ""
    text = _drop_line_suffix_overlap(text, cursor)
    if not text.strip():
        return None
    if cursor.suffix.startswith(text):
        return None  # only repeats what is already there
    return text
