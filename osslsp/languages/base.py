"""The one interface every language module fills in: `Language` and the records it holds.

A language module (`osslsp/languages/<name>.py`) defines one or more `Language` values; the
registry in `osslsp.languages` finds them by listing the package. Everything osslsp knows about a
language lives in its module: the files and grammar (here), what the index extracts
(`IndexRules`), how imports name files (`resolve_import`), what the style checker reads
(`StyleSyntax`) and which bundled guide applies, and what a stub looks like for "Generate
function" (`StubRules`). This module imports only tree-sitter: every part of osslsp may import it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

import tree_sitter

Node = tree_sitter.Node


class Resolver(Protocol):
    """What an import rule may ask of the workspace's module map (`osslsp.index.resolve`)."""

    def stem_parts(self, path: str) -> tuple[str, ...]:
        """A file path's module parts: no extension; a package file names its directory."""

    def exact(self, parts: tuple[str, ...]) -> list[str]:
        """The files whose whole module path is `parts`."""

    def nearest(self, parts: tuple[str, ...], importer: str) -> list[str]:
        """The files whose module path ends with `parts`, nearest the importer first."""

    def directory(self, parts: tuple[str, ...]) -> list[str]:
        """The files of the directory whose path ends with the longest suffix of `parts`."""


def previous_sibling(node: Node) -> Node | None:
    """The named node before a declaration, where its doc comments end.

    For the first statement of a body that starts at that statement, the body's: Ruby's grammar
    (and Python's) puts comments between a header and its first statement before the body node.
    """
    previous = node.prev_named_sibling
    if previous is None and node.parent is not None and node.parent.start_byte == node.start_byte:
        previous = node.parent.prev_named_sibling
    return previous


# An import rule: (resolver, importing file, module as written, relative level) -> files.
ImportRule = Callable[[Resolver, str, str, int], list[str]]


@dataclass(frozen=True, kw_only=True)
class IndexRules:
    """How the index finds definitions and imports in one grammar's trees.

    The extractor walks only the parts of a tree that can hold definitions (module level, class
    bodies, impl blocks, namespaces...) instead of querying the whole tree; imports are small
    nodes found by that walk, taken apart by `import_query`.
    """

    definitions: dict[str, str]  # node type -> kind of definition it introduces
    scopes: frozenset[str] = frozenset()  # definitions whose body holds members (classes, impls)
    transparent: frozenset[str] = frozenset()  # wrappers and blocks to look inside
    prefix_wrappers: frozenset[str] = frozenset()  # wrappers whose text belongs to the signature
    imports: frozenset[str] = frozenset()  # node types holding imports
    # Captures @module, and optionally @name, @alias, @wildcard, and @relative (the module is
    # relative to the importing file: level 1).
    import_query: str = ""
    doc_style: str = "comments"  # "docstring" (a string opening the body) or "comments" above
    comment_types: frozenset[str] = frozenset({"comment"})
    function_kinds: frozenset[str] = frozenset({"function"})  # kinds that become "method" in a scope
    keywords: frozenset[str] = field(default_factory=frozenset)  # never looked up as identifiers
    name_types: frozenset[str] = frozenset({
        "identifier", "field_identifier", "type_identifier", "property_identifier",
        "private_property_identifier", "destructor_name", "operator_name", "package_identifier",
        "namespace_identifier"})  # node types that hold a defined name
    qualified_types: frozenset[str] = frozenset({"qualified_identifier"})  # `scope::name` nodes
    # The field naming a definition that has no `name` field (Python's `x = 1`: "left").
    name_fields: dict[str, str] = field(default_factory=dict)
    # Declarations that define a function when they hold a function declarator, else a constant
    # (C's `int f(int);` against `int x;`).
    prototypes: frozenset[str] = frozenset()
    receiver_scoped: frozenset[str] = frozenset()  # methods scoped by their receiver's type (Go)
    body_required: frozenset[str] = frozenset()  # define only with a body (C's `struct s *p` uses s)
    # Definitions holding a value (`const f = ...`): a function value makes them functions, and
    # their signature ends where the value's body starts.
    value_definitions: frozenset[str] = frozenset()
    function_values: frozenset[str] = frozenset()  # value node types that are functions
    fold_bodies: bool = False  # the lexical pre-pass that folds function bodies away (Python)
    # The character a relative module starts with, once per level up (Python's `..m`); "": none.
    relative_prefix: str = ""
    # What an import without alias binds: the module's "first" part (Python's `import a.b`
    # binds `a`), its "last" (Go, Java), or nothing ("").
    binds: str = ""


def _always_public(node: Node, name: str) -> bool:
    return True


def leading_quote(node: Node) -> str:
    """The quote a string literal starts with, or "" (`%q()`, raw and prefixed strings)."""
    text = node.text or b""
    return chr(text[0]) if text[:1] in (b"'", b'"') else ""


