"""Checking code against a guide: one tree-sitter parse, two queries, one pass over the lines.

`collect_issues` returns each broken rule as an `Issue`: the `Finding` a person reads and, where the
fix is safe (trailing whitespace, indentation characters, a quote that can be swapped without
escaping anything), the edit that repairs it. `rows` limits the work to the lines a completion
touches; the parse still covers the whole text, so scopes and brackets are seen right.
"""

from __future__ import annotations

from dataclasses import dataclass

import tree_sitter

from osslsp.languages import parser
from osslsp.style.guide import StyleGuide
from osslsp.style.syntax import SYNTAXES, LanguageSyntax, Node, python_scope, queries


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


# Inside strings and comments, brackets, colons and backslashes are text, not structure.
_MASK = bytes.maketrans(b"()[]{}:\\", b"        ")


class _Source:
    """The text, its lines and its syntax tree, with conversions between their coordinates."""

    def __init__(self, text: str, language: str) -> None:
        self.text = text
        self.lines = text.split("\n")
        self.data = text.encode("utf-8", "surrogatepass")
        self.tree = parser(language).parse(self.data)
        self._line_offsets: list[int] | None = None

    def char_col(self, row: int, byte_col: int) -> int:
        """The 0-based character column of a byte column."""
        line = self.lines[row] if row < len(self.lines) else ""
        if line.isascii():
            return byte_col
        return len(line.encode("utf-8", "surrogatepass")[:byte_col].decode("utf-8", "replace"))

    def offset(self, row: int, col: int) -> int:
        """The character offset of a (row, character column) position."""
        if self._line_offsets is None:
            offsets, total = [], 0
            for line in self.lines:
                offsets.append(total)
                total += len(line) + 1
            self._line_offsets = offsets
        return self._line_offsets[row] + col

    def point_offset(self, point: tree_sitter.Point) -> int:
        return self.offset(point.row, self.char_col(point.row, point.column))

    @staticmethod
    def node_text(node: Node | None) -> str:
        return node.text.decode("utf-8", "replace") if node is not None and node.text else ""


def _captures(query: tree_sitter.Query, root: Node, rows: tuple[int, int] | None,
              whole_from_start: bool = False) -> dict[str, list[Node]]:
    cursor = tree_sitter.QueryCursor(query)
    if rows is not None:
        start = (0, 0) if whole_from_start else (rows[0], 0)
        cursor.set_point_range(start, (rows[1] + 1, 0))
    return cursor.captures(root)


