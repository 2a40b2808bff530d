"""Explain a selection: the prompt (selection, enclosing scope, definitions it uses) and the stream.

The answer is Markdown, streamed as it grows. With more reasoning effort than "low", gpt-oss thinks
in its analysis channel first; that is never shown (the assistant yields final-channel text only).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from osslsp.actions.context import enclosing_scope, fence_for, named_definitions, names_in, snippets_block
from osslsp.assistant import Assistant, AssistantError, display_path
from osslsp.index import Snippet, is_secret_path, redact_secrets
from osslsp.languages import language_for
from osslsp.prompts.budget import fit_head, fit_tail
from osslsp.prompts.modeltext import Message

INSTRUCTIONS = """You explain code to a programmer in a code editor.
The user selected some code; explain what it does and how, and anything surprising about it, in
concise Markdown. Refer to the enclosing code and the definitions shown where they matter.
Do not rewrite the code unless a short example makes the explanation clearer."""

SCOPE_SHARE = 0.30
DEFINITIONS_SHARE = 0.25
TOKENS_PER_SETTING = 16  # an explanation may take this many times the completion's maxNewTokens
NO_ANSWER = "_The model gave no explanation._"
REPETITION_NOTE = "\n\n_(osslsp ended the explanation here: the model was repeating itself.)_"


@dataclass(frozen=True)
class Selection:
    """A non-empty selection in a document (string offsets), in a language osslsp parses."""

    path: Path
    text: str
    start: int
    end: int
    language: str

    @property
    def code(self) -> str:
        return self.text[self.start:self.end]

    @property
    def lines(self) -> tuple[int, int]:
        """The first and last line of the selection, 1-based."""
        last = self.end - 1 if self.end > self.start and self.text[self.end - 1] == "\n" else self.end
        return self.text.count("\n", 0, self.start) + 1, self.text.count("\n", 0, last) + 1


def selection_in(path: Path, text: str, start: int, end: int, language_id: str | None = None) -> Selection:
    """A selection to explain; AssistantError with a clear message when there is nothing to explain."""
    language = language_for(path, language_id)
    if language is None:
        raise AssistantError(f"osslsp cannot explain {language_id or path.suffix or path.name} files: "
                             "it does not know that language")
    if is_secret_path(path):
        raise AssistantError(f"{path.name} holds secrets: osslsp never puts it in a prompt")
    start, end = min(start, end), max(start, end)
    if not text[start:end].strip():
        raise AssistantError("select the code to explain first: the selection is empty")
    return Selection(path, text, start, end, language.name)


def scope_text(selection: Selection, budget: int, count) -> str:
    """The code around the selection: its enclosing function or class, else the lines around it,
    as much as fits the budget (the selection's own lines are marked)."""
    scope = enclosing_scope(selection.text, selection.language, selection.start, selection.end)
    low, high = scope if scope is not None else (0, len(selection.text))
    line_start = selection.text.rfind("\n", 0, low) + 1
    before = selection.text[line_start:selection.start]
    after = selection.text[selection.end:high]
    half = max(budget - count(selection.code), 0) // 2
    return (fit_tail(before, half, count) + "<<selection>>" + selection.code + "<</selection>>" +
            fit_head(after, half, count))


def explain_messages(code: str, language: str, lines: tuple[int, int], path: str, scope: str, definitions: str,
                     system_role: str = "developer") -> list[Message]:
    """The conversation for a selection (pure): its code, lines, enclosing code and definitions."""
    fence = fence_for(language)
    first, last = lines
    sections = [f"File: {path}, lines {first}-{last}"]
    if definitions:
        sections.append(f"Definitions from elsewhere in the workspace that the selection uses:\n{definitions}")
    sections.append(f"The enclosing code, the selection between <<selection>> and <</selection>>:\n"
                    f"{fence}\n{scope.rstrip()}\n```")
    sections.append(f"Explain the selected code:\n{fence}\n{code.rstrip()}\n```")
    return [Message(system_role, INSTRUCTIONS), Message("user", "\n\n".join(sections))]


def build_explain_prompt(assistant: Assistant, selection: Selection) -> tuple[list[Message], list[Snippet]]:
    """The explain conversation with its workspace context, within the token budget."""
    model_text = assistant.load_text()
    budget = assistant.settings.context_tokens
    scope = redact_secrets(scope_text(selection, int(budget * SCOPE_SHARE), model_text.count))
    definitions = named_definitions(assistant.index, names_in(selection.code, selection.language), selection.path,
                                    selection.lines, int(budget * DEFINITIONS_SHARE), model_text.count)
    messages = explain_messages(redact_secrets(selection.code), selection.language, selection.lines,
                                display_path(selection.path, assistant.root), scope,
                                snippets_block(definitions, fence_for(selection.language)),
                                "developer" if model_text.is_harmony else "system")
    return messages, definitions


async def explain_stream(assistant: Assistant, selection: Selection) -> AsyncIterator[str]:
    """The explanation as it grows: each item is the whole Markdown so far (never the analysis)."""
    messages, _ = build_explain_prompt(assistant, selection)
    markdown = ""
    async for delta in assistant.chat(messages, reasoning_effort=assistant.settings.reasoning_effort_explain,
                                      max_new_tokens=assistant.settings.max_new_tokens * TOKENS_PER_SETTING,
                                      key=f"explain:{selection.path}", repetition_note=REPETITION_NOTE):
        markdown += delta
        yield markdown


def explanation_document(selection: Selection, path: str, markdown: str) -> str:
    """The finished explanation as a Markdown document: where from, the code, the explanation."""
    first, last = selection.lines
    fence = fence_for(selection.language)
    return (f"# Explanation of {path}:{first}-{last}\n\n{fence}\n{selection.code.rstrip()}\n```\n\n"
            f"{markdown.strip() or NO_ANSWER}\n")
