"""From what the model wrote to what the editor shows.

The model continues our pre-filled answer (an opening fence and the current line up to the
cursor). What comes back may hold harmony markers, an analysis channel, the closing fence, prose
after it, lines past the end of the block, or a copy of the code that follows the cursor. Every
peer trims the same things (NOTES: lsp-ai, Continue, Tabby); this module does it once for all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from osslsp.languages import language_named, parser
from osslsp.prompts.completion_prompt import Cursor
from osslsp.prompts.harmony import final_channel

_CLOSERS = tuple(")]}")
_PAIRS = {"(": ")", "[": "]", "{": "}"}
_AUTO_CLOSED = set(")]}\"'`;")
# Code never holds raw control characters (editors show them as ^B): the answer stops before one.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_OPENERS = (":", "{", "(", "[", "=>", "->", " do", "then")


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


def trim_completion(raw: str, cursor: Cursor, prefill: str) -> str:
    """The model's answer cut to the statement or block at the cursor (no syntax check: cheap
    enough to run at every generated token)."""
    text = final_channel(raw)
    # Some models restate the pre-filled start; the continuation begins after it.
    if text.startswith(prefill):
        text = text[len(prefill):]
    text = _indent_to_cursor(_CONTROL.split(text.split("```", 1)[0], 1)[0], cursor)
    lines = text.split("\n")
    if is_multiline_trigger(cursor):
        lines = _cut_at_block_end(lines, cursor)
        lines = _drop_suffix_copy(lines, cursor)
    else:
        lines = lines[:1]
    text = "\n".join(line.rstrip() for line in lines[:-1]) + ("\n" if len(lines) > 1 else "")
    return text + (lines[-1].rstrip() if lines else "")


def block_finished(raw: str, cursor: Cursor, prefill: str) -> bool:
    """The answer so far closed its code fence or holds whole lines past the statement or block at
    the cursor: what follows would be cut, so the model may stop."""
    if "```" in final_channel(raw):
        return True
    complete_lines = raw.rpartition("\n")[0]
    if not complete_lines:
        return False
    kept = trim_completion(complete_lines + "\n", cursor, prefill)
    return kept.count("\n") < complete_lines.count("\n")


def _closing_text(tail: str) -> bool:
    """Text an editor inserts by itself after the cursor: closing brackets and quotes."""
    return bool(tail) and all(char in _AUTO_CLOSED for char in tail)


def _retypes(first_line: str, tail: str) -> bool:
    """The line's tail appears in the suggestion's first line, in order."""
    at = -1
    for char in tail:
        at = first_line.find(char, at + 1)
        if at < 0:
            return False
    return True


def replaced_length(text: str, line_suffix: str) -> int:
    """How many characters after the cursor (on its line) the suggestion replaces: the editor's
    auto-closed brackets and quotes when the suggestion writes them itself (interleaved with its
    own text, so that they cannot be trimmed off), else none."""
    tail = line_suffix.rstrip()
    first = text.split("\n", 1)[0]
    if not _closing_text(tail) or first.endswith(tail):
        return 0
    return len(tail) if _retypes(first, tail) else 0


def _fit_line_suffix(text: str, cursor: Cursor) -> str:
    """The suggestion fitted to what follows the cursor on its line, so that nothing is doubled.

    `foo(|)` completed as `bar)`: the `)` is there already, drop it from the suggestion; one that
    closes only the first of `}")` drops that one. One that writes all of the editor's closers
    interleaved with its own text keeps them and replaces them (`replaced_length`).
    """
    tail = cursor.line_suffix.rstrip()
    first, newline, rest = text.partition("\n")
    first = first.rstrip()
    if tail and not replaced_length(first, tail):
        for end in range(len(tail), 0, -1):
            if first.endswith(tail[:end]) and (end == len(tail) or _closing_text(tail[:end])):
                first = first[:-end]
                break
    return first + newline + rest


def balanced_head(text: str) -> str:
    """The text up to the first bracket it opens and never closes, or to a closer that does not
    match; closers of brackets opened before the text may follow; brackets inside quotes do not
    count."""
    opened: list[tuple[str, int]] = []  # (the closer expected, where its opener is)
    quote = ""
    for index, char in enumerate(text):
        if quote:
            if char == quote and text[index - 1] != "\\" or char == "\n":
                quote = ""
        elif char in "\"'`":
            quote = char
        elif char in _PAIRS:
            opened.append((_PAIRS[char], index))
        elif char in _PAIRS.values() and opened and opened.pop()[0] != char:
            return text[:index]
    return text[:opened[0][1]] if opened else text


def brackets_balanced(text: str) -> bool:
    """Every bracket the text opens, it closes, in order (see `balanced_head`)."""
    return balanced_head(text) == text


@dataclass(frozen=True)
class Cleaned:
    """What post-processing made of an answer: the text to insert (None: nothing worth showing),
    why there is none, and how much of the line after the cursor the text replaces."""

    text: str | None
    why: str = ""
    replaced: int = 0


def _syntax_cut(lines: list[str], cursor: Cursor, replaced: int) -> tuple[str, str]:
    """The longest run of whole lines (from the first) that leaves the document parsing no worse and,
    for a multi-line answer, its own brackets balanced; empty with the reason when none does.
    A one-line answer may leave a bracket open: `) {` or `function f() {` opens a block whose
    closer is already in the lines below, and the error count judges it."""
    suffix = cursor.suffix[replaced:]
    known = bool(cursor.language) and language_named(cursor.language) is not None
    before = syntax_error_count(cursor.prefix + cursor.suffix, cursor.language) if known else 0
    why = "its brackets do not balance"
    for count in range(len(lines), 0, -1):
        text = "\n".join(lines[:count])
        if not text.strip() or (len(lines) > 1 and not brackets_balanced(text)):
            continue
        if not known:
            return text, ""
        after = syntax_error_count(cursor.prefix + text + suffix, cursor.language)
        if after <= before:
            return text, ""
        why = f"it would leave the file with {after} syntax errors, {before} before"
    return "", why


def _drop_unfinished(text: str) -> str:
    """An answer whose last line the token limit cut: without that line, or when it is the only
    one, without its last word (the next token might have continued it) and whatever follows the
    first bracket it leaves open (`f(a, b, c, ...` becomes `f`)."""
    if "\n" in text:
        return text.rpartition("\n")[0]
    return balanced_head(re.sub(r"\w+$", "", text)).rstrip()


def _holds_the_end(text: str, answer: str) -> bool:
    """The text kept runs to the end of the model's answer (which is then unfinished when the
    token limit stopped it), rather than stopping at a closing fence or the end of a block."""
    def last_line(lines: str) -> str:
        return lines.rstrip().rpartition("\n")[2].strip()

    return "```" not in answer and last_line(text) == last_line(answer)


def clean_completion(raw: str, cursor: Cursor, prefill: str, complete: bool = True,
                     check_syntax: bool = True) -> Cleaned:
    """The text to insert at the cursor, or None and the reason when nothing useful is left.

    `complete`: the model ended its answer itself; False when the token budget cut it.
    `check_syntax`: cut the answer to the whole lines after which the file parses no worse than
    with the hole (error counts, so a line left unfinished before the answer does not count against
    it), or withhold it when no line does (off for a model with random weights, whose text is never
    code: the set-up check it serves would show nothing).
    """
    if not final_channel(raw).strip():
        return Cleaned(None, "the model's answer was empty")
    text = trim_completion(raw, cursor, prefill)
    if not text.strip():
        return Cleaned(None, "the model's answer held no code for the cursor")
    if not complete and _holds_the_end(text, final_channel(raw)):
        text = _drop_unfinished(text)
        if not text.strip():
            return Cleaned(None, "the token limit cut the answer's only line mid-word")
    text = _fit_line_suffix(text, cursor)
    if not text.strip():
        return Cleaned(None, "the answer only repeats the rest of the line")
    if cursor.suffix.startswith(text):
        return Cleaned(None, "the answer only repeats the code after the cursor")
    if check_syntax:
        text, why = _syntax_cut(text.split("\n"), cursor, replaced_length(text, cursor.line_suffix))
        if not text:
            return Cleaned(None, why)
    return Cleaned(text, replaced=replaced_length(text, cursor.line_suffix))
