"""Which guide applies: bundled guides, the team's guide, `.editorconfig`, the user's setting.

Precedence, lowest first: the bundled guide (the team's `extends`, else the language's default),
`.editorconfig` (indentation and line length), the team's own overrides. The team's guide lives in
`.osslsp/styleguide.toml`, or `[tool.osslsp.style]` in `pyproject.toml`, one table per language:

    [python]
    extends = "python-google"
    [python.layout]
    max_line_length = 100

A guide that cannot be read or used is reported as `file:line: message` and the bundled default
applies for the languages it touches.
"""

from __future__ import annotations

import configparser
import fnmatch
import re
import tomllib
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from osslsp.languages import LANGUAGES, language_named
from osslsp.style.guide import GuideError, StyleGuide, guide_from_table, merge_tables

BUNDLED_DIR = Path(__file__).resolve().parent.parent / "styleguides"
TEAM_GUIDE = Path(".osslsp") / "styleguide.toml"


class GuideFileError(Exception):
    """A guide file that cannot be used, with the place to look."""

    def __init__(self, path: Path, line: int | None, message: str) -> None:
        super().__init__(f"{path}:{line}: {message}" if line else f"{path}: {message}")


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        # Python 3.11 keeps the position only in the message: "... (at line 3, column 7)".
        place = re.search(r"\(at line (\d+), column \d+\)|\(at end of document\)", str(error))
        line = int(place.group(1)) if place and place.group(1) else None
        message = re.sub(r"\s*\(at (line \d+, column \d+|end of document)\)", "", str(error))
        if line is None:
            line = len(path.read_text(encoding="utf-8", errors="replace").splitlines()) or 1
        raise GuideFileError(path, line, f"not valid TOML: {message}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise GuideFileError(path, None, f"cannot read: {error}") from None


def _line_of(path: Path, key: str) -> int | None:
    """The line where a dotted key is set (its last part, after the table it lives in), if found."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    last = re.escape(key.split(".")[-1])
    setting = re.compile(rf'^\s*(?:[\w."-]+\.)?"?{last}"?\s*=|^\s*\[+[^\]]*\b{last}\]+\s*(?:#.*)?$')
    parts = key.split(".")
    table = re.compile(rf"^\s*\[+[^\]]*\b{re.escape(parts[-2])}\]+") if len(parts) > 1 else None
    seen_table = table is None
    for number, line in enumerate(lines, 1):
        if table is not None and table.match(line):
            seen_table = True
        if seen_table and setting.match(line):
            return number
    return next((number for number, line in enumerate(lines, 1) if setting.match(line)), None)


@cache
def _bundled_table(name: str) -> dict[str, Any]:
    return _read_toml(BUNDLED_DIR / f"{name}.toml")


def bundled_names() -> list[str]:
    """The bundled guides, by name."""
    return sorted(path.stem for path in BUNDLED_DIR.glob("*.toml"))


def bundled_description(name: str) -> str:
    """What a bundled guide follows, in a few words."""
    return str(_bundled_table(name).get("description", ""))


def bundled_languages(name: str) -> list[str]:
    """The languages a bundled guide covers."""
    return list(_bundled_table(name).get("languages", []))


@cache
def _kinds() -> tuple[str, ...]:
    """Every naming kind any language has: one guide serves several languages (TypeScript's `type`
    means nothing in JavaScript), and a kind no language has is a typo worth reporting."""
    return tuple(sorted({kind for language in LANGUAGES if language.style for kind in language.style.kinds}))


def _bundled_guide(name: str, language: str, editorconfig: Mapping[str, Any], sources: tuple[str, ...]) -> StyleGuide:
    table = merge_tables(_bundled_table(name), editorconfig)
    return guide_from_table(name, language, table, _kinds(), sources)


def _default_guide(language: str) -> str | None:
    """The bundled guide a language follows unless a team or the user picks another."""
    registered = language_named(language)
    return registered.default_guide if registered is not None else None


def _team_tables(language: str) -> tuple[str, ...]:
    """The team-guide tables that may set a language's rules (a family's name too), first wins."""
    registered = language_named(language)
    return registered.team_tables() if registered is not None else (language,)


def no_guide(language: str) -> StyleGuide:
    """The guide for a language nobody set one for: no rules, nothing in prompts."""
    return StyleGuide(name="none", language=language, no_trailing_whitespace=False)


# --- .editorconfig ------------------------------------------------------------------------------

def _expand_braces(pattern: str) -> list[str]:
    match = re.search(r"\{([^{}]*)\}", pattern)
    if match is None:
        return [pattern]
    return [expanded for choice in match.group(1).split(",")
            for expanded in _expand_braces(pattern[:match.start()] + choice + pattern[match.end():])]


def editorconfig_layout(root: Path, language: str) -> tuple[dict[str, Any], str | None]:
    """The `[layout]` values `.editorconfig` in `root` sets for a language, and where they came from."""
    path = root / ".editorconfig"
    if not path.is_file():
        return {}, None
    config = configparser.ConfigParser(interpolation=None, strict=False, comment_prefixes=("#", ";"))
    try:
        config.read_string("[__preamble__]\n" + path.read_text(encoding="utf-8"))
    except (configparser.Error, OSError, UnicodeDecodeError):
        return {}, None  # an unreadable .editorconfig is the editor's concern; keep the guide's values
    entry = language_named(language)
    samples = [f"file{suffix}" for suffix in (entry.suffixes if entry else ())]
    values: dict[str, str] = {}
    for section in config.sections():
        patterns = _expand_braces(section.split("/")[-1].replace("**", "*"))
        if any(fnmatch.fnmatchcase(sample, pattern) for sample in samples for pattern in patterns):
            values.update(config[section])
    layout: dict[str, Any] = {}
    if values.get("indent_style") in ("space", "tab"):
        layout["indent"] = "spaces" if values["indent_style"] == "space" else "tabs"
    size = values.get("indent_size", "")
    size = values.get("tab_width", "") if size == "tab" else size
    if size.isdigit() and int(size) > 0:
        layout["indent_width"] = int(size)
    length = values.get("max_line_length", "")
    if length.isdigit():
        layout["max_line_length"] = int(length)
    elif length == "off":
        layout["max_line_length"] = 0
    if values.get("trim_trailing_whitespace") in ("true", "false"):
        layout["no_trailing_whitespace"] = values["trim_trailing_whitespace"] == "true"
    return ({"layout": layout}, str(path)) if layout else ({}, None)


# --- the team's guide ---------------------------------------------------------------------------

def _team_source(root: Path) -> tuple[Path, dict[str, Any]] | None:
    """The team's guide file and its per-language tables, if the workspace has one."""
    guide_file = root / TEAM_GUIDE
    if guide_file.is_file():
        return guide_file, _read_toml(guide_file)
    pyproject = root / "pyproject.toml"
    if pyproject.is_file():
        try:
            data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, OSError, UnicodeDecodeError):
            return None  # a broken pyproject.toml is not ours to report; the packaging tools will
        tables = data.get("tool", {}).get("osslsp", {}).get("style")
        if isinstance(tables, dict):
            return pyproject, tables
    return None