@dataclass(frozen=True, kw_only=True)
class StyleSyntax:
    """What the style checker reads in one grammar's trees.

    `symbols` names every definition the naming rules see (`@name.<kind>`), the declarations that
    may need documentation (`@def.<kind>`) and the imports the import rules look at
    (`@import.wildcard`, `@import.multiple`); `literals` finds strings (`@string`, quote-checked),
    comments (`@comment`) and other literal text (`@literal`), which layout rules must not read as
    code. `refine` turns a raw capture kind into the kind a guide names, where the syntax alone
    cannot tell (a Python `def` inside a class is a method); None when no rule applies.
    """

    symbols: str
    literals: str
    kinds: tuple[str, ...]  # the naming kinds a guide may set for this language
    doc_markers: tuple[str, ...]  # how a doc comment starts; empty for docstrings
    block_opener: bytes = b"{"  # the last character of a line that opens an indented block
    continuation_brackets: bytes = b"(["  # brackets inside which lines are continuation lines
    refine: Callable[[str, Node], str | None] = lambda kind, node: kind
    refinements: dict[str, tuple[str, ...]] = field(default_factory=dict)  # capture kind -> kinds `refine` may give
    # (declaration, its name) -> whether the guide's doc rule applies to it: public API.
    needs_docs: Callable[[Node, str], bool] = _always_public
    quote_of: Callable[[Node], str] = leading_quote  # a one-line string's quote character, or ""
    doc_wrappers: frozenset[str] = frozenset()  # parents whose doc comment is the declaration's
    skipped_above: frozenset[str] = frozenset()  # nodes between a doc comment and its declaration
    # Where a statement stands: "module", "class" or "function" (docstring languages only).
    scope_of: Callable[[Node], str] | None = None
    # (function, public only) -> each unannotated parameter or return and what to say about it;
    # None when the language has no annotation rules.
    unannotated: Callable[[Node, bool], Iterator[tuple[Node, str]]] | None = None


@dataclass(frozen=True, kw_only=True)
class StubRules:
    """What a stub (documented function with no code yet) looks like in one grammar."""

    functions: frozenset[str]  # nodes that define a function with a body
    classes: frozenset[str] = frozenset()  # nodes whose members are methods
    declarations: frozenset[str] = frozenset()  # bodiless declarations that may be stubs (C, C++)
    wrappers: frozenset[str] = frozenset()  # parents whose text belongs to the declaration
    skipped_above: frozenset[str] = frozenset()  # nodes between a doc comment and its declaration
    placeholder: str = r"(?!)"  # a statement that only says "not written yet" (full match)
    block_bodies: frozenset[str] = frozenset({"block", "statement_block", "compound_statement",
                                              "constructor_body"})  # bodies inside `{ }`
    statement_lists: frozenset[str] = frozenset()  # nodes in a body that wrap its statements (Go)
    # The keyword that closes a function whose body has no brackets (Ruby's `end`); "" for none.
    closer: str = ""


@dataclass(frozen=True, kw_only=True)
class Language:
    """Everything osslsp knows about one language."""

    name: str  # LSP languageId, also our key everywhere
    suffixes: tuple[str, ...]
    grammar_module: str  # the grammar wheel's module
    grammar_function: str = "language"  # the module's function returning the grammar pointer
    aliases: tuple[str, ...] = ()  # other languageIds editors send for it
    line_comment: str = "//"
    index: IndexRules
    resolve_import: ImportRule
    package_stems: frozenset[str] = frozenset()  # file stems that stand for their directory
    compound_suffixes: tuple[str, ...] = ()  # suffixes longer than the last dot (`.d.ts`)
    style: StyleSyntax | None = None  # None: no style checks
    default_guide: str | None = None  # the bundled guide that applies unless a team sets one
    guide_tables: tuple[str, ...] = ()  # team-guide tables that apply, in order (default: name)
    stubs: StubRules | None = None  # None: no "Generate function"
    body_opener: str = ""  # what a signature line ends with before its body (Python's ":")
    constructors: frozenset[str] = frozenset()  # method names that make an instance

    @property
    def docstrings(self) -> bool:
        """Whether documentation is a string opening the body rather than comments above."""
        return self.index.doc_style == "docstring"

    def team_tables(self) -> tuple[str, ...]:
        """The tables of a team's guide that may set this language's rules, first found wins."""
        return self.guide_tables or (self.name,)

    def documented(self, signature: str, kind: str, doc: str) -> str:
        """A definition shown as its declaration with its documentation, as this language writes it."""
        terminated = signature + self.body_opener if self.body_opener and kind in (
            "function", "method", "class") else signature
        if not doc:
            return terminated
        if self.docstrings:
            indent = "    "
            lines = "\n".join(indent + line if line else line for line in doc.splitlines())
            return f'{terminated}\n{indent}"""{lines.lstrip()}"""'
        comments = "\n".join(f"{self.line_comment} {line}".rstrip() for line in doc.splitlines())
        return f"{comments}\n{signature}"
