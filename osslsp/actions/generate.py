"""Generate a function from its docstring: the prompt, the generation, the checks, one retry.

The model is shown the stub as written (signature and documentation), the enclosing class, the
workspace definitions its signature and documentation name, and the style guide; it answers with
the body only. The body must parse in the stub's language and keep the guide; when it does not,
the model gets one more attempt with the problems named, and then we give up with a message.
"""

from __future__ import annotations

import logging
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from osslsp.actions.context import fence_for, named_definitions, names_in, snippets_block
from osslsp.actions.stubs import Stub, body_from_answer
from osslsp.actions.validate import check_body
from osslsp.assistant import Assistant, AssistantError, display_path
from osslsp.index import Snippet, is_secret_path, redact_secrets
from osslsp.prompts.budget import fit_head
from osslsp.prompts.completion_prompt import GUIDE_SHARE
from osslsp.prompts.modeltext import Message

INSTRUCTIONS = """You write the body of one function in a code editor.
You are shown the function as written: its signature and its documentation, and a body that is
only a placeholder. Write the code that does what the documentation says.
Reply with exactly one fenced code block holding only the statements of the body: never repeat the
signature, the documentation or the function's closing brace, and write no explanations.
Use the definitions shown where they fit, otherwise only the language's standard library."""

log = logging.getLogger(__name__)

DEFINITIONS_SHARE = 0.30
CLASS_SHARE = 0.20
TOKENS_PER_SETTING = 8  # a body may take this many times the completion's maxNewTokens
ATTEMPTS = 2


class DocumentChanged(AssistantError):
    """The document was edited while the body was generated: the edit would be stale."""


@dataclass(frozen=True)
class GeneratePrompt:
    """The conversation for one stub, and what went into it (for tests and `osslsp generate --json`)."""

    messages: list[Message]
    definitions: list[Snippet]
    guide: str
    enclosing: str


@dataclass
class Generated:
    """How a generation ended: the text replacing the stub's body (None: nothing to apply) and why."""

    stub: Stub
    new_text: str | None
    message: str
    attempts: int = 0
    problems: list[str] = field(default_factory=list)
    answers: list[str] = field(default_factory=list)  # every answer of the model, rejected ones too
    why: str = ""  # what kind of problem the last rejected answer had


def user_message(stub: Stub, path: str, definitions: str, enclosing: str) -> str:
    """The request: the file, the definitions it may use, the class, the stub as written."""
    fence = fence_for(stub.language)
    sections = [f"File: {path}"]
    if definitions:
        sections.append(f"Definitions from the workspace that the signature and documentation name:\n{definitions}")
    if enclosing:
        sections.append(f"The class the function belongs to:\n{fence}\n{enclosing.rstrip()}\n```")
    function = textwrap.dedent(stub.line_indent + stub.source).rstrip()
    sections.append(f"The function to write:\n{fence}\n{function}\n```")
    sections.append(f"Write the body of `{stub.name}`.")
    return "\n\n".join(sections)


def retry_message(problems: Sequence[str]) -> str:
    """The second attempt's request: what was wrong with the first answer."""
    listed = "\n".join(f"- {problem}" for problem in problems)
    return (f"That body cannot be used:\n{listed}\nWrite the body again, fixing these problems; "
            "reply with the body's statements only, in one fenced code block.")


def generate_messages(stub: Stub, path: str, definitions: str, enclosing: str, guide: str,
                      system_role: str = "developer") -> list[Message]:
    """The conversation for a stub (pure): instructions and guide, then the request."""
    instructions = f"{INSTRUCTIONS}\n\nFollow the team's style guide:\n{guide}" if guide else INSTRUCTIONS
    return [Message(system_role, instructions), Message("user", user_message(stub, path, definitions, enclosing))]


def build_generate_prompt(assistant: Assistant, path: Path, text: str, stub: Stub) -> GeneratePrompt:
    """The prompt for a stub, with the workspace's definitions and guide, within the token budget."""
    if is_secret_path(path):
        raise AssistantError(f"{path.name} holds secrets: osslsp never puts it in a prompt")
    model_text = assistant.load_text()
    budget = assistant.settings.context_tokens
    guide = assistant.guide_text(stub.language, int(budget * GUIDE_SHARE))
    enclosing = fit_head(redact_secrets(stub.enclosing), int(budget * CLASS_SHARE), model_text.count)
    own_lines = (text.count("\n", 0, stub.start) + 1, text.count("\n", 0, stub.end) + 1)
    names = [name for name in names_in(f"{stub.signature}\n{stub.doc}\n{_header(stub.enclosing)}", stub.language)
             if name != stub.name]
    definitions = named_definitions(assistant.index, names, path, own_lines, int(budget * DEFINITIONS_SHARE),
                                    model_text.count)
    stub_shown = replace(stub, source=redact_secrets(stub.source))
    messages = generate_messages(stub_shown, display_path(path, assistant.root),
                                 snippets_block(definitions, fence_for(stub.language)), enclosing, guide,
                                 "developer" if model_text.is_harmony else "system")
    return GeneratePrompt(messages, definitions, guide, enclosing)


def _header(enclosing: str) -> str:
    """The first line of a class: its name, bases and generic parameters are worth looking up."""
    return enclosing.split("\n", 1)[0]


async def generate_body(assistant: Assistant, path: Path, text: str, stub: Stub,
                        is_current: Callable[[], bool] = lambda: True,
                        on_attempt: Callable[[int, str], None] = lambda attempt, why: None) -> Generated:
    """Generate, check and (once) retry a body for a stub; `Generated.new_text` None says why not.

    `is_current` tells whether the document is still the one the stub was found in: an edit of a
    changed document raises DocumentChanged. Cancelling the awaiting task stops the model.
    """
    prompt = build_generate_prompt(assistant, path, text, stub)
    guide = assistant.guide_for(stub.language)
    messages = list(prompt.messages)
    outcome = Generated(stub, None, "")
    max_new_tokens = assistant.settings.max_new_tokens * TOKENS_PER_SETTING
    for attempt in range(1, ATTEMPTS + 1):
        on_attempt(attempt, "; ".join(outcome.problems))
        answer = ""
        async for delta in assistant.chat(messages, reasoning_effort=assistant.settings.reasoning_effort_generate,
                                          answer_prefix=fence_for(stub.language) + "\n",
                                          max_new_tokens=max_new_tokens, key=f"generate:{path}",
                                          stop_when=lambda final: "```" in final):
            answer += delta
        if not is_current():
            raise DocumentChanged(f"{path.name} changed while {stub.name} was generated: nothing was applied")
        outcome.attempts, outcome.answers = attempt, outcome.answers + [answer]
        checked = check_body(text, stub, body_from_answer(answer, stub), guide)
        if checked.new_text is not None:
            outcome.new_text, outcome.problems = checked.new_text, []
            outcome.message = f"generated the body of {stub.name}" + (
                f" ({'; '.join(checked.fixed)})" if checked.fixed else "")
            return outcome
        outcome.problems, outcome.why = checked.problems, checked.why
        log.info("generate %s in %s: attempt %d rejected, %s (%s); the model's answer was:\n%s", stub.name,
                 path.name, attempt, checked.why, "; ".join(checked.problems), answer)
        messages += [Message("assistant", f"{fence_for(stub.language)}\n{answer.split('```', 1)[0]}```"),
                     Message("user", retry_message(checked.problems))]
    outcome.message = (f"osslsp could not generate a body for {stub.name} in {ATTEMPTS} attempts: {outcome.why}: "
                       f"{'; '.join(outcome.problems)} (the rejected answers are in the log)")
    return outcome
