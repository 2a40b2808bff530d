"""The inline-completion prompt.

Chat models have no fill-in-the-middle tokens, so the completion is asked for as a conversation
(see NOTES: Continue's hole filler, Copilot Arena's snip-it): the instructions and the style guide
come first (they never change, so their cache is reused), then the workspace context, then the code
after the cursor, then the code before it. The assistant's answer is pre-filled with an opening
code fence and the current line up to the cursor, so the model continues mid-line like a code
model would, and each keystroke only changes the last few tokens of the prompt.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from osslsp.index import Snippet
from osslsp.prompts.budget import fit_head, fit_tail
from osslsp.prompts.harmony import FINAL_CHANNEL
from osslsp.prompts.modeltext import Message, ModelText

INSTRUCTIONS = """You are the code completion engine of a code editor.
The user shows you a file split at the cursor: the code after the cursor, then the code before it.
Reply with exactly one fenced code block holding the code that goes at the cursor.
Your reply is already started for you: the fence and the current line up to the cursor are written;
continue that line from where it stops, then add lines only while they belong to the same
statement or block. Close the code block before the code that already follows the cursor:
never repeat it. No explanations, no comments about the task."""

# What share of the budget each section may take; unused tokens go to the code before the cursor.
GUIDE_SHARE = 0.10
CONTEXT_SHARE = 0.25
SUFFIX_SHARE = 0.20
SMALL_MODEL_PREFILL_LINES = 12


@dataclass(frozen=True)
class Cursor:
    """A document split at the cursor."""

    path: str  # as shown to the model: relative to the workspace when possible
    language: str  # LSP language id ("python", ...) or "" when unknown
    prefix: str  # the text before the cursor
    suffix: str  # the text after the cursor
    absolute: Path | None = None  # the file itself, for the workspace index

    @property
    def line_prefix(self) -> str:
        """The current line up to the cursor."""
        return self.prefix.rpartition("\n")[2]

    @property
    def line_suffix(self) -> str:
        """The current line after the cursor."""
        return self.suffix.partition("\n")[0]


@dataclass(frozen=True)
class Prompt:
    """A prompt as the model receives it, and what post-processing needs to know of it."""

    text: str
    ids: list[int]
    prefill: str  # the start of the answer we wrote for the model (it continues after it)
    stop_ids: frozenset[int]
    sections: dict[str, int] = field(default_factory=dict)  # tokens used per section


def _fence(language: str) -> str:
    return "```" + (language or "")


def _context_block(snippets: Sequence[Snippet], budget: int, text: ModelText) -> str:
    """As many snippets, in the order given (best first), as fit the budget."""
    parts: list[str] = []
    used = 0
    for snippet in snippets:
        part = f"# {snippet.path}:{snippet.line}\n{snippet.text.rstrip()}\n"
        cost = text.count(part)
        if used + cost > budget:
            continue  # a smaller, later snippet may still fit
        parts.append(part)
        used += cost
    return "\n".join(parts)


def _user_message(cursor: Cursor, context: str, suffix: str, prefix: str) -> str:
    fence = _fence(cursor.language)
    sections = []
    if context:
        sections.append(f"Definitions from other files of the workspace:\n{fence}\n{context}```")
    sections.append(f"File: {cursor.path}")
    sections.append(f"Code after the cursor:\n{fence}\n{suffix}\n```")
    sections.append(f"Code before the cursor (the cursor is at the end of the last line):\n{fence}\n{prefix}")
    return "\n\n".join(sections)


def _small_model_user_message(cursor: Cursor, code_before: str) -> str:
    """The one request SmolLM2-135M answers with code: the code before the cursor, nothing else.

    Measured: adding instructions, a system message, the code after the cursor, workspace
    context or a style guide (before or after) made it answer with prose or an empty block.
    """
    language = cursor.language.title() if cursor.language else "the"
    return f"Complete this {language} code:\n{_fence(cursor.language)}\n{code_before}\n```"


def _developer_message(guide: str) -> str:
    if not guide:
        return INSTRUCTIONS
    return f"{INSTRUCTIONS}\n\nFollow the team's style guide:\n{guide}"


def answer_start(text: ModelText, cursor: Cursor) -> str:
    """The code we write into the answer for the model to continue.

    gpt-oss continues the current line well, and only that line changes per keystroke. Small
    chat models (SmolLM2) lose the thread unless the answer already holds the code around
    the cursor, so theirs carries the last lines of the code before it.
    """
    if text.is_harmony:
        return cursor.line_prefix
    lines = cursor.prefix.split("\n")
    return "\n".join(lines[-SMALL_MODEL_PREFILL_LINES:])


def _assemble(text: ModelText, cursor: Cursor, guide: str, context: str, suffix: str,
              prefix_lines: str) -> tuple[str, str]:
    """The full prompt text and its pre-filled answer start."""
    start = answer_start(text, cursor)
    if text.is_harmony:
        messages = [
            Message("developer", _developer_message(guide)),
            Message("user", _user_message(cursor, context, suffix, prefix_lines)),
        ]
    else:
        messages = [Message("user", _small_model_user_message(cursor, prefix_lines + start))]
    rendered = text.render(messages, reasoning_effort="low" if text.is_harmony else None)
    prefill = f"{_fence(cursor.language)}\n{start}"
    channel = FINAL_CHANNEL if text.is_harmony else ""
    return rendered + channel + prefill, prefill


def build_completion_prompt(
    text: ModelText,
    cursor: Cursor,
    budget: int,
    guide: str = "",
    snippets: Sequence[Snippet] = (),
) -> Prompt:
    """The completion prompt for a cursor, never longer than `budget` tokens.

    `guide` comes fitted to its share of the budget (`GUIDE_SHARE`) and `snippets` best first.
    Every count and the ids come from the text's `TokenCounter`, equal to encoding each text
    whole: what the last prompts held is not encoded again, so a keystroke that changes the
    current line re-encodes only that line.
    """
    skeleton, _ = _assemble(text, cursor, "", "", "", "")
    free = budget - text.count(skeleton)
    if free <= 0:
        raise ValueError(f"a budget of {budget} tokens cannot hold the instructions and the current line")
    guide_part = guide
    context_part = _context_block(snippets, int(free * CONTEXT_SHARE), text)
    suffix_budget = int(free * SUFFIX_SHARE)
    suffix_part = fit_head(cursor.suffix, suffix_budget, text.counter).rstrip("\n")
    before_line = cursor.prefix[: len(cursor.prefix) - len(answer_start(text, cursor))]
    prefix_budget = free - text.count(guide_part) - text.count(context_part) - text.count(suffix_part)
    while True:
        prefix_part = fit_tail(before_line, prefix_budget, text.counter)
        prompt_text, prefill = _assemble(text, cursor, guide_part, context_part, suffix_part, prefix_part)
        ids = text.counter.encode(prompt_text)
        over = len(ids) - budget
        if over <= 0:
            break
        # Section headers and merges across borders cost a little more than the parts alone.
        # The prefix was sized to take what was left, so it gives back first.
        if prefix_part:
            prefix_budget -= over
        elif suffix_part:
            suffix_budget -= over
            suffix_part = fit_head(cursor.suffix, suffix_budget, text.counter).rstrip("\n")
        elif context_part or guide_part:
            context_part, guide_part = ("", guide_part) if context_part else ("", "")
        else:
            raise ValueError(f"the prompt needs {len(ids)} tokens, over the budget of {budget}")
    sections = {
        "guide": text.count(guide_part),
        "context": text.count(context_part),
        "suffix": text.count(suffix_part),
        "prefix": text.count(prefix_part),
        "total": len(ids),
    }
    return Prompt(prompt_text, ids, prefill, text.stop_ids, sections)
