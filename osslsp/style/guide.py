"""A style guide: the machine-checkable rules and the prose that goes into prompts.

A guide is built from a TOML table (see `styleguides/*.toml` for the layout). `guide_from_table`
checks every key and value and raises `GuideError` naming the key, so that a team's typo is
reported instead of silently ignored.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from osslsp.languages import language_named

# How names may be written. Leading and trailing underscores mark privacy or dunders, not style.
NAME_STYLES: dict[str, str] = {
    "snake_case": r"_*[a-z][a-z0-9]*(?:_[a-z0-9]+)*_*",
    "UPPER_CASE": r"_*[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*_*",
    "CapWords": r"_*[A-Z][a-zA-Z0-9]*",
    "camelCase": r"_*[a-z][a-zA-Z0-9]*",
    "MixedCaps": r"_*[A-Za-z][A-Za-z0-9]*",
    "kCapWords": r"k[A-Z][a-zA-Z0-9]*",
    "snake_case_": r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*_",
}
_COMPILED_STYLES = {style: re.compile(pattern) for style, pattern in NAME_STYLES.items()}

INDENT_KINDS = ("spaces", "tabs", "")
QUOTE_STYLES = ("single", "double", "consistent", "any")
ANNOTATION_SCOPES = ("none", "public", "all")
DOC_KINDS = ("function", "method", "class")


class GuideError(ValueError):
    """A guide table that cannot be used; `key` is the dotted key at fault (empty: the whole table)."""

    def __init__(self, message: str, key: str = "") -> None:
        super().__init__(message)
        self.key = key


@dataclass(frozen=True)
class StyleGuide:
    """The rules one language's code must follow, and how to tell a model about them."""

    name: str
    language: str
    description: str = ""
    prose: str = ""
    max_line_length: int = 0  # 0: no limit
    line_length_exempt: str = ""  # regex: lines it finds in may be longer
    indent: str = ""  # "spaces", "tabs" or "" (not checked)
    indent_width: int = 4
    indent_exempt: str = ""  # regex: lines it matches keep their own indentation
    no_trailing_whitespace: bool = True
    quotes: str = "any"
    naming: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    naming_ignore: tuple[str, ...] = ()  # regexes: names that follow someone else's convention
    docs_required: tuple[str, ...] = ()  # kinds of public declarations that need documentation
    annotations: str = "none"
    wildcard_imports: bool = True
    one_import_per_line: bool = False
    sources: tuple[str, ...] = ()  # where the rules came from, for `osslsp style list`

    @cached_property
    def ignored_names(self) -> re.Pattern[str] | None:
        """One pattern for every name the naming rules leave alone."""
        return re.compile("|".join(f"(?:{pattern})" for pattern in self.naming_ignore)) if self.naming_ignore else None

    @cached_property
    def line_length_exemption(self) -> re.Pattern[str] | None:
        return re.compile(self.line_length_exempt) if self.line_length_exempt else None

    @cached_property
    def indent_exemption(self) -> re.Pattern[str] | None:
        return re.compile(self.indent_exempt) if self.indent_exempt else None

    @cached_property
    def _verdicts(self) -> dict[tuple[str, str], bool]:
        return {}  # names repeat (self, path, i): each is judged once

    def name_follows(self, kind: str, name: str) -> bool:
        """Whether a name of this kind is written as the guide wants (True when it says nothing)."""
        verdict = self._verdicts.get((kind, name))
        if verdict is None:
            if len(self._verdicts) > 100_000:  # a long session over a large workspace
                self._verdicts.clear()
            verdict = self._verdicts[(kind, name)] = self._judge_name(kind, name)
        return verdict

    def _judge_name(self, kind: str, name: str) -> bool:
        styles = self.naming.get(kind)
        if not styles or name == "_" or (self.ignored_names is not None and self.ignored_names.fullmatch(name)):
            return True
        return any(_COMPILED_STYLES[style].fullmatch(name) for style in styles)

    def rule_summary(self) -> list[str]:
        """The checkable rules as short sentences, most important first."""
        parts: list[str] = []
        if self.max_line_length:
            parts.append(f"lines at most {self.max_line_length} characters")
        if self.indent:
            unit = "tabs" if self.indent == "tabs" else f"{self.indent_width} spaces"
            parts.append(f"indent with {unit}")
        by_style: dict[tuple[str, ...], list[str]] = {}
        for kind, styles in self.naming.items():
            by_style.setdefault(styles, []).append(kind.replace("_", " "))
        parts.extend(f"{'/'.join(kinds)} names {' or '.join(styles)}" for styles, kinds in by_style.items())
        if self.docs_required:
            registered = language_named(self.language)
            what = "docstrings" if registered is not None and registered.docstrings else "doc comments"
            parts.append(f"{what} on every public {', '.join(self.docs_required)}")
        if self.annotations != "none":
            parts.append(f"type annotations on {'every' if self.annotations == 'all' else 'public'} "
                         "function's parameters and return")
        if self.quotes in ("single", "double"):
            parts.append(f"{self.quotes}-quoted strings")
        elif self.quotes == "consistent":
            parts.append("one quote character throughout a file")
        if not self.wildcard_imports:
            parts.append("no wildcard imports")
        if self.one_import_per_line:
            parts.append("one module per import line")
        if self.no_trailing_whitespace:
            parts.append("no trailing whitespace")
        return parts

    def prompt_text(self, max_chars: int | None = None) -> str:
        """The guide for a prompt: the rules, then as much of the prose as `max_chars` allows."""
        if self.name == "none":
            return ""
        limit = max_chars if max_chars is not None else 1 << 30
        text = f"Style guide {self.name}" + (f" ({self.description})" if self.description else "") + "."
        if len(text) > limit:
            return ""
        # Rules first, as many as fit, then whole sentences of the prose.
        rules = ""
        for rule in self.rule_summary():
            longer = f"{rules}; {rule}" if rules else f" Rules: {rule}"
            if len(text) + len(longer) + 1 > limit:
                break
            rules = longer
        text += rules + ("." if rules else "")
        for sentence in re.split(r"(?<=[.!?])\s+", " ".join(self.prose.split())):
            if not sentence or len(text) + 1 + len(sentence) > limit:
                break
            text += " " + sentence
        return text


