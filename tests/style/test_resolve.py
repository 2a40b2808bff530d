"""Which guide applies: team guides, pyproject, .editorconfig, settings, and broken guides."""

from __future__ import annotations

from pathlib import Path

from osslsp.style import check_text, resolve_guide


def _write(root: Path, name: str, text: str) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_defaults_per_language() -> None:
    names = {language: resolve_guide(language, None)[0].name
             for language in ("python", "javascript", "typescript", "typescriptreact", "go", "rust", "java", "cpp", "c")}
    assert names == {"python": "python-pep8", "javascript": "typescript", "typescript": "typescript",
                     "typescriptreact": "typescript", "go": "go", "rust": "rust", "java": "java-google",
                     "cpp": "cpp", "c": "none"}
    assert resolve_guide("c", None)[0].prompt_text() == ""


def test_a_team_guide_extends_a_bundled_one_and_overrides_rules(tmp_path: Path) -> None:
    _write(tmp_path, ".osslsp/styleguide.toml", """
[python]
extends = "python-google"
prose = "Prefer dataclasses."
[python.layout]
max_line_length = 100
[python.naming]
function = ["snake_case", "camelCase"]
[typescript.quotes]
style = "double"
""")
    guide, warnings = resolve_guide("python", tmp_path)
    assert warnings == []
    assert (guide.name, guide.max_line_length, guide.annotations) == ("python-google+team", 100, "public")
    assert guide.name_follows("function", "fetchAll") and not guide.name_follows("class", "bad_class")
    assert "Prefer dataclasses." in guide.prompt_text() and "Google" in guide.prompt_text()
    javascript, _ = resolve_guide("javascript", tmp_path)  # [typescript] serves JavaScript too
    assert (javascript.name, javascript.quotes) == ("typescript+team", "double")


def test_pyproject_tool_table_is_a_team_guide(tmp_path: Path) -> None:
    _write(tmp_path, "pyproject.toml", '[project]\nname = "x"\n\n[tool.osslsp.style.python.layout]\nmax_line_length = 120\n')
    guide, warnings = resolve_guide("python", tmp_path)
    assert (guide.name, guide.max_line_length, warnings) == ("python-pep8+team", 120, [])


def test_editorconfig_sets_indentation_and_line_length(tmp_path: Path) -> None:
    _write(tmp_path, ".editorconfig", "root = true\n[*]\nindent_style = space\n\n[*.{py,pyi}]\nindent_size = 2\n"
                                      "max_line_length = 88\n")
    guide, _ = resolve_guide("python", tmp_path)
    assert (guide.indent_width, guide.max_line_length) == (2, 88)
    assert check_text('def f():\n  """Doc."""\n  return 1\n', "python", guide) == []
    assert resolve_guide("go", tmp_path)[0].indent == "spaces"  # [*] says so, and the team's word wins


def test_the_team_guide_wins_over_editorconfig(tmp_path: Path) -> None:
    _write(tmp_path, ".editorconfig", "[*.py]\nmax_line_length = 88\n")
    _write(tmp_path, ".osslsp/styleguide.toml", "[python.layout]\nmax_line_length = 72\n")
    assert resolve_guide("python", tmp_path)[0].max_line_length == 72


def test_broken_toml_names_file_and_line_and_the_default_applies(tmp_path: Path) -> None:
    path = _write(tmp_path, ".osslsp/styleguide.toml", "[python]\nextends = \"python-google\"\nmax_line_length = = 3\n")
    guide, warnings = resolve_guide("python", tmp_path)
    assert guide.name == "python-pep8"
    assert len(warnings) == 1 and warnings[0].startswith(f"{path}:3: not valid TOML")
    assert "bundled python-pep8" in warnings[0]


def test_a_bad_value_names_its_line(tmp_path: Path) -> None:
    path = _write(tmp_path, ".osslsp/styleguide.toml",
                  "[python]\nextends = \"python-pep8\"\n\n[python.layout]\nindent = \"spaces\"\nmax_line_length = \"long\"\n")
    guide, warnings = resolve_guide("python", tmp_path)
    assert guide.max_line_length == 79
    assert warnings[0].startswith(f"{path}:6: layout.max_line_length must be an integer")


def test_unknown_kinds_styles_and_guides_are_reported(tmp_path: Path) -> None:
    path = _write(tmp_path, ".osslsp/styleguide.toml", "[python.naming]\nfunktion = \"snake_case\"\n"
                                                      "[go]\nextends = \"golang\"\n[rust.naming]\nfunction = \"kebab\"\n")
    assert resolve_guide("python", tmp_path)[1][0].startswith(f"{path}:2: unknown symbol kind 'funktion'")
    assert resolve_guide("go", tmp_path)[1][0].startswith(f"{path}:4: extends 'golang': no such bundled guide")
    assert resolve_guide("rust", tmp_path)[1][0].startswith(f"{path}:6: naming.function: unknown style 'kebab'")
    assert resolve_guide("java", tmp_path) == (resolve_guide("java", None)[0], [])  # untouched languages


def test_the_setting_picks_a_bundled_guide_or_a_file(tmp_path: Path) -> None:
    assert resolve_guide("python", None, "python-google")[0].name == "python-google"
    assert resolve_guide("go", None, "python-google")[0].name == "go"  # a Python guide says nothing about Go
    _write(tmp_path, "house.toml", 'languages = ["python"]\ndescription = "House"\n[layout]\nmax_line_length = 60\n')
    guide, warnings = resolve_guide("python", tmp_path, "house.toml")
    assert (guide.name, guide.max_line_length, guide.naming, warnings) == ("house", 60, {}, [])
    missing, warnings = resolve_guide("python", tmp_path, str(tmp_path / "nope.toml"))
    assert missing.name == "python-pep8" and "nope.toml: cannot read" in warnings[0]


def test_prompt_text_fits_its_share() -> None:
    guide, _ = resolve_guide("python", None)
    full = guide.prompt_text()
    assert "79 characters" in full and "snake_case" in full and "PEP 257" in full
    for limit in (40, 120, 300, 600):
        text = guide.prompt_text(limit)
        assert len(text) <= limit and text.startswith("Style guide python-pep8 (PEP 8).")
    assert "79 characters" in guide.prompt_text(120)  # rules come before prose
    assert guide.prompt_text(10) == ""


def test_a_team_can_require_jsdoc_on_exported_typescript(tmp_path: Path) -> None:
    _write(tmp_path, ".osslsp/styleguide.toml", '[typescript.docs]\nrequired = ["function", "method", "class"]\n')
    guide, warnings = resolve_guide("typescript", tmp_path)
    code = ("/** Doc. */\nexport function documented(): void {}\nexport function bare(): void {}\n"
            "function internal(): void {}\n/** Doc. */\nexport class Thing {\n  stop(): void {}\n"
            "  private hidden(): void {}\n}\n")
    assert warnings == []
    assert [(f.line, f.col, f.message) for f in check_text(code, "typescript", guide)] == [
        (3, 8, "public function 'bare' has no doc comment above it"),
        (7, 3, "public method 'stop' has no doc comment above it")]
