"""Checking code against a guide: one tree-sitter parse, one query, a few regular expressions.

`collect_issues` returns each broken rule as an `Issue`: the `Finding` a person reads and, where the
fix is safe (trailing whitespace, indentation characters, a quote that can be swapped without
escaping anything), the edit that repairs it. `rows` limits the work to the lines a completion
touches; the parse still covers the whole text, so scopes and brackets are seen right.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

import tree_sitter

from osslsp.languages import language_named
from osslsp.languages.base import Node, StyleSyntax, previous_sibling
from osslsp.style.guide import StyleGuide
from osslsp.style.layout import Layout, Source, literal_rows
from osslsp.style.syntax import LITERAL_CAPTURES, queries, syntax_of


@dataclass(frozen=True, order=True)
class Finding:
    """One place where code breaks a rule (line and column 1-based, column in characters)."""

    line: int
    col: int
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.line}:{self.col}: {self.rule}: {self.message}"


@dataclass(frozen=True)
class Edit:
    """Replace text[start:end] (character offsets) with `text`."""

    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Issue:
    """A finding, the text it is about (character offsets, end exclusive), and its safe fix if any."""

    finding: Finding
    start: int
    end: int
    fix: Edit | None = None


def _captures(query: tree_sitter.Query, root: Node, rows: tuple[int, int] | None,
              whole_from_start: bool = False) -> dict[str, list[Node]]:
    cursor = tree_sitter.QueryCursor(query)
    if rows is not None:
        start = (0, 0) if whole_from_start else (rows[0], 0)
        cursor.set_point_range(start, (rows[1] + 1, 0))
    return cursor.captures(root)


class _Checker:
    """Runs every rule of one guide over one source."""

    def __init__(self, source: Source, language: str, guide: StyleGuide,
                 rows: tuple[int, int] | None) -> None:
        self.source = source
        self.language = language
        self.docstrings = language_named(language).docstrings
        self.syntax: StyleSyntax = syntax_of(language)
        self.guide = guide
        self.rows = rows
        self.issues: list[Issue] = []

    def in_rows(self, node: Node) -> bool:
        return self.rows is None or self.rows[0] <= node.start_point.row <= self.rows[1]

    def add(self, node: Node, rule: str, message: str, fix: Edit | None = None, until: Node | None = None) -> None:
        """An issue about `node` (through `until`, when given)."""
        row, byte_col = node.start_point
        col = self.source.char_col(row, byte_col)
        end = self.source.point_offset((until or node).end_point)
        self.issues.append(Issue(Finding(row + 1, col + 1, rule, message), self.source.offset(row, col), end, fix))

    def add_on_line(self, row: int, col: int, end_col: int, rule: str, message: str, fix: Edit | None = None) -> None:
        """An issue about characters col..end_col (0-based) of a line."""
        start = self.source.offset(row, col)
        self.issues.append(Issue(Finding(row + 1, col + 1, rule, message), start, start + end_col - col, fix))

    # --- symbols ---------------------------------------------------------------------------------

    def check_symbols(self, captures: dict[str, list[Node]]) -> None:
        for capture, nodes in captures.items():
            group, _, kind = capture.partition(".")
            for node in nodes:
                if group == "name" and self.in_rows(node):
                    self.check_name(kind, node)
                elif group == "def":
                    self.check_docs(kind, node)
                    if kind == "function" and self.syntax.unannotated and self.guide.annotations != "none":
                        self.check_annotations(node)
                elif group == "import" and self.in_rows(node):
                    self.check_import(kind, node)

    def check_name(self, kind: str, node: Node) -> None:
        name = self.source.node_text(node)
        # Most names suit every kind the capture could turn out to be: skip working out which.
        if all(self.guide.name_follows(possible, name) for possible in self.syntax.refinements.get(kind, (kind,))):
            return
        refined = self.syntax.refine(kind, node)
        if refined is None or self.guide.name_follows(refined, name):
            return
        styles = " or ".join(self.guide.naming[refined])
        self.add(node, f"naming-{refined.replace('_', '-')}",
                 f"{refined.replace('_', ' ')} name '{name}' is not {styles}")

    def check_import(self, kind: str, node: Node) -> None:
        if kind == "wildcard" and not self.guide.wildcard_imports:
            self.add(node, "import-wildcard", f"wildcard import '{self.source.node_text(node)}'")
        elif kind == "multiple" and self.guide.one_import_per_line:
            names = node.children_by_field_name("name")
            if len(names) > 1:
                self.add(names[1], "import-one-per-line", "import one module per line")

    # --- documentation ---------------------------------------------------------------------------

    def check_docs(self, kind: str, node: Node) -> None:
        name_node = node.child_by_field_name("name")
        if kind != "class" and name_node is not None:
            kind = self.syntax.refine(kind, name_node) or kind
        if kind not in self.guide.docs_required:
            return
        if self.docstrings:
            self.check_docstring(kind, node, name_node)
        elif self.in_rows(node) and self.needs_docs(node, name_node) and not self.follows_other_convention(
                node, name_node) and not self.has_doc_comment(node):
            # About the declaration up to its name: whoever wrote that owes the doc comment.
            self.add(node, "docs-required", f"public {kind} {self.declared_name(node, name_node)!r} "
                                            "has no doc comment above it", until=name_node)

    def check_docstring(self, kind: str, node: Node, name_node: Node | None) -> None:
        name = self.source.node_text(name_node)
        if name.startswith("_") or self.decorated_with(node, ("overload", "override")) \
                or self.follows_other_convention(node, name_node):
            return
        if kind == "function" and self.syntax.scope_of(node) == "function":
            return  # a nested helper is no public API
        body = node.child_by_field_name("body")
        first = body.named_children[0] if body is not None and body.named_children else None
        if first is None or first.type == "comment" or not self.in_rows(first):
            return  # nothing written yet, or outside the lines looked at
        if first.type == "expression_statement" and first.named_children and first.named_children[0].type == "string":
            return
        self.add(first, "docs-required", f"public {kind} '{name}' has no docstring")

    def follows_other_convention(self, node: Node, name_node: Node | None) -> bool:
        """Whether a declaration is named for a framework (unittest's setUp, Go's TestX): no docs needed."""
        ignored = self.guide.ignored_names
        return ignored is not None and bool(ignored.fullmatch(self.declared_name(node, name_node)))

    @staticmethod
    def decorated_with(node: Node, names: tuple[str, ...]) -> bool:
        parent = node.parent
        if parent is None or parent.type != "decorated_definition":
            return False
        for decorator in parent.children:
            if decorator.type == "decorator":
                text = (decorator.text or b"").decode("utf-8", "replace")
                if text.lstrip("@").split("(")[0].split(".")[-1].strip() in names:
                    return True
        return False

    def declared_name(self, node: Node, name_node: Node | None) -> str:
        if name_node is None:  # Go's type declarations keep the name in a type_spec
            spec = next((child for child in node.named_children if child.type == "type_spec"), None)
            name_node = spec.child_by_field_name("name") if spec is not None else None
        return self.source.node_text(name_node)

    def needs_docs(self, node: Node, name_node: Node | None) -> bool:
        return self.syntax.needs_docs(node, self.declared_name(node, name_node))

    def has_doc_comment(self, node: Node) -> bool:
        anchor = node
        if anchor.parent is not None and anchor.parent.type in self.syntax.doc_wrappers:
            anchor = anchor.parent
        previous = anchor.prev_sibling
        if previous is None:  # the first statement of a body: its comments may lie before it
            previous = previous_sibling(anchor)
        while previous is not None and previous.type in self.syntax.skipped_above:
            previous = previous.prev_sibling
        if previous is None or "comment" not in previous.type:
            return False
        if previous.end_point.row < anchor.start_point.row - 1:
            return False  # a blank line between: that comment is not this declaration's doc
        return self.source.node_text(previous).startswith(self.syntax.doc_markers)

    # --- annotations -----------------------------------------------------------------------------

    def check_annotations(self, node: Node) -> None:
        for unannotated, message in self.syntax.unannotated(node, self.guide.annotations == "public"):
            if self.in_rows(unannotated):
                self.add(unannotated, "annotations-required", message)

    # --- strings ---------------------------------------------------------------------------------

    def check_quotes(self, strings: list[Node]) -> None:
        wanted = self.guide.quotes
        if wanted == "any" or not strings:
            return
        if wanted == "consistent":
            # The query hands strings over in no particular order; the file's first one sets the style.
            ordered = sorted(strings, key=lambda node: node.start_byte)
            wanted = next((quote for quote in map(self.syntax.quote_of, ordered) if quote), '"')
            wanted = "single" if wanted == "'" else "double"
        char, other = ('"', "'") if wanted == "double" else ("'", '"')
        for node in strings:
            quote = self.syntax.quote_of(node)
            if quote != other or not self.in_rows(node):
                continue
            text = self.source.node_text(node)
            start = text.index(other)
            content = text[start + 1:-1]
            if char in content:
                continue  # the other quote avoids escaping: allowed by every guide
            fix = None
            if other not in content:
                row, byte_col = node.start_point
                begin = self.source.offset(row, self.source.char_col(row, byte_col))
                fix = Edit(begin, begin + len(text), text[:start] + char + content + char)
            self.add(node, "quote-style", f"use {wanted} quotes", fix)

    # --- lines -----------------------------------------------------------------------------------
    # Regular expressions find the few lines that may break a layout rule; only those are looked
    # at closely (a Python loop over every line of a large file would cost more than the parse).

    def check_lines(self, literals: dict[str, list[Node]]) -> None:
        source, guide = self.source, self.guide
        layout = Layout(source, self.syntax, literals)
        last_row = len(source.lines) - 1
        lo, hi = self.rows if self.rows is not None else (0, last_row)
        hi = min(hi, last_row)
        begin, end = source.offset(lo, 0), source.offset(hi, len(source.lines[hi]))
        limit = guide.max_line_length
        if limit:
            long_or_tabbed = {source.row_of(match.start()) for pattern in (_long_line(limit), _TAB)
                              for match in pattern.finditer(source.text, begin, end)}
            for row in sorted(long_or_tabbed):
                line = source.lines[row].rstrip("\r")
                if len(line) > limit or ("\t" in line and len(line.expandtabs(guide.indent_width)) > limit):
                    if guide.line_length_exemption is None or not guide.line_length_exemption.search(line):
                        self.add_on_line(row, limit, len(line), "line-length", f"line longer than {limit} characters")
        if guide.no_trailing_whitespace:
            for match in _TRAILING_WHITESPACE.finditer(source.text, begin, end):
                row = source.row_of(match.start())
                if row not in layout.newline_inside:
                    col = match.start() - source.offset(row, 0)
                    length = len(match.group().rstrip("\r"))
                    self.add_on_line(row, col, col + length, "trailing-whitespace", "trailing whitespace",
                                     Edit(match.start(), match.start() + length, ""))
        if guide.indent:
            self.check_indentation(layout, lo, hi, begin, end)

    def check_indentation(self, layout: Layout, lo: int, hi: int, begin: int, end: int) -> None:
        guide, source = self.guide, self.source
        width = guide.indent_width
        suspects: dict[int, int | None] = {}  # row -> indentation of the block opener above it
        if guide.indent == "tabs":
            patterns = [_SPACE_IN_INDENT]
        else:
            patterns = [_TAB_IN_INDENT] + ([_off_grid(width)] if width > 1 else [])
        for pattern in patterns:
            for match in pattern.finditer(source.text, begin, end):
                suspects.setdefault(source.row_of(match.start()), None)
        if guide.indent == "spaces":
            for opener_row, opener_indent, row in layout.over_indented_blocks(width, lo, hi):
                if layout.structural(opener_row):
                    suspects[row] = opener_indent
        for row in sorted(suspects):
            line = source.lines[row].rstrip("\r")
            exempt = guide.indent_exemption is not None and guide.indent_exemption.match(line)
            if row in layout.inside or not line.strip() or exempt:
                continue
            self.check_indent(row, line, layout.structural(row), suspects[row])

    def check_indent(self, row: int, line: str, structural: bool, opener_indent: int | None) -> None:
        guide = self.guide
        lead = line[:len(line) - len(line.lstrip(" \t"))]
        width = guide.indent_width
        columns = len(lead.expandtabs(width))
        begin = self.source.offset(row, 0)
        if guide.indent == "spaces" and "\t" in lead:
            self.add_on_line(row, lead.index("\t"), len(lead), "indent-char", "indent with spaces, not tabs",
                             Edit(begin, begin + len(lead), " " * columns))
        elif guide.indent == "tabs":
            if (structural and " " in lead) or " \t" in lead:
                tabs = "\t" * (columns // width) + " " * (columns % width)
                self.add_on_line(row, lead.index(" "), len(lead), "indent-char", "indent with tabs, not spaces",
                                 Edit(begin, begin + len(lead), tabs))
        elif not structural:
            return
        elif columns % width:
            self.add_on_line(row, 0, len(lead), "indent-width", f"indentation of {columns} is not a multiple of {width}")
        elif opener_indent is not None and columns > opener_indent + width:
            self.add_on_line(row, 0, len(lead), "indent-width", f"block indented by {columns - opener_indent}, not {width}")


_TAB = re.compile(r"\t")
_TRAILING_WHITESPACE = re.compile(r"[ \t]+\r?$", re.MULTILINE)
_TAB_IN_INDENT = re.compile(r"^ *\t", re.MULTILINE)
_SPACE_IN_INDENT = re.compile(r"^\t* ", re.MULTILINE)


@cache
def _long_line(limit: int) -> re.Pattern[str]:
    return re.compile(rf"^[^\n]{{{limit + 1},}}", re.MULTILINE)


@cache
def _off_grid(width: int) -> re.Pattern[str]:
    """Lines indented by spaces that are not a multiple of `width`."""
    return re.compile(rf"^(?: {{{width}}})* {{1,{width - 1}}}(?=\S)", re.MULTILINE)


def rows_inside_literals(text: str, language: str) -> set[int]:
    """The 0-based rows of `text` that begin inside a multi-line string or comment."""
    if syntax_of(language) is None:
        return set()
    source = Source(text, language)
    _, literals_query = queries(language)
    return literal_rows(_captures(literals_query, source.tree.root_node, None))[0]


def collect_issues(text: str, language: str, guide: StyleGuide, rows: tuple[int, int] | None = None) -> list[Issue]:
    """Every broken rule (with its safe fix, if any); `rows` (0-based, inclusive) limits where to look."""
    if syntax_of(language) is None:
        return []  # no grammar-aware rules for this language
    source = Source(text, language)
    checker = _Checker(source, language, guide, rows)
    everything, _ = queries(language)
    # From the top even for a few rows: strings and brackets above them decide what they are.
    captures = _captures(everything, source.tree.root_node, rows, whole_from_start=True)
    literals = {name: captures.pop(name, []) for name in LITERAL_CAPTURES}
    checker.check_lines(literals)
    checker.check_quotes(literals.get("string", []))
    checker.check_symbols(captures)
    return sorted(checker.issues, key=lambda issue: issue.finding)


def check_text(text: str, language: str, guide: StyleGuide) -> list[Finding]:
    """Every place where `text` (in `language`) breaks the guide, in order."""
    return [issue.finding for issue in collect_issues(text, language, guide)]
