"""The language registry: every module's languages are found, and each one's parts fit together."""

from __future__ import annotations

import ast
import pkgutil
from pathlib import Path

import pytest
import tree_sitter

import osslsp.languages as languages
from osslsp.index.extract import extract
from osslsp.languages import LANGUAGES, grammar, language_for, language_for_path, language_named
from osslsp.style import check_text, resolve_guide
from osslsp.style.resolve import bundled_languages, bundled_names

NAMES = [language.name for language in LANGUAGES]


def test_every_module_of_the_package_is_listed() -> None:
    modules = {info.name for info in pkgutil.iter_modules(languages.__path__)}
    listed = {language.name for language in LANGUAGES}
    assert {"python", "javascript", "typescript", "typescriptreact", "go", "rust", "java", "c", "cpp"} <= listed
    # Each language module holds its language (TSX lives with TypeScript); helpers hold none.
    assert modules - {"base", "rules"} <= listed


def test_suffixes_and_aliases_name_one_language_each() -> None:
    suffixes = [suffix for language in LANGUAGES for suffix in language.suffixes]
    assert len(suffixes) == len(set(suffixes))
    aliases = [alias for language in LANGUAGES for alias in language.aliases]
    assert len(aliases) == len(set(aliases)) and not set(aliases) & set(NAMES)
    for language in LANGUAGES:
        assert all(language_named(alias) is language for alias in language.aliases)
        assert all(language_for_path(f"x/file{suffix.upper()}") is language for suffix in language.suffixes)
    assert language_for("a.txt", "JavaScriptReact").name == "javascript"
    assert language_for("notes.txt") is None


@pytest.mark.parametrize("name", NAMES)
def test_the_grammar_and_queries_of_each_language_load(name: str) -> None:
    language = language_named(name)
    compiled = grammar(name)
    if language.index.import_query:
        tree_sitter.Query(compiled, language.index.import_query)
    if language.style is not None:
        tree_sitter.Query(compiled, language.style.symbols + language.style.literals)
        assert set(language.style.refinements) <= {kind.partition(".")[2] for kind in
                                                  _captures(language.style.symbols)}


def _captures(query: str) -> set[str]:
    return {word.lstrip("@").rstrip(")") for word in query.split() if word.startswith("@")}


@pytest.mark.parametrize("name", [language.name for language in LANGUAGES if language.default_guide])
def test_the_default_guide_is_bundled_and_covers_its_language(name: str) -> None:
    guide_name = language_named(name).default_guide
    assert guide_name in bundled_names()
    assert name in bundled_languages(guide_name)
    guide, warnings = resolve_guide(name, None)
    assert (guide.name, warnings) == (guide_name, [])


def test_c_has_style_checks_once_a_team_sets_a_guide(tmp_path: Path) -> None:
    (tmp_path / ".osslsp").mkdir()
    (tmp_path / ".osslsp" / "styleguide.toml").write_text(
        '[c]\nextends = "cpp"\n[c.naming]\nfunction = "snake_case"\n', encoding="utf-8")
    assert resolve_guide("c", None)[0].name == "none"  # no bundled default for C
    guide, warnings = resolve_guide("c", tmp_path)
    assert warnings == [] and guide.name == "cpp+team"
    code = "#define max_len 3\nstruct Point { int XPos; };\nint AddTwo(int First) {\n\treturn First;\n}\n"
    rules = {(finding.line, finding.rule) for finding in check_text(code, "c", guide)}
    assert rules == {(1, "naming-macro"), (2, "naming-struct-member"), (3, "naming-function"),
                     (3, "naming-parameter"), (4, "indent-char")}


def test_a_definition_shows_with_its_documentation_as_its_language_writes_it() -> None:
    python, go = language_named("python"), language_named("go")
    assert python.documented("def f(x)", "function", "Double x.") == 'def f(x):\n    """Double x."""'
    assert python.documented("X = 1", "constant", "") == "X = 1"
    assert go.documented("func F(x int) int", "function", "F doubles.\nFast.") == \
        "// F doubles.\n// Fast.\nfunc F(x int) int"


def test_extraction_follows_each_language_rules() -> None:
    """The parts that were branches on the language's name: Go receivers, C prototypes, Python's
    relative imports and the names imports bind."""
    go = extract("go", b'package p\nimport "net/http"\nfunc (s *Server) Run() {}\n')
    assert [(d.name, d.scope) for d in go.definitions] == [("Run", "Server")]
    assert go.imports[0].bound == "http"
    c = extract("c", b"int count;\nint add(int a, int b);\n")
    assert [(d.name, d.kind) for d in c.definitions] == [("count", "constant"), ("add", "function")]
    python = extract("python", b"from ..pkg import mod\nimport os.path\n")
    assert [(i.module, i.level, i.bound) for i in python.imports] == [("pkg", 2, "mod"), ("os.path", 0, "os")]


OSSLSP = Path(languages.__file__).parents[1]


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_language_modules_import_nothing_else_of_osslsp() -> None:
    """So that every part of osslsp may import them without a cycle."""
    for path in sorted((OSSLSP / "languages").glob("*.py")):
        outside = {name for name in _imports(path) if name.startswith("osslsp")
                   and not name.startswith("osslsp.languages")}
        assert not outside, (path.name, outside)


def test_no_code_outside_the_language_modules_branches_on_a_language_name() -> None:
    """`language == "go"` and `language in ("c", "cpp")` belong in the language's own module."""
    found = []
    for path in sorted(OSSLSP.rglob("*.py")):
        if path.parent.name == "languages":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Compare):
                operands = [node.left, *node.comparators]
                values = {element.value for operand in operands
                          for element in (operand.elts if isinstance(operand, (ast.Tuple, ast.Set, ast.List))
                                          else [operand]) if isinstance(element, ast.Constant)}
                if values & set(NAMES):
                    found.append(f"{path.relative_to(OSSLSP)}:{node.lineno}")
    assert found == []
