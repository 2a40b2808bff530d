"""Extraction: from one file's bytes to its definitions, imports and identifiers (pure)."""

from __future__ import annotations

import re
import string
from bisect import bisect_left
from dataclasses import dataclass
from functools import cache
from typing import NamedTuple

import tree_sitter

from osslsp.index.bodies import FoldedRun, Skimmed, skim_and_parse
from osslsp.index.signatures import clean_doc, docstring_text, signature_text
from osslsp.languages import grammar, language_named, parser
from osslsp.languages.base import IndexRules, previous_sibling

BODY_TOKEN_BYTES = 2048  # how much of a function body gives its identifiers for similar code
# A file's identifiers (which bodies are matched by, and files related by) are three characters
# or more: shorter ones (`i`, `fn`) tell little of what code does or uses.
MIN_IDENTIFIER_CHARS = 3
# Every byte that cannot be part of an ASCII identifier becomes a space: `translate` and `split`
# find the distinct runs of word bytes, and identifiers are told apart from numbers once per file,
# over those distinct runs only.
_WORD_BYTES = bytes(byte if chr(byte) in "_" + string.digits + string.ascii_letters else 32
                    for byte in range(256))
_SPACES = re.compile(rb" *+")  # in words: up to the next word
_LAST_DIGIT = ord("9")
_BODY_KINDS = frozenset({"function", "method"})  # whose bodies similar code is matched against
_STRING_OPENERS = frozenset(bytes([byte]) for byte in b"\"'rRbBuUfF")


class Definition(NamedTuple):
    """A named thing a file defines, with what a prompt needs to use it correctly.

    A named tuple, not a dataclass: a cold index makes about 70,000 (and retrieval many), and a
    frozen dataclass costs five times as much to make."""

    name: str
    kind: str  # function, method, class, type, constant, namespace, module
    scope: str  # dotted names of the enclosing classes/impls/namespaces, "" at top level
    signature: str  # the declaration line(s), without the body
    doc: str  # docstring or doc comment, cleaned
    line: int  # 1-based first line (decorators and `export` included)
    end_line: int  # 1-based last line
    path: str = ""  # workspace-relative posix path, set by the index


class Import(NamedTuple):
    """One name a file takes from a module: `from .m import a as b` is Import('m', 'a', 'b', 1)."""

    module: str  # as written, without leading dots: "os.path", "./utils", "crate::a", "x.h"
    name: str  # the imported name, "" for the whole module, "default" for a JS default import
    bound: str  # the local name this import binds ("" when it binds none, as C includes)
    level: int  # Python's leading dots in a relative import
    line: int
    wildcard: bool = False


@dataclass(frozen=True)
class FileSummary:
    """Everything the index keeps about one file."""

    language: str
    definitions: tuple[Definition, ...]
    imports: tuple[Import, ...]
    identifiers: str  # the names the file mentions, space-separated, for the reference graph
    # per definition, the identifiers of a function's body ("" for other kinds), for similar code
    tokens: tuple[str, ...] = ()


def extract(language: str, source: bytes, fold_python: bool = True) -> FileSummary:
    """Definitions, imports and identifiers of a source file. Broken code gives what parses.

    `fold_python`: a Python file's functions are folded out of the parse and read from the text
    (`bodies`), 2.5-3 times faster; else every function is parsed."""
    if not _rules(language).fold_bodies:
        skimmed = Skimmed(source, source, {}, {}, {})
        return _Walker(language, skimmed, parser(language).parse(source)).summary()
    return _Walker(language, *skim_and_parse(source, parser(language), fold_python)).summary()


def _rules(language: str) -> IndexRules:
    """What to extract from a language's trees."""
    return language_named(language).index


@cache
def _import_query(language: str) -> tree_sitter.Query | None:
    source = _rules(language).import_query
    return tree_sitter.Query(grammar(language), source) if source else None


