"""Stub detection per language, the edit it makes, and the checks a generated body must pass."""

from __future__ import annotations

import pytest

from osslsp.actions.stubs import body_from_answer, find_stub, reindent
from osslsp.actions.validate import check_body, syntax_problems
from osslsp.style import resolve_guide
from tests.actions.samples import BODIED, STUBS

# A body that is right in each language, written with 4-space nesting as models often do.
GOOD_BODIES = {
    "python": "total = a + b\nreturn total",
    "javascript": "const total = a + b;\nreturn total;",
    "typescript": "const total = a + b;\nreturn total;",
    "go": "total := a + b\nreturn total",
    "rust": "let total = a + b;\ntotal",
    "java": "int total = a + b;\nreturn total;",
    "c": "int total = a + b;\nreturn total;",
    "cpp": "int total = a + b;\nreturn total;",
    "ruby": "total = a + b\ntotal",
}
BROKEN_BODIES = {language: "return (a +" for language in STUBS}


def guide(language: str):
    return resolve_guide(language, None, "")[0]


@pytest.mark.parametrize("language", sorted(STUBS))
def test_a_stub_is_found_from_its_documentation(language: str):
    _, text = STUBS[language]
    stub = find_stub(text, language, text.index("MARK"))
    assert stub is not None and stub.name == "add"
    assert "MARK" in stub.doc and "MARK" not in stub.signature
    assert "add" in stub.signature and "{" not in stub.signature


@pytest.mark.parametrize("language", sorted(BODIED))
def test_a_function_with_a_body_is_no_stub(language: str):
    _, text = BODIED[language]
    assert find_stub(text, language, text.index("BODY")) is None
    assert find_stub(text, language, text.index("difference")) is None


@pytest.mark.parametrize("language", sorted(STUBS))
def test_a_valid_body_replaces_only_the_stub_body(language: str):
    _, stub_text = STUBS[language]
    _, bodied = BODIED[language]
    text = f"{stub_text}\n{bodied}"
    stub = find_stub(text, language, text.index("MARK"))
    checked = check_body(text, stub, GOOD_BODIES[language], guide(language))
    assert checked.new_text is not None, checked.problems
    edited = text[:stub.body_start] + checked.new_text + text[stub.body_end:]
    assert edited.startswith(text[:stub.body_start]) and edited.endswith(text[stub.body_end:])
    # The body starts after the docstring, the `{`, or the header of a declaration or `def ... end`.
    assert text[:stub.body_start].endswith(stub.doc if language == "python" else stub.signature.split("\n")[-1]
                                           if stub.form == "declaration" or language == "ruby" else "{")
    assert "total" in edited and not syntax_problems(edited, language, 0, len(edited))
    assert find_stub(edited, language, edited.index("MARK")) is None  # it has a body now


@pytest.mark.parametrize("language", sorted(STUBS))
def test_a_broken_body_is_refused_with_its_line(language: str):
    _, text = STUBS[language]
    stub = find_stub(text, language, text.index("MARK"))
    checked = check_body(text, stub, BROKEN_BODIES[language], guide(language))
    assert checked.new_text is None
    assert checked.problems and all(problem.startswith("line ") for problem in checked.problems)


def test_python_placeholders_and_todo_comments_are_stubs():
    for body in ("pass", "...", "raise NotImplementedError", 'raise NotImplementedError("later")',
                 "# TODO: write\n    pass", ""):
        text = f'def f(x):\n    """Double x."""\n    {body}\n'
        assert find_stub(text, "python", 0) is not None, body
    assert find_stub('def f(x):\n    """Double x."""\n    return 2 * x\n', "python", 0) is None
    assert find_stub("def f(x):\n    pass\n", "python", 0) is None  # nothing to generate from


def test_a_method_carries_its_class_and_the_innermost_function_decides():
    text = ('class Account:\n    """Money."""\n\n    def deposit(self, amount):\n        """Add amount."""\n'
            '        ...\n\n    def balance(self):\n        """The balance."""\n        return self.total\n')
    stub = find_stub(text, "python", text.index("Add amount"))
    assert stub.name == "deposit" and stub.enclosing.startswith("class Account:")
    assert find_stub(text, "python", text.index("return self")) is None


def test_rust_doc_comment_above_attributes_counts():
    text = "/// Sum.\n#[inline]\npub fn add(a: i32, b: i32) -> i32 {\n    unimplemented!()\n}\n"
    stub = find_stub(text, "rust", text.index("Sum"))
    assert stub is not None and stub.doc.startswith("/// Sum.")


def test_a_comment_separated_by_a_blank_line_is_no_doc():
    text = "// helpers\n\nint add(int a, int b) {\n}\n"
    assert find_stub(text, "c", text.index("add")) is None


def test_a_selection_on_a_stub_finds_it_and_a_selection_beyond_does_not():
    _, text = STUBS["python"]
    assert find_stub(text, "python", 0, len(text) - 1) is not None
    assert find_stub(text + "x = 1\n", "python", 0, len(text) + 3) is None


def test_the_answer_may_repeat_the_whole_function():
    _, text = STUBS["python"]
    stub = find_stub(text, "python", text.index("MARK"))
    answer = 'def add(a, b):\n    """Return the sum; MARK."""\n    return a + b\n```\nThat adds.'
    assert body_from_answer(answer, stub).strip() == "return a + b"
    _, rust = STUBS["rust"]
    stub = find_stub(rust, "rust", rust.index("MARK"))
    assert body_from_answer("fn add(a: i32, b: i32) -> i32 {\n    a + b\n}\n```", stub).strip() == "a + b"
    assert body_from_answer("a + b\n```\n", stub) == "a + b\n"


def test_reindent_maps_nesting_to_the_target_unit():
    assert reindent("if x:\n    y()\n", "\t", "\t") == "\tif x:\n\t\ty()"
    assert reindent("  if x:\n      y()", "    ", "    ") == "    if x:\n        y()"
    assert reindent("if (x) {\n\ty();\n}", "  ", "  ") == "  if (x) {\n    y();\n  }"


def test_style_findings_withhold_the_body_and_are_named():
    _, text = STUBS["python"]
    stub = find_stub(text, "python", text.index("MARK"))
    checked = check_body(text, stub, "badName = a + b\nreturn badName", guide("python"))
    assert checked.new_text is None and any("naming-variable" in problem for problem in checked.problems)