def _team_guide(path: Path, tables: Mapping[str, Any], language: str,
                editorconfig: tuple[dict[str, Any], str | None]) -> StyleGuide | None:
    """The guide a team file gives a language; None when it says nothing about it."""
    if "languages" in tables:  # a whole guide in one file, bundled-guide format
        if language not in tables["languages"]:
            return None
        name, base, table_key = path.stem, {}, ""
        override: Mapping[str, Any] = tables
    else:
        table_key = next((key for key in _team_tables(language) if key in tables), "")
        if not table_key:
            return None
        override = tables[table_key]
        if not isinstance(override, Mapping):
            raise GuideFileError(path, _line_of(path, table_key), f"{table_key} must be a table ([{table_key}])")
        name = override.get("extends", _default_guide(language) or "")
        if not isinstance(name, str) or name not in bundled_names():
            raise GuideFileError(path, _line_of(path, f"{table_key}.extends"),
                                 f"extends {name!r}: no such bundled guide (bundled: {', '.join(bundled_names())})")
        base = _bundled_table(name)
    layout_table, layout_source = editorconfig
    merged = merge_tables(merge_tables(base, layout_table), {k: v for k, v in override.items() if k != "extends"})
    if base.get("prose") and override.get("prose"):
        merged["prose"] = base["prose"].strip() + "\n" + override["prose"].strip()
    sources = tuple(source for source in (f"bundled {name}" if base else "", layout_source, str(path)) if source)
    try:
        return guide_from_table(f"{name}+team" if base else name, language, merged, _kinds(), sources)
    except GuideError as error:
        key = f"{table_key}.{error.key}" if table_key and error.key else error.key
        raise GuideFileError(path, _line_of(path, key) if key else None, str(error)) from None


def resolve_guide(language: str, workspace_root: Path | None, override: str = "") -> tuple[StyleGuide, list[str]]:
    """The guide for a language in a workspace, and warnings about guide files that could not be used.

    `override` is the user's `styleGuide` setting: a bundled guide's name, or a TOML file (a team
    guide, or a whole guide in the bundled format).
    """
    entry = language_named(language)
    language = entry.name if entry is not None else language
    warnings: list[str] = []
    editorconfig = editorconfig_layout(workspace_root, language) if workspace_root is not None else ({}, None)
    default_name = _default_guide(language)
    if override and override in bundled_names():
        if language in bundled_languages(override):
            default_name = override
        override = ""
    team: tuple[Path, Mapping[str, Any]] | None = None
    try:
        if override:
            path = Path(override).expanduser()
            if not path.is_absolute() and workspace_root is not None:
                path = workspace_root / path
            team = (path, _read_toml(path))
        elif workspace_root is not None:
            team = _team_source(workspace_root)
        if team is not None:
            guide = _team_guide(team[0], team[1], language, editorconfig)
            if guide is not None:
                return guide, warnings
    except GuideFileError as error:
        warnings.append(f"{error}; using the bundled {default_name or 'no'} guide for {language}")
    if default_name is None:
        return no_guide(language), warnings
    sources = tuple(source for source in (f"bundled {default_name}", editorconfig[1]) if source)
    try:
        return _bundled_guide(default_name, language, editorconfig[0], sources), warnings
    except GuideError as error:  # only .editorconfig values can break a bundled guide
        warnings.append(f"{editorconfig[1]}: {error}; ignoring it for {language}")
        return _bundled_guide(default_name, language, {}, (f"bundled {default_name}",)), warnings


def known_languages() -> list[str]:
    """Every language osslsp parses, for `osslsp style list`."""
    return [language.name for language in LANGUAGES]
