"""The compiled style queries of a language (its `StyleSyntax`, in `osslsp.languages`)."""

from __future__ import annotations

from functools import cache

import tree_sitter

from osslsp.languages import grammar, language_named
from osslsp.languages.base import StyleSyntax

LITERAL_CAPTURES = ("string", "comment", "literal")


def syntax_of(language: str) -> StyleSyntax | None:
    """What the checker reads in a language's trees; None when it has no style checks."""
    registered = language_named(language)
    return registered.style if registered is not None else None


@cache
def queries(language: str) -> tuple[tree_sitter.Query, tree_sitter.Query]:
    """The compiled queries of a language: (symbols and literals in one, literals alone)."""
    syntax = syntax_of(language)
    return (tree_sitter.Query(grammar(language), syntax.symbols + syntax.literals),
            tree_sitter.Query(grammar(language), syntax.literals))