# --- building a guide from TOML -----------------------------------------------------------------

_SECTIONS: dict[str, dict[str, type | tuple[type, ...]]] = {
    "layout": {"max_line_length": int, "line_length_exempt": str, "indent": str, "indent_width": int,
               "indent_exempt": str, "no_trailing_whitespace": bool},
    "quotes": {"style": str},
    "naming": {},  # kinds are checked against the language
    "docs": {"required": list},
    "annotations": {"required": str},
    "imports": {"wildcard": bool, "one_per_line": bool},
}
_TOP_LEVEL = {"description": str, "prose": str, "languages": list, "extends": str}


def merge_tables(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """`base` with `override` laid over it, table by table."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge_tables(merged[key], value)
        else:
            merged[key] = value
    return merged


def _expect(table: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    value = table[key]
    # bool is an int in Python; a guide saying `max_line_length = true` is a mistake.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        expected = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise GuideError(f"{where} must be {'a ' + expected if expected != 'int' else 'an integer'}, "
                         f"not {value!r}", where)
    return value


def _regex(value: str, where: str) -> str:
    try:
        re.compile(value)
    except re.error as error:
        raise GuideError(f"{where} is not a valid regular expression: {error}", where) from None
    return value


def _choice(value: str, choices: tuple[str, ...], where: str) -> str:
    if value not in choices:
        raise GuideError(f"{where} must be one of {', '.join(repr(c) for c in choices)}, not {value!r}", where)
    return value


def _naming(table: Mapping[str, Any], kinds: tuple[str, ...]) -> tuple[dict[str, tuple[str, ...]], tuple[str, ...]]:
    naming: dict[str, tuple[str, ...]] = {}
    ignore: tuple[str, ...] = ()
    for kind, value in table.items():
        where = f"naming.{kind}"
        if kind == "ignore":
            patterns = _expect(table, kind, list, where)
            ignore = tuple(_regex(_expect({kind: p}, kind, str, where), where) for p in patterns)
            continue
        if kind not in kinds:
            raise GuideError(f"unknown symbol kind {kind!r} (known here: {', '.join(kinds)})", where)
        styles = [value] if isinstance(value, str) else value
        if not isinstance(styles, list) or not styles:
            raise GuideError(f"{where} must be a style or a list of styles", where)
        for style in styles:
            if style not in NAME_STYLES:
                raise GuideError(f"{where}: unknown style {style!r} (known: {', '.join(NAME_STYLES)})", where)
        naming[kind] = tuple(styles)
    return naming, ignore


def guide_from_table(name: str, language: str, table: Mapping[str, Any], kinds: tuple[str, ...],
                     sources: tuple[str, ...] = ()) -> StyleGuide:
    """A guide from a merged TOML table; `kinds` are the naming kinds the language has."""
    for key in table:
        if key not in _SECTIONS and key not in _TOP_LEVEL:
            raise GuideError(f"unknown key {key!r} (known: {', '.join([*_TOP_LEVEL, *_SECTIONS])})", key)
        if key in _TOP_LEVEL:
            _expect(table, key, _TOP_LEVEL[key], key)
        elif not isinstance(table[key], Mapping):
            raise GuideError(f"{key} must be a table ([{key}])", key)
        else:
            for inner in table[key]:
                if key != "naming" and inner not in _SECTIONS[key]:
                    raise GuideError(f"unknown key {key}.{inner} (known: {', '.join(_SECTIONS[key])})",
                                     f"{key}.{inner}")
                if key != "naming":
                    _expect(table[key], inner, _SECTIONS[key][inner], f"{key}.{inner}")
    layout = table.get("layout", {})
    naming, ignore = _naming(table.get("naming", {}), kinds)
    docs = table.get("docs", {}).get("required", [])
    for kind in docs:
        _choice(kind, DOC_KINDS, "docs.required")
    width = layout.get("indent_width", 4)
    if width < 1 or layout.get("max_line_length", 0) < 0:
        raise GuideError("layout.indent_width must be positive and layout.max_line_length not negative", "layout")
    return StyleGuide(
        name=name,
        language=language,
        description=table.get("description", ""),
        prose=table.get("prose", ""),
        max_line_length=layout.get("max_line_length", 0),
        line_length_exempt=_regex(layout.get("line_length_exempt", ""), "layout.line_length_exempt"),
        indent=_choice(layout.get("indent", ""), INDENT_KINDS, "layout.indent"),
        indent_width=width,
        indent_exempt=_regex(layout.get("indent_exempt", ""), "layout.indent_exempt"),
        no_trailing_whitespace=layout.get("no_trailing_whitespace", True),
        quotes=_choice(table.get("quotes", {}).get("style", "any"), QUOTE_STYLES, "quotes.style"),
        naming=naming,
        naming_ignore=ignore,
        docs_required=tuple(docs),
        annotations=_choice(table.get("annotations", {}).get("required", "none"), ANNOTATION_SCOPES,
                            "annotations.required"),
        wildcard_imports=table.get("imports", {}).get("wildcard", True),
        one_import_per_line=table.get("imports", {}).get("one_per_line", False),
        sources=sources,
    )