class _Checker:
    """Runs every rule of one guide over one source."""

    def __init__(self, source: _Source, language: str, guide: StyleGuide,
                 rows: tuple[int, int] | None) -> None:
        self.source = source
        self.language = language
        self.syntax: LanguageSyntax = SYNTAXES[language]
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

    def check_symbols(self) -> None:
        symbols_query, _ = queries(self.language)
        for capture, nodes in _captures(symbols_query, self.source.tree.root_node, self.rows).items():
            group, _, kind = capture.partition(".")
            for node in nodes:
                if group == "name" and self.in_rows(node):
                    self.check_name(kind, node)
                elif group == "def":
                    self.check_docs(kind, node)
                    if kind == "function" and self.language == "python" and self.guide.annotations != "none":
                        self.check_annotations(node)
                elif group == "import" and self.in_rows(node):
                    self.check_import(kind, node)

    def check_name(self, kind: str, node: Node) -> None:
        refined = self.syntax.refine(kind, node)
        name = self.source.node_text(node)
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
        if self.language == "python":
            self.check_docstring(kind, node, name_node)
        elif self.in_rows(node) and self.is_public(node, name_node) and not self.follows_other_convention(
                node, name_node) and not self.has_doc_comment(node):
            # About the declaration up to its name: whoever wrote that owes the doc comment.
            self.add(node, "docs-required", f"public {kind} {self.declared_name(node, name_node)!r} "
                                            "has no doc comment above it", until=name_node)

    def check_docstring(self, kind: str, node: Node, name_node: Node | None) -> None:
        name = self.source.node_text(name_node)
        if name.startswith("_") or self.decorated_with(node, ("overload", "override")) \
                or self.follows_other_convention(node, name_node):
            return
        if kind == "function" and python_scope(node) == "function_definition":
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

    def is_public(self, node: Node, name_node: Node | None) -> bool:
        language = self.language
        name = self.declared_name(node, name_node)
        if language == "go":
            return name[:1].isupper()
        if language == "rust":
            if node.type == "function_item" and node.parent is not None and node.parent.parent is not None \
                    and node.parent.parent.type == "impl_item" \
                    and node.parent.parent.child_by_field_name("trait") is not None:
                return False  # a trait's methods are documented on the trait
            return any(child.type == "visibility_modifier" for child in node.children)
        if language == "java":
            modifiers = next((child for child in node.children if child.type == "modifiers"), None)
            words = self.source.node_text(modifiers)
            if "@Override" in words:
                return False
            return "public" in words.split() or "protected" in words.split()
        if language in ("typescript", "typescriptreact", "javascript"):
            anchor = node.parent if node.type == "method_definition" else node
            return anchor is not None and (anchor.parent is not None and anchor.parent.type == "export_statement"
                                           or node.type == "method_definition")
        return True

    def has_doc_comment(self, node: Node) -> bool:
        anchor = node
        if anchor.parent is not None and anchor.parent.type == "export_statement":
            anchor = anchor.parent
        previous = anchor.prev_sibling
        while previous is not None and previous.type in ("attribute_item", "decorator"):
            previous = previous.prev_sibling
        if previous is None or "comment" not in previous.type:
            return False
        if previous.end_point.row < anchor.start_point.row - 1:
            return False  # a blank line between: that comment is not this declaration's doc
        return self.source.node_text(previous).startswith(self.syntax.doc_markers)

    # --- Python annotations ----------------------------------------------------------------------

    def check_annotations(self, node: Node) -> None:
        name_node = node.child_by_field_name("name")
        name = self.source.node_text(name_node)
        if self.guide.annotations == "public" and (name.startswith("_") and not name.startswith("__")
                                                   or python_scope(node) == "function_definition"):
            return  # private, or a helper nested in a function
        is_method = python_scope(node) == "class_definition"
        parameters = node.child_by_field_name("parameters")
        for index, parameter in enumerate(parameters.named_children if parameters is not None else ()):
            if parameter.type in ("typed_parameter", "typed_default_parameter", "comment") \
                    or not self.in_rows(parameter) or parameter.type in ("keyword_separator", "positional_separator"):
                continue
            inner = parameter.child_by_field_name("name") if parameter.type == "default_parameter" else parameter
            label = self.source.node_text(inner).lstrip("*")
            if index == 0 and is_method and label in ("self", "cls"):
                continue
            self.add(parameter, "annotations-required", f"parameter '{label}' of '{name}' has no type annotation")
        if node.child_by_field_name("return_type") is None and name != "__init__" and name_node is not None \
                and self.in_rows(name_node):
            self.add(name_node, "annotations-required", f"'{name}' has no return type annotation")

    # --- strings ---------------------------------------------------------------------------------

    def check_quotes(self, strings: list[Node]) -> None:
        wanted = self.guide.quotes
        if wanted == "any" or not strings:
            return
        if wanted == "consistent":
            # The query hands strings over in no particular order; the file's first one sets the style.
            ordered = sorted(strings, key=lambda node: node.start_byte)
            wanted = next((quote for quote in map(self.quote_of, ordered) if quote), '"')
            wanted = "single" if wanted == "'" else "double"
        char, other = ('"', "'") if wanted == "double" else ("'", '"')
        for node in strings:
            quote = self.quote_of(node)
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

    def quote_of(self, node: Node) -> str:
        """The quote character of a plain one-line string literal; '' for others (docstrings, JSX)."""
        if node.parent is not None and node.parent.type == "jsx_attribute":
            return ""  # JSX attributes follow HTML's double quotes
        first = node.children[0] if node.children else None
        if self.language == "python":
            opening = self.source.node_text(first) if first is not None else ""
            quote = opening.lstrip("rRbBuUfFtT")
            return quote if quote in ("'", '"') else ""
        text = self.source.node_text(node)
        return text[0] if text[:1] in ("'", '"') else ""

    # --- lines -----------------------------------------------------------------------------------

    def check_lines(self, literals: dict[str, list[Node]]) -> None:
        source, syntax = self.source, self.syntax
        masked = bytearray(source.data)
        for nodes in literals.values():
            for node in nodes:
                start, end = node.start_byte, node.end_byte
                masked[start:end] = source.data[start:end].translate(_MASK)
        inside_literal, newline_in_literal = _literal_rows(literals)
        masked_lines = bytes(masked).split(b"\n")
        lo, hi = self.rows if self.rows is not None else (0, len(source.lines) - 1)
        brackets = syntax.continuation_brackets
        opens, closes = brackets, brackets.translate(bytes.maketrans(b"([{", b")]}"))
        depth = 0
        previous_indent: int | None = None
        previous_opens_block = False
        previous_continues = False
        for row in range(0, min(hi + 1, len(source.lines))):
            code = masked_lines[row]
            depth_before = depth
            for open_char, close_char in zip(opens, closes):
                depth += code.count(open_char) - code.count(close_char)
            depth = max(depth, 0)
            stripped = code.rstrip()
            structural = depth_before == 0 and not previous_continues and row not in inside_literal and bool(stripped)
            if row >= lo:
                self.check_line(row, structural, previous_indent if previous_opens_block else None,
                                row in newline_in_literal, row in inside_literal)
            if structural:
                line = source.lines[row]
                previous_indent = len(line) - len(line.lstrip(" \t"))
                previous_opens_block = stripped.endswith(syntax.block_opener)
            if stripped:
                previous_continues = syntax.block_opener == b":" and stripped.endswith(b"\\")

    def check_line(self, row: int, structural: bool, opener_indent: int | None,
                   newline_in_literal: bool, inside_literal: bool) -> None:
        guide, source = self.guide, self.source
        line = source.lines[row]
        body = line[:-1] if line.endswith("\r") else line
        if guide.max_line_length:
            width = len(body.expandtabs(guide.indent_width)) if "\t" in body else len(body)
            exempt = guide.line_length_exemption is not None and guide.line_length_exemption.search(body)
            if width > guide.max_line_length and not exempt:
                self.add_on_line(row, guide.max_line_length, len(body), "line-length",
                                 f"line longer than {guide.max_line_length} characters")
        content = body.rstrip(" \t")
        if guide.no_trailing_whitespace and len(content) < len(body) and not newline_in_literal:
            start = source.offset(row, len(content))
            self.add_on_line(row, len(content), len(body), "trailing-whitespace", "trailing whitespace",
                             Edit(start, start + len(body) - len(content), ""))
        if guide.indent and content and not inside_literal and not (
                guide.indent_exemption is not None and guide.indent_exemption.match(body)):
            self.check_indent(row, body, content, structural, opener_indent)

    def check_indent(self, row: int, body: str, content: str, structural: bool, opener_indent: int | None) -> None:
        guide = self.guide
        lead = body[:len(body) - len(body.lstrip(" \t"))]
        width = guide.indent_width
        columns = len(lead.expandtabs(width))
        begin = self.source.offset(row, 0)
        if guide.indent == "spaces" and "\t" in lead:
            self.add_on_line(row, lead.index("\t"), len(lead), "indent-char", "indent with spaces, not tabs",
                             Edit(begin, begin + len(lead), " " * columns))
            return
        if guide.indent == "tabs":
            if structural and " " in lead or " \t" in lead:
                tabs = "\t" * (columns // width) + " " * (columns % width)
                self.add_on_line(row, lead.index(" "), len(lead), "indent-char", "indent with tabs, not spaces",
                                 Edit(begin, begin + len(lead), tabs))
            return
        if not structural:
            return
        if columns % width:
            self.add_on_line(row, 0, len(lead), "indent-width", f"indentation of {columns} is not a multiple of {width}")
        elif opener_indent is not None and columns > opener_indent + width:
            self.add_on_line(row, 0, len(lead), "indent-width", f"block indented by {columns - opener_indent}, not {width}")


def _literal_rows(literals: dict[str, list[Node]]) -> tuple[set[int], set[int]]:
    """Rows whose start lies inside a string or comment, and rows whose line break does."""
    inside: set[int] = set()
    newline_inside: set[int] = set()
    for nodes in literals.values():
        for node in nodes:
            first, last = node.start_point.row, node.end_point.row
            if first != last:
                inside.update(range(first + 1, last + 1))
                newline_inside.update(range(first, last))
    return inside, newline_inside


def rows_inside_literals(text: str, language: str) -> set[int]:
    """The 0-based rows of `text` that begin inside a multi-line string or comment."""
    if language not in SYNTAXES:
        return set()
    source = _Source(text, language)
    _, literals_query = queries(language)
    return _literal_rows(_captures(literals_query, source.tree.root_node, None))[0]


def collect_issues(text: str, language: str, guide: StyleGuide, rows: tuple[int, int] | None = None) -> list[Issue]:
    """Every broken rule (with its safe fix, if any); `rows` (0-based, inclusive) limits where to look."""
    if language not in SYNTAXES:
        return []  # no grammar-aware rules for this language (C has no bundled guide)
    source = _Source(text, language)
    checker = _Checker(source, language, guide, rows)
    _, literals_query = queries(language)
    literals = _captures(literals_query, source.tree.root_node, rows, whole_from_start=True)
    checker.check_lines(literals)
    checker.check_quotes(literals.get("string", []))
    checker.check_symbols()
    return sorted(checker.issues, key=lambda issue: issue.finding)


def check_text(text: str, language: str, guide: StyleGuide) -> list[Finding]:
    """Every place where `text` (in `language`) breaks the guide, in order."""
    return [issue.finding for issue in collect_issues(text, language, guide)]
