"""The languages osslsp understands: one module each, found by listing this package.

A language module defines `LANGUAGES`, a tuple of `base.Language` values holding everything osslsp
knows about the language (docs/languages.md: how to add one). Grammars come from the
per-language wheels (`tree-sitter-python`, ...), which ship compiled grammars and work offline.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
from functools import cache
from pathlib import PurePath

import tree_sitter

from osslsp.languages.base import Language


def _listed() -> tuple[Language, ...]:
    """Every language of every module in this package, by name."""
    found: list[Language] = []
    for module_info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        found.extend(getattr(module, "LANGUAGES", ()))
    return tuple(sorted(found, key=lambda language: language.name))


LANGUAGES: tuple[Language, ...] = _listed()

_BY_NAME = {language.name: language for language in LANGUAGES}
_BY_SUFFIX = {suffix: language for language in LANGUAGES for suffix in language.suffixes}
# Editors name some languages differently from us.
_ALIASES = {alias: language.name for language in LANGUAGES for alias in language.aliases}


def language_for_path(path: str | PurePath) -> Language | None:
    """The language of a file, by its suffix; None for files we do not parse."""
    # os.path, not PurePath: a workspace scan asks this of every file.
    return _BY_SUFFIX.get(os.path.splitext(os.fspath(path))[1].lower())


def language_named(name: str | None) -> Language | None:
    """The language for an LSP languageId (or one of its common aliases)."""
    if not name:
        return None
    name = name.lower()
    return _BY_NAME.get(_ALIASES.get(name, name))


def language_for(path: str | PurePath, language_id: str | None = None) -> Language | None:
    """The language of a document: the client's languageId first, else the file suffix."""
    return language_named(language_id) or language_for_path(path)


@cache
def grammar(name: str) -> tree_sitter.Language:
    """The compiled tree-sitter grammar of a language; ImportError if its wheel is missing."""
    language = _BY_NAME[name]
    module = importlib.import_module(language.grammar_module)
    return tree_sitter.Language(getattr(module, language.grammar_function)())


def parser(name: str) -> tree_sitter.Parser:
    """A new parser for a language (parsers are not thread-safe: one per thread or use)."""
    return tree_sitter.Parser(grammar(name))


def available_grammars() -> dict[str, str | None]:
    """Each language and the problem loading its grammar (None when it loads)."""
    problems: dict[str, str | None] = {}
    for language in LANGUAGES:
        try:
            grammar(language.name)
            problems[language.name] = None
        except Exception as error:  # a broken or missing wheel: doctor reports it
            problems[language.name] = f"{type(error).__name__}: {error}"
    return problems
