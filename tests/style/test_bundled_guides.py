"""Each bundled guide against real code: compliant code has no findings, and each broken rule one."""

from __future__ import annotations

from pathlib import Path

import pytest

from osslsp.languages import language_for_path
from osslsp.style import bundled_names, check_text, resolve_guide
from osslsp.style.resolve import bundled_languages

SAMPLES = Path(__file__).parent / "samples"

GOOD = [("pep8_good.py", "python-pep8"), ("google_good.py", "python-google"), ("ts_good.ts", "typescript"),
        ("js_good.js", "typescript"), ("App_good.tsx", "typescript"), ("go_good.go", "go"),
        ("rust_good.rs", "rust"), ("java_good.java", "java-google"), ("cpp_good.cc", "cpp"),
        ("ruby_good.rb", "ruby")]

# (line, column, rule) of every finding, in order.
BAD = {
    ("pep8_bad.py", "python-pep8"): [
        (1, 16, "import-wildcard"), (2, 12, "import-one-per-line"), (5, 7, "naming-class"),
        (8, 9, "naming-method"), (8, 24, "naming-parameter"), (10, 9, "naming-variable"),
        (11, 26, "trailing-whitespace"), (12, 1, "trailing-whitespace"), (13, 1, "trailing-whitespace"),
        (15, 5, "docs-required"), (15, 80, "line-length"), (20, 1, "indent-width"), (21, 1, "indent-width"),
        (24, 1, "naming-module-variable"), (27, 5, "naming-function"), (29, 1, "indent-char"),
        (35, 5, "naming-class-attribute")],
    ("google_bad.py", "python-google"): [
        (8, 16, "annotations-required"), (10, 40, "quote-style"), (13, 5, "annotations-required"),
        (14, 81, "line-length")],
    ("ts_bad.ts", "typescript"): [
        (1, 26, "quote-style"), (3, 11, "naming-type"), (7, 14, "naming-class"), (8, 3, "naming-method"),
        (8, 13, "naming-parameter"), (9, 11, "naming-variable"), (10, 1, "indent-width"),
        (14, 10, "naming-function"), (16, 101, "line-length")],
    ("js_bad.js", "typescript"): [
        (1, 14, "naming-class"), (2, 3, "naming-method"), (2, 13, "naming-parameter"),
        (7, 10, "naming-function"), (8, 7, "naming-variable"), (8, 21, "quote-style")],
    ("go_bad.go", "go"): [
        (3, 8, "import-wildcard"), (5, 7, "naming-constant"), (7, 6, "naming-type"), (9, 2, "naming-field"),
        (12, 1, "docs-required"), (14, 24, "naming-method"), (18, 15, "naming-parameter"),
        (19, 1, "indent-char"), (19, 5, "naming-variable"), (20, 50, "trailing-whitespace"),
        (23, 6, "naming-function")],
    ("rust_bad.rs", "rust"): [
        (3, 11, "naming-constant"), (5, 1, "docs-required"), (5, 12, "naming-type"), (6, 5, "naming-field"),
        (10, 5, "naming-enum-variant"), (14, 5, "docs-required"), (17, 12, "naming-method"),
        (17, 27, "naming-parameter"), (18, 1, "indent-width"), (18, 11, "naming-variable"),
        (22, 5, "naming-module"), (24, 4, "naming-function"), (26, 14, "naming-macro"), (28, 101, "line-length")],
    ("java_bad.java", "java-google"): [
        (3, 1, "import-wildcard"), (6, 14, "naming-class"), (6, 28, "naming-type-parameter"),
        (7, 28, "naming-constant"), (8, 37, "naming-static-final"), (9, 15, "naming-field"),
        (11, 3, "docs-required"), (11, 15, "naming-method"), (11, 29, "naming-parameter"),
        (12, 9, "naming-variable"), (13, 1, "indent-width"), (13, 33, "trailing-whitespace"),
        (17, 101, "line-length"), (21, 5, "naming-enum-constant")],
    ("cpp_bad.cc", "cpp"): [
        (3, 9, "naming-macro"), (5, 1, "import-wildcard"), (7, 11, "naming-namespace"),
        (9, 11, "naming-constant"), (11, 19, "naming-enumerator"), (14, 7, "naming-struct-member"),
        (17, 7, "naming-type"), (19, 7, "naming-method"), (19, 38, "trailing-whitespace"),
        (22, 7, "naming-class-member"), (25, 5, "naming-function"), (25, 23, "naming-parameter"),
        (26, 1, "indent-width"), (26, 9, "naming-variable"), (27, 81, "line-length")],
    ("ruby_bad.rb", "ruby"): [
        (1, 1, "docs-required"), (2, 3, "naming-constant"), (5, 3, "docs-required"), (6, 9, "naming-method"),
        (6, 19, "naming-parameter"), (7, 7, "naming-variable"), (8, 1, "indent-width"), (11, 17, "quote-style"),
        (15, 9, "naming-class"), (19, 10, "naming-module"), (20, 121, "line-length")],
}