class _Walker:
    """Visits the definition-bearing parts of a tree, collecting definitions and imports."""

    def __init__(self, language: str, skimmed: Skimmed, tree: tree_sitter.Tree) -> None:
        self.language = language
        self.spec = _rules(language)
        self.tree = tree
        self.source = skimmed.parsed  # what was parsed
        self.skimmed = skimmed  # and what it was cut from
        # The file's words: those of the parsed text, then each cut body's, whose first few KB
        # are kept as the body's own (split once: most bodies are shorter), then a folded
        # function's signature and docstring.
        original_words = skimmed.source.translate(_WORD_BYTES)
        self.parsed_words = skimmed.parsed.translate(_WORD_BYTES) \
            if skimmed.parsed is not skimmed.source else original_words
        runs = set(self.parsed_words.split())
        self.original_words = original_words
        # the words of each body cut before parsing, by where its function stands in the parse
        self.cut_windows = {function_start: self._body_window(start, end, runs)
                            for function_start, (start, end) in skimmed.cut_bodies.items()}
        # a folded function's, by where its body starts in the skimmed source
        self.folded_windows: dict[int, set[bytes]] = {}
        for run in skimmed.folded.values():
            for function in run.functions:
                body_start, body_end = function.body
                runs.update(original_words[function.header[0]:body_start].split())
                self.folded_windows[body_start] = self._body_window(body_start, body_end, runs)
        for statement in skimmed.cut_values.values():
            runs.update(statement.translate(_WORD_BYTES).split())
        self.folded_at = list(skimmed.folded)  # in file order
        # the file's, which bodies' words are kept of
        self.identifiers = _identifiers(runs, language)
        self.definitions: list[Definition] = []
        self.tokens: list[str] = []  # parallel to definitions
        self.imports: list[Import] = []

    def _body_window(self, start: int, end: int, runs: set[bytes]) -> set[bytes]:
        """The words of a cut body's first few KB from its first word, as a parsed body's; all
        its words go into `runs`."""
        window_start = _SPACES.match(self.original_words, start).end()
        window_end = window_start + BODY_TOKEN_BYTES
        window = set(self.original_words[window_start:min(end, window_end)].split())
        runs.update(window if end <= window_end else self.original_words[start:end].split())
        return window

    def summary(self) -> FileSummary:
        """What the file defines, imports and mentions."""
        self.walk(self.tree.root_node, (), in_scope=False)
        return FileSummary(self.language, tuple(self.definitions), tuple(self.imports),
                           b" ".join(self.identifiers).decode(), tuple(self.tokens))

    def walk(self, node: tree_sitter.Node, scope: tuple[str, ...], in_scope: bool,
             wrapper: tree_sitter.Node | None = None) -> None:
        """Collect what `node`'s children define. `wrapper`: the outermost of the prefix wrappers
        (decorators, `export`) ending at `node`, passed down because `Node.parent` searches the
        tree from its root (quadratic over a module's many top-level statements)."""
        spec = self.spec
        imports, definitions, transparent = spec.imports, spec.definitions, spec.transparent
        folded = self.skimmed.folded
        for child in node.named_children:
            kind_of_child = child.type
            if kind_of_child in imports:
                self._collect_imports(child)
            kind = definitions.get(kind_of_child)
            if kind is not None:
                self._definition(child, kind_of_child, kind, scope, in_scope, wrapper or child)
            elif kind_of_child == "expression_statement" and child.start_byte in folded:
                self._folded_definitions(child, folded[child.start_byte], scope, in_scope)
            elif kind_of_child in transparent:
                inner_wrapper = (wrapper or child) if kind_of_child in spec.prefix_wrappers \
                    else None
                self.walk(child, scope, in_scope, inner_wrapper)

    def _definition(self, node: tree_sitter.Node, node_type: str, kind: str,
                    scope: tuple[str, ...], in_scope: bool, outer: tree_sitter.Node) -> None:
        """Record one definition; `outer` is the node whose text starts it (its wrappers')."""
        name, qualifier = self._name(node, node_type)
        if not name:
            return
        kind = self._refine_kind(node, node_type, kind, in_scope)
        if kind is None:
            return
        own_scope = scope + qualifier
        if node_type in self.spec.receiver_scoped:
            own_scope = scope + tuple(self._receiver_type(node))
        body = node.child_by_field_name("body")
        if kind != "impl":  # an impl block only gives its members a scope
            self.definitions.append(Definition(
                name, kind, ".".join(own_scope), self._signature(outer, node, node_type, body),
                self._doc(outer, body), outer.start_point.row + 1, node.end_point.row + 1))
            self.tokens.append(self._body_tokens(node, body) if kind in _BODY_KINDS else "")
        if node_type in self.spec.scopes:  # members after their scope: the list stays in file order
            members = body or node.child_by_field_name("type") or node
            self.walk(members, own_scope + (name,), in_scope=kind not in ("namespace", "module"))

    def _folded_definitions(self, placeholder: tree_sitter.Node, run: FoldedRun,
                            scope: tuple[str, ...], in_scope: bool) -> None:
        """Record the functions folded out of the parse that `placeholder` (the `...` on the
        last one's last line) stands for, read from their text."""
        source = self.skimmed.source
        last_row, column = placeholder.start_point
        first_row = last_row + 1 - run.lines  # 1-based
        kind = "method" if in_scope else "function"
        dotted_scope = ".".join(scope)
        for function in run.functions:
            header_start, header_end = function.header
            doc = ""
            if function.docstring is not None:
                doc_start, doc_end = function.docstring
                doc = docstring_text(source[doc_start:doc_end].decode(errors="replace"))
            self.definitions.append(Definition(
                function.name, kind, dotted_scope,
                signature_text(source, header_start, header_end, column), doc,
                first_row + function.first_line, first_row + function.last_line))
            self.tokens.append(b" ".join(self.folded_windows[function.body[0]] &
                                         self.identifiers).decode())

    def _refine_kind(self, node: tree_sitter.Node, node_type: str, kind: str,
                     in_scope: bool) -> str | None:
        """The kind, adjusted for context; None for nodes that define nothing useful."""
        if node_type in self.spec.prototypes:
            kind = "function" if _find_descendant(node, "function_declarator") else "constant"
        elif node_type in self.spec.body_required and node.child_by_field_name("body") is None:
            return None  # a mere use such as `struct s *p`
        elif node_type in self.spec.value_definitions:
            value = node.child_by_field_name("value")
            if value is not None and value.type in self.spec.function_values:
                kind = "function"
        if in_scope and kind in self.spec.function_kinds:
            return "method"
        return kind

    def _name(self, node: tree_sitter.Node, node_type: str) -> tuple[str, tuple[str, ...]]:
        """The defined name and any qualifier written with it (C++ `Foo::bar`)."""
        named = node.child_by_field_name("name")
        if named is None and node_type in self.spec.name_fields:
            named = node.child_by_field_name(self.spec.name_fields[node_type])
            if named is not None and named.type == "generic_type":
                named = named.child_by_field_name("type")
        if named is None:
            named = node.child_by_field_name("declarator")
            while named is not None and named.type not in self.spec.name_types and \
                    named.type not in self.spec.qualified_types:
                named = named.child_by_field_name("declarator")
        qualifier: tuple[str, ...] = ()
        named_type = named.type if named is not None else ""
        while named_type in self.spec.qualified_types:
            scope = named.child_by_field_name("scope")
            if scope is not None:
                qualifier += (self._text(scope),)
            named = named.child_by_field_name("name")
            named_type = named.type if named is not None else ""
        if named_type not in self.spec.name_types:
            return "", ()
        return self._text(named), qualifier

    def _text(self, node: tree_sitter.Node) -> str:
        """A node's text, sliced from the parsed bytes (`Node.text` costs three times as much)."""
        return self.source[node.start_byte:node.end_byte].decode(errors="replace")

    def _receiver_type(self, node: tree_sitter.Node) -> list[str]:
        receiver = node.child_by_field_name("receiver")
        found = _find_descendant(receiver, "type_identifier") if receiver is not None else None
        return [self._text(found)] if found is not None else []

    def _signature(self, outer: tree_sitter.Node, node: tree_sitter.Node, node_type: str,
                   body: tree_sitter.Node | None) -> str:
        """The text from the definition's start (decorators, export) to its body, or its first
        lines (a constant's value may run for thousands)."""
        if body is None and node_type in self.spec.value_definitions:
            value = node.child_by_field_name("value")
            if value is not None:
                body = value.child_by_field_name("body")
        source, start = self.source, outer.start_byte
        end = body.start_byte if body is not None else outer.end_byte
        if start in self.skimmed.cut_values:
            source = self.skimmed.cut_values[start]
            start, end = 0, len(source)
        return signature_text(source, start, end, outer.start_point.column)

    def _body_tokens(self, node: tree_sitter.Node, body: tree_sitter.Node | None) -> str:
        """The distinct identifiers of a function's body (its first few KB), space-separated."""
        if body is None:
            return ""
        window = self.cut_windows.get(node.start_byte)
        if window is None:  # parsed whole: the window starts after the docstring, as when cut
            docstring = self._docstring_node(body)
            start = _SPACES.match(self.parsed_words, docstring.end_byte if docstring is not None
                                  else body.start_byte).end()  # its first word
            end = min(body.end_byte, start + BODY_TOKEN_BYTES)
            window = set(self.parsed_words[start:end].split())
            # functions folded out of it: their signatures' words (up to their docstrings)
            folded = self.folded_at
            for placeholder in folded[bisect_left(folded, start):bisect_left(folded, end)]:
                for function in self.skimmed.folded[placeholder].functions:
                    header_start, header_end = function.header
                    window.update(self.original_words[header_start:header_end].split())
        return b" ".join(window & self.identifiers).decode()

    def _doc(self, outer: tree_sitter.Node, body: tree_sitter.Node | None) -> str:
        if self.spec.doc_style == "docstring":
            return self._docstring(body)
        return self._doc_comment(outer)

    def _docstring(self, body: tree_sitter.Node | None) -> str:
        docstring = self._docstring_node(body)
        if docstring is None:
            return ""
        return docstring_text(self._text(docstring.named_child(0)))

    def _docstring_node(self, body: tree_sitter.Node | None) -> tree_sitter.Node | None:
        """The statement that is a body's docstring, if it opens with one."""
        # Most bodies do not open with a string: told by one byte, without visiting nodes.
        if body is None or self.source[body.start_byte:body.start_byte + 1] not in _STRING_OPENERS:
            return None
        first = body.named_child(0)
        if first is None or first.type != "expression_statement" or \
                first.named_child_count != 1:
            return None
        string = first.named_child(0)
        return first if string is not None and string.type == "string" else None

    def _doc_comment(self, outer: tree_sitter.Node) -> str:
        comments: list[str] = []
        expected_row = outer.start_point.row
        sibling = previous_sibling(outer)
        while sibling is not None and sibling.type in self.spec.comment_types and \
                sibling.end_point.row >= expected_row - 1:
            if sibling.type != "attribute_item":
                comments.append(self._text(sibling))
            expected_row = sibling.start_point.row
            sibling = sibling.prev_named_sibling
        lines = []
        for comment in reversed(comments):
            for line in comment.splitlines():
                lines.append(re.sub(r"^\s*(///?!?|/\*\*?|\*/|\*(?!/)|#)\s?", "", line)
                             .removesuffix("*/").rstrip())
        return clean_doc("\n".join(lines))

    def _collect_imports(self, node: tree_sitter.Node) -> None:
        query = _import_query(self.language)
        if query is None:
            return
        found: list[Import] = []
        wildcards: set[str] = set()
        for _, captures in tree_sitter.QueryCursor(query).matches(node):
            module_node = captures.get("module")
            if not module_node:
                continue
            module = self._text(module_node[0]).strip("<>")
            level = 0
            prefix = self.spec.relative_prefix
            if prefix:
                level = len(module) - len(module.lstrip(prefix))
                module = module[level:]
            elif "relative" in captures:
                level = 1
            name = self._text(captures["name"][0]) if "name" in captures else ""
            wildcard = "wildcard" in captures
            if wildcard:
                wildcards.add(module)
                bound = ""
            else:
                bound = self._text(captures["alias"][0]) if "alias" in captures else \
                    self._bound_name(module, name)
            found.append(Import(module, name, bound, level, module_node[0].start_point.row + 1,
                                wildcard))
        if wildcards:  # `import a.b.*` also matches the plain pattern as `b` from `a`: it wins
            found = [imported for imported in found if imported.wildcard or
                     f"{imported.module}.{imported.name}" not in wildcards]
        self.imports.extend(found)

    def _bound_name(self, module: str, name: str) -> str:
        """The local name an import without alias binds."""
        if name:
            return name
        binds = self.spec.binds
        if binds == "first":
            return module.split(".")[0]
        if binds == "last":
            return module.rstrip("/").split("/")[-1].split(".")[-1]
        return ""


@cache
def _keyword_bytes(language: str) -> frozenset[bytes]:
    return frozenset(keyword.encode() for keyword in _rules(language).keywords)


def _identifiers(runs: set[bytes], language: str) -> set[bytes]:
    """The runs of word bytes that are identifiers long enough, neither keywords nor numbers
    (`0x1F`, `2nd`: they start with a digit, a byte below every letter and `_`). Filtered in
    place: most runs are kept, and copying them into a new set cost more than the test."""
    runs.difference_update([run for run in runs
                            if len(run) < MIN_IDENTIFIER_CHARS or run[0] <= _LAST_DIGIT])
    runs -= _keyword_bytes(language)
    return runs


def _find_descendant(node: tree_sitter.Node, node_type: str) -> tree_sitter.Node | None:
    """The first descendant of a type, searched breadth-first (declarators are shallow)."""
    queue = [node]
    while queue:
        current = queue.pop(0)
        if current.type == node_type:
            return current
        queue.extend(current.named_children)
    return None
