"""The generate and explain prompts hold the code, its context from a real index, and the guide."""

from __future__ import annotations

import textwrap

import pytest

from osslsp.actions.explain import build_explain_prompt, explanation_document, selection_in
from osslsp.actions.generate import build_generate_prompt, retry_message
from osslsp.actions.stubs import find_stub
from osslsp.assistant import Assistant, AssistantError
from osslsp.settings import Settings
from tests.actions.samples import STUBS

HELPERS = {
    "python": 'def clamp_total(value):\n    """Keep value in range."""\n    return value\n',
    "javascript": "/** Keep value in range. */\nexport function clamp_total(value) {\n  return value;\n}\n",
    "typescript": "/** Keep value in range. */\nexport function clamp_total(value: number): number {\n"
                  "  return value;\n}\n",
    "go": "package sums\n\n// clamp_total keeps value in range.\nfunc clamp_total(value int) int {\n\treturn value\n}\n",
    "rust": "/// Keep value in range.\npub fn clamp_total(value: i32) -> i32 {\n    value\n}\n",
    "java": "class Limits {\n  /** Keep value in range. */\n  static int clamp_total(int value) {\n    return value;\n  }\n}\n",
    "c": "/* Keep value in range. */\nint clamp_total(int value) {\n  return value;\n}\n",
    "cpp": "/// Keep value in range.\nint clamp_total(int value) {\n  return value;\n}\n",
    "ruby": "# Keep value in range.\ndef clamp_total(value)\n  value\nend\n",
}


@pytest.fixture
def workspace(tmp_path, tiny_dir):
    """A workspace on disk and an assistant over it (the tiny model's tokenizer; no weights)."""
    def make(files: dict[str, str]) -> Assistant:
        for name, text in files.items():
            (tmp_path / name).write_text(text)
        assistant = Assistant(Settings(model="tiny", context_tokens=2048), tmp_path)
        assistant.index.refresh()
        made.append(assistant)
        return assistant

    made: list[Assistant] = []
    yield make
    for assistant in made:
        assistant.close()


@pytest.mark.parametrize("language", sorted(STUBS))
def test_generate_prompt_holds_signature_doc_definitions_and_guide(workspace, language: str):
    suffix, stub_text = STUBS[language]
    text = stub_text.replace("MARK", "bounded by clamp_total")
    assistant = workspace({f"sums.{suffix}": text, f"helpers.{suffix}": HELPERS[language]})
    path = assistant.root / f"sums.{suffix}"
    stub = find_stub(text, language, text.index("clamp_total"))
    prompt = build_generate_prompt(assistant, path, text, stub)
    system, user = prompt.messages
    assert system.role == "developer" and "body of one function" in system.content
    assert stub.signature.strip().split("\n")[-1] in user.content
    assert "the sum; bounded by clamp_total" in user.content
    assert [snippet.path for snippet in prompt.definitions] == [f"helpers.{suffix}"]
    assert "clamp_total(" in user.content.split("The function to write")[0]
    guide = assistant.guide_text(language, 204)
    assert (guide in system.content) if guide else "style guide" not in system.content
    assert language == "c" or guide.startswith("Style guide")


def test_generate_prompt_holds_the_enclosing_class(workspace):
    text = textwrap.dedent('''\
        class Account:
            """Money in the bank."""

            def __init__(self) -> None:
                self.total = 0

            def deposit(self, amount):
                """Add amount to the total."""
                pass
        ''')
    assistant = workspace({"bank.py": text})
    stub = find_stub(text, "python", text.index("Add amount"))
    prompt = build_generate_prompt(assistant, assistant.root / "bank.py", text, stub)
    user = prompt.messages[1].content
    assert "The class the function belongs to" in user and "self.total = 0" in user
    assert prompt.definitions == []  # the class itself is the code, not context from elsewhere


def test_retry_names_the_problems():
    message = retry_message(["line 3: syntax error at 'return (a +'", "line 4: naming-variable: bad"])
    assert "- line 3: syntax error at 'return (a +'" in message and "- line 4: naming-variable" in message


@pytest.mark.parametrize("language", sorted(STUBS))
def test_explain_prompt_holds_selection_scope_and_definitions(workspace, language: str):
    suffix, _ = STUBS[language]
    caller = {
        "python": "def total(a, b):\n    s = a + b\n    return clamp_total(s)\n",
        "go": "package sums\n\nfunc total(a int, b int) int {\n\ts := a + b\n\treturn clamp_total(s)\n}\n",
        "rust": "fn total(a: i32, b: i32) -> i32 {\n    let s = a + b;\n    clamp_total(s)\n}\n",
        "java": "class Totals {\n  int total(int a, int b) {\n    int s = a + b;\n    return clamp_total(s);\n  }\n}\n",
    }.get(language, "int total(int a, int b) {\n  int s = a + b;\n  return clamp_total(s);\n}\n")
    if language in ("javascript", "typescript"):
        caller = "function total(a, b) {\n  const s = a + b;\n  return clamp_total(s);\n}\n"
    assistant = workspace({f"calls.{suffix}": caller, f"helpers.{suffix}": HELPERS[language]})
    start = caller.index("clamp_total(s)")
    selection = selection_in(assistant.root / f"calls.{suffix}", caller, start, start + len("clamp_total(s)"))
    messages, definitions = build_explain_prompt(assistant, selection)
    user = messages[1].content
    assert "Explain the selected code" in user and "clamp_total(s)" in user
    assert "<<selection>>clamp_total(s)<</selection>>" in user and "+ b" in user  # the enclosing function
    assert [snippet.path for snippet in definitions] == [f"helpers.{suffix}"]
    assert "Keep value in range" in user or "keeps value in range" in user


def test_explain_refuses_empty_selections_and_unknown_languages(tmp_path):
    with pytest.raises(AssistantError, match="selection is empty"):
        selection_in(tmp_path / "a.py", "x = 1\n\n\n", 6, 8)
    with pytest.raises(AssistantError, match="cannot explain"):
        selection_in(tmp_path / "a.yaml", "a: 1\n", 0, 4)


def test_explanation_document_names_the_place_and_holds_the_code(tmp_path):
    text = "x = 1\ny = x + 1\n"
    selection = selection_in(tmp_path / "a.py", text, 6, len(text))
    document = explanation_document(selection, "a.py", "It adds one.")
    assert document.startswith("# Explanation of a.py:2-2\n") and "y = x + 1" in document
    assert document.rstrip().endswith("It adds one.")