def _check(name: str, guide_name: str) -> list[tuple[int, int, str]]:
    path = SAMPLES / name
    language = language_for_path(path).name
    guide, warnings = resolve_guide(language, None, guide_name)
    assert (guide.name, warnings) == (guide_name, [])
    return [(f.line, f.col, f.rule) for f in check_text(path.read_text(), language, guide)]


@pytest.mark.parametrize(("name", "guide_name"), GOOD)
def test_code_that_follows_the_guide_has_no_findings(name: str, guide_name: str) -> None:
    assert _check(name, guide_name) == []


@pytest.mark.parametrize(("name", "guide_name"), list(BAD))
def test_each_broken_rule_is_found_once_at_its_place(name: str, guide_name: str) -> None:
    assert _check(name, guide_name) == BAD[(name, guide_name)]


def test_the_bad_samples_break_every_naming_and_length_rule_of_their_guide() -> None:
    """So that the test above covers each rule a bundled guide sets, not just some."""
    broken: dict[str, set[str]] = {}
    for (name, guide_name), expected in BAD.items():
        broken.setdefault(guide_name, set()).update(rule for _, _, rule in expected)
    for guide_name in bundled_names():
        language = bundled_languages(guide_name)[0]
        guide, _ = resolve_guide(language, None, guide_name)
        wanted = {f"naming-{kind.replace('_', '-')}" for kind in guide.naming}
        wanted |= {"line-length"} if guide.max_line_length else set()
        wanted |= {"docs-required"} if guide.docs_required else set()
        wanted |= {"import-wildcard"} if not guide.wildcard_imports else set()
        if guide_name == "python-google":  # shares PEP 8's rules; its own are checked
            wanted = {"annotations-required", "quote-style", "line-length"}
        assert wanted <= broken[guide_name], (guide_name, wanted - broken[guide_name])


def test_a_string_that_avoids_escapes_keeps_its_quotes() -> None:
    guide, _ = resolve_guide("typescript", None)
    code = "const a = \"it's\";\nconst b = 'x';\n"
    assert check_text(code, "typescript", guide) == []


def test_jsx_attributes_keep_double_quotes() -> None:
    guide, _ = resolve_guide("typescriptreact", None)
    assert check_text((SAMPLES / "App_good.tsx").read_text(), "typescriptreact", guide) == []


def test_a_line_that_continues_a_macro_body_is_checked_without_error() -> None:
    """The macro's body is one leaf spanning lines: a bracket test that looks at children found none."""
    guide, _ = resolve_guide("cpp", None)
    code = "#define CHECK(node)\t\\\n  DEBUG_ONLY(check(node,\t\\\n\t\t__FILE__);)\n"
    assert [(f.line, f.rule) for f in check_text(code, "cpp", guide)] == [(3, "indent-char")]
