"""Inline completions: from a cursor to the text the editor shows.

`complete` asks the assistant for the prompt, backs it up to a token boundary (token healing) where
the backend can hold the answer's first tokens, streams the answer until the block at the cursor is
finished, cleans it (osslsp/prompts/postprocess.py) and holds it to the style guide.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field, replace

from osslsp import audit
from osslsp.assistant import Assistant, StreamEnd, Superseded
from osslsp.documents import position_at
from osslsp.prompts.completion_prompt import Cursor, Prompt
from osslsp.prompts.healing import Healed, heal, strip_removed, vocabulary_for
from osslsp.prompts.postprocess import Cleaned, block_finished, clean_completion, replaced_length
from osslsp.style import enforce_completion

log = logging.getLogger(__name__)


@dataclass
class Completion:
    """One completion: the text to insert (None when nothing is worth showing, and `why`), how many
    characters after the cursor on its line it replaces, and how it went: `timings` in ms, where
    `ttft_ms` (from the start to the first token) is `hops_ms` (to the prompt thread and back),
    `prompt_ms` (prompt and healing, on that thread) and `first_token_ms` (from the submit to
    the backend to the first token on the event loop: the model's own time to first token, its
    queue and the hand-over)."""

    text: str | None
    prompt: Prompt
    raw: str = ""
    replaced: int = 0
    why: str = ""
    timings: dict[str, float] = field(default_factory=dict)


def log_withheld(where: str, before_cursor: str, why: str) -> None:
    """One info line for the log: which completion showed nothing (`where` is the file as
    `display_path` names it), and why."""
    line, column = position_at(before_cursor, len(before_cursor), "utf-32")
    log.info("completion withheld at %s:%d:%d: %s", where, line + 1, column + 1, why)


async def complete(assistant: Assistant, cursor: Cursor, key: str | None = None) -> Completion:
    """Generate and clean one completion; cancelling the awaiting task stops the model."""
    await assistant.wait_ready()
    started = time.perf_counter()
    # Retrieval and fitting the budget take milliseconds (the index's first use: ~0.4 s):
    # off the event loop, which must stay free for cancels and keystrokes.
    prompt, healed, (began, built) = await asyncio.to_thread(_prompt_and_healing, assistant, cursor)
    submitted = time.perf_counter()
    removed = healed.removed if healed else ""

    def block_done(raw: str) -> bool:
        return block_finished(strip_removed(raw, removed), cursor, prompt.prefill)

    raw, first_token, ended = "", None, StreamEnd()
    try:
        async for delta in assistant.stream(prompt.text[:len(prompt.text) - len(removed)],
                                            healed.ids if healed else prompt.ids, prompt.stop_ids, key,
                                            block_done, ended, max_new_tokens=assistant.settings.max_new_tokens,
                                            first_text=removed, interactive=True):
            first_token = first_token or time.perf_counter()
            raw += delta
    except (Superseded, asyncio.CancelledError) as stopped:
        why = "superseded by a newer request" if isinstance(stopped, Superseded) else "cancelled by the editor"
        log_withheld(cursor.path, cursor.prefix, why)
        # The prompt went to the model: the record says so, with what it wrote before it stopped.
        audit.generation(assistant.settings, f"completion:{cursor.absolute}", prompt.text, raw, None,
                         {"total_ms": round((time.perf_counter() - started) * 1000, 1),
                          "prompt_tokens": len(prompt.ids)}, before=cursor.prefix, why=why)
        raise
    raw = strip_removed(raw, removed)
    finished = time.perf_counter()
    cleaned = enforce_style(assistant, cursor, clean_completion(raw, cursor, prompt.prefill,
                                                                complete=ended.finish_reason != "length",
                                                                check_syntax=not assistant.meaningless))
    if cleaned.text is None:
        log_withheld(cursor.path, cursor.prefix, cleaned.why)
    completion = Completion(
        text=cleaned.text,
        prompt=prompt,
        raw=raw,
        replaced=cleaned.replaced,
        why=cleaned.why,
        timings={
            "ttft_ms": round(((first_token or finished) - started) * 1000, 1),
            "total_ms": round((finished - started) * 1000, 1),
            "prompt_tokens": len(prompt.ids),
            "hops_ms": round((began - started + submitted - built) * 1000, 2),
            "prompt_ms": round((built - began) * 1000, 2),
            "first_token_ms": round(((first_token or finished) - submitted) * 1000, 2),
        },
    )
    audit.generation(assistant.settings, f"completion:{cursor.absolute}", prompt.text, raw, completion.text,
                     completion.timings, before=cursor.prefix, why=cleaned.why)
    return completion


def _prompt_and_healing(assistant: Assistant,
                        cursor: Cursor) -> tuple[Prompt, Healed | None, tuple[float, float]]:
    """Both on one worker thread: a keystroke pays one hop off the event loop, not two. Also
    when the work began and ended (perf_counter)."""
    began = time.perf_counter()
    prompt = assistant.completion_prompt(cursor)
    return prompt, healed_prompt(assistant, prompt), (began, time.perf_counter())


def healed_prompt(assistant: Assistant, prompt: Prompt) -> Healed | None:
    """The prompt backed up to a token boundary before the cursor (token healing), when the
    backend can hold the answer's first tokens to the text removed; None to send it as is."""
    vocabulary = vocabulary_for(assistant.load_text()) if assistant.backend.constrains_tokens else None
    if vocabulary is None:
        return None
    code_up_to_cursor = prompt.prefill.partition("\n")[2]
    return heal(prompt.ids, code_up_to_cursor, vocabulary)


def enforce_style(assistant: Assistant, cursor: Cursor, cleaned: Cleaned) -> Cleaned:
    """The suggestion fixed or cut to the style guide, or none (and the rule why) when nothing
    of it complies."""
    if cleaned.text is None or not cursor.language:
        return cleaned
    enforced = enforce_completion(cursor.prefix, cleaned.text, cursor.suffix[cleaned.replaced:],
                                  cursor.language, assistant.guide_for(cursor.language))
    for finding in enforced.rejected:
        log.info("style: %s:%s:%s %s: %s rejected %r", cursor.path, finding.line, finding.col,
                 finding.rule, finding.message, cleaned.text)
    if enforced.text is None:
        first = enforced.rejected[0] if enforced.rejected else None
        return Cleaned(None, f"style rule {first.rule} at line {first.line}: {first.message}" if first
                       else "the style guide withheld it")
    return replace(cleaned, text=enforced.text, replaced=replaced_length(enforced.text, cursor.line_suffix))
