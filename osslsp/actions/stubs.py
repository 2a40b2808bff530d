"""Stub detection: a function whose body is only its documentation and a placeholder.

A stub is a function (or method) that has a docstring or doc comment and no code yet: its body is
empty or holds only `pass`, `...`, `raise NotImplementedError`, `todo!()`, a "not implemented"
throw or panic, or comments. C and C++ also count a documented declaration (`int f(int);`), whose
missing body is the stub's body. Everything here is pure: tree-sitter and the standard library.

Offsets in `Stub` are string (character) offsets into the document text; tree-sitter's byte
offsets are converted once, here.
"""

from __future__ import annotations

import math
import re
import textwrap
from dataclasses import dataclass

import tree_sitter

from osslsp.languages import language_named, parser
from osslsp.languages.base import Language, StubRules, previous_sibling

Node = tree_sitter.Node

_COMMENTS = frozenset({"comment", "line_comment", "block_comment"})
_NAME_TYPES = frozenset({"identifier", "field_identifier", "property_identifier", "type_identifier",
                         "destructor_name", "operator_name", "private_property_identifier"})
_TODO_ONLY = re.compile(r"\W*(TODO|FIXME|XXX)\b\W*\w*\W*", re.IGNORECASE)
_COMMENT_MARKERS = re.compile(r"^\s*(///?!?|/\*\*?|\*/|\*(?!/)|#)\s?", re.MULTILINE)


@dataclass(frozen=True)
class Stub:
    """A function to generate: what the prompt shows of it, and the text its body replaces.

    `form` is "docstring" (Python: the body goes after the docstring), "block" (the inside of
    `{...}`) or "declaration" (C/C++: `;` becomes a body).
    """

    language: str
    name: str
    signature: str  # as written: decorators, export and modifiers included, no body
    doc: str  # the docstring or doc comment, as written
    source: str  # the whole stub as written, doc comment above it included
    enclosing: str  # the enclosing class, impl or trait as written; "" when none
    start: int  # where `source` starts
    end: int  # where `source` ends
    body_start: int  # the replaced text: [body_start, body_end)
    body_end: int
    line_indent: str  # indentation of the declaration's first line
    body_indent: str  # indentation of the body's lines; "" when the layout does not say
    form: str

    def replacement(self, body: str, unit: str) -> str:
        """The text that replaces [body_start, body_end) for a body (indented any way).

        `unit` is one level of indentation ("    ", "\\t") for code nested in the body.
        """
        indent = self.body_indent or self.line_indent + unit
        lines = reindent(body, indent, unit)
        if self.form == "docstring":
            return "\n" + lines
        if self.form == "declaration":
            return " {\n" + lines + "\n" + self.line_indent + "}"
        return "\n" + lines + "\n" + self.line_indent


class _Text:
    """A document with its UTF-8 bytes, converting tree-sitter's byte offsets to string offsets."""

    def __init__(self, text: str):
        self.text = text
        self.data = text.encode("utf-8", "surrogatepass")
        self.ascii = len(self.data) == len(text)

    def char(self, byte: int) -> int:
        return byte if self.ascii else len(self.data[:byte].decode("utf-8", "surrogatepass"))

    def byte(self, char: int) -> int:
        return char if self.ascii else len(self.text[:char].encode("utf-8", "surrogatepass"))

    def of(self, node: Node) -> str:
        return self.data[node.start_byte:node.end_byte].decode("utf-8", "replace")

    def between(self, start: int, end: int) -> str:
        return self.data[start:end].decode("utf-8", "replace")

    def line_indent(self, byte: int) -> str:
        line_start = self.data.rfind(b"\n", 0, byte) + 1
        line = self.data[line_start:byte].decode("utf-8", "replace")
        return line[:len(line) - len(line.lstrip(" \t"))]


def _stub_language(language: str) -> Language | None:
    """The language if "Generate function" knows its stubs."""
    registered = language_named(language)
    return registered if registered is not None and registered.stubs is not None else None


def supports(language: str) -> bool:
    """Whether stubs can be found in a language (an LSP language id as `osslsp.languages` names it)."""
    return _stub_language(language) is not None


def find_stub(text: str, language: str, start: int, end: int | None = None) -> Stub | None:
    """The stub the cursor (or the selection [start, end)) is on; None when it is on no stub.

    The innermost function whose extent (its doc comment above included) holds the selection
    decides: a cursor in a function that has a body gets None, even inside a stub's class.
    """
    registered = _stub_language(language)
    if registered is None:
        return None
    rules = registered.stubs
    source = _Text(text)
    tree = parser(language).parse(source.data)
    low, high = source.byte(start), source.byte(end if end is not None else start)
    innermost: tuple[int, Node, Node, list[Node]] | None = None
    for node in _functions(tree.root_node, rules):
        outer = _outer(node, rules)
        docs = _doc_comments(outer, rules)
        first = docs[0].start_byte if docs else outer.start_byte
        if first <= low and high <= outer.end_byte:
            size = outer.end_byte - first
            if innermost is None or size < innermost[0]:
                innermost = (size, node, outer, docs)
    if innermost is None:
        return None
    _, node, outer, docs = innermost
    return _stub(source, registered, node, outer, docs)


def _functions(root: Node, rules: StubRules):
    """Every function node and documentable declaration, depth first."""
    stack = [root]
    while stack:
        node = stack.pop()
        if node.type in rules.functions or (node.type in rules.declarations and _declared_function(node)):
            yield node
        stack.extend(node.named_children)


def _declared_function(node: Node) -> Node | None:
    """The function declarator of a C/C++ prototype (`int f(int);`), None for other declarations."""
    declarator = node.child_by_field_name("declarator")
    while declarator is not None and declarator.type in ("pointer_declarator", "reference_declarator"):
        declarator = declarator.child_by_field_name("declarator")
    if declarator is None or declarator.type != "function_declarator":
        return None
    if node.child_by_field_name("default_value") is not None or b"=" in (node.text or b"").split(b")")[-1]:
        return None  # `= 0`, `= default`, `= delete`: nothing to write
    return declarator


def _outer(node: Node, rules: StubRules) -> Node:
    """The node whose text is the whole declaration: `export const f = () => {}`, decorators."""
    outer = node
    while outer.parent is not None and outer.parent.type in rules.wrappers:
        if outer.parent.type == "variable_declarator" and outer.type not in rules.functions:
            break
        outer = outer.parent
    return outer


def _doc_comments(outer: Node, rules: StubRules) -> list[Node]:
    """The comments right above a declaration (attributes in between allowed), first to last."""
    comments: list[Node] = []
    expected_row = outer.start_point.row
    sibling = previous_sibling(outer)
    while sibling is not None and (sibling.type in _COMMENTS or sibling.type in rules.skipped_above):
        if sibling.end_point.row < expected_row - 1:
            break  # a blank line between: the comment is not about this declaration
        if sibling.type in _COMMENTS:
            comments.append(sibling)
        expected_row = sibling.start_point.row
        sibling = sibling.prev_named_sibling
    return comments[::-1]


def _name(node: Node, source: _Text) -> str:
    named = node.child_by_field_name("name")
    if named is None and node.parent is not None and node.parent.type == "variable_declarator":
        named = node.parent.child_by_field_name("name")
    if named is None:
        named = node.child_by_field_name("declarator")
        while named is not None and named.type not in _NAME_TYPES:
            if named.type == "qualified_identifier":
                named = named.child_by_field_name("name")
            else:
                named = named.child_by_field_name("declarator")
    return source.of(named) if named is not None else ""


def _statements(body: Node, rules: StubRules) -> list[Node]:
    """A body's statements and comments (Go wraps them in a statement_list)."""
    found = []
    for child in body.named_children:
        found.extend(child.named_children if child.type in rules.statement_lists else [child])
    return found


def _is_placeholder(node: Node, source: _Text, rules: StubRules) -> bool:
    return node.type in _COMMENTS or re.fullmatch(rules.placeholder, source.of(node).strip(), re.DOTALL) is not None


def _says_something(comments: list[str]) -> bool:
    """Whether comments hold documentation, not just a TODO marker."""
    words = _COMMENT_MARKERS.sub("", "\n".join(comments)).replace("*/", "").strip()
    return bool(words) and _TODO_ONLY.fullmatch(words) is None


def _enclosing(node: Node, rules: StubRules, source: _Text) -> str:
    parent = node.parent
    while parent is not None and parent.type not in rules.classes:
        if parent.type in rules.functions:
            return ""  # a nested function: its class is not what it belongs to
        parent = parent.parent
    return source.of(parent) if parent is not None else ""


def _closer(node: Node, rules: StubRules) -> Node | None:
    """The keyword closing a function without brackets (Ruby's `end`), if the language has one."""
    last = node.child(node.child_count - 1) if rules.closer and node.child_count else None
    return last if last is not None and last.type == rules.closer else None


def _header_end(node: Node, stop: Node) -> int:
    """Where a function's header (name, parameters) ends: its last part before `stop`."""
    end = node.start_byte
    for child in node.children:
        if child.start_byte >= stop.start_byte:
            break
        if child.is_named and child.type not in _COMMENTS:
            end = child.end_byte
    return end


def _placeholder_docs(statements: list[Node], doc_texts: list[str], source: _Text,
                      rules: StubRules) -> list[str] | None:
    """The documentation of a body that holds only placeholders and comments: the doc comment,
    else the comments inside; None when the body has code or nothing documents it."""
    if not all(_is_placeholder(statement, source, rules) for statement in statements):
        return None
    if _says_something(doc_texts):
        return doc_texts
    inside = [source.of(statement) for statement in statements if statement.type in _COMMENTS]
    return inside if _says_something(inside) else None


def _stub(source: _Text, language: Language, node: Node, outer: Node, docs: list[Node]) -> Stub | None:
    """The stub a function node is, or None when it has code (or nothing to generate from)."""
    rules = language.stubs
    doc_texts = [source.of(comment) for comment in docs]
    first = docs[0].start_byte if docs else outer.start_byte
    body = node.child_by_field_name("body")
    closer = _closer(node, rules)
    if closer is not None:  # `def f ... end`: the body lies between the header and the keyword
        doc_texts = _placeholder_docs(_statements(body, rules) if body is not None else [], doc_texts, source, rules)
        if doc_texts is None:
            return None
        body_start = _header_end(node, body or closer)
        body_end, form, body_indent = closer.start_byte, "block", ""
        signature = source.between(outer.start_byte, body_start)
    elif body is None:  # a C/C++ declaration
        declarator = _declared_function(node)
        if declarator is None or not _says_something(doc_texts):
            return None
        body_start, body_end, form, body_indent = declarator.end_byte, outer.end_byte, "declaration", ""
        signature = source.between(outer.start_byte, declarator.end_byte)
    elif body.type in rules.block_bodies or language.docstrings:
        statements = _statements(body, rules)
        if language.docstrings:
            if not statements or statements[0].type != "expression_statement" or \
                    statements[0].named_child_count != 1 or statements[0].named_children[0].type != "string":
                return None
            docstring, rest = statements[0], statements[1:]
            doc_texts = [source.of(docstring)]
            if not all(_is_placeholder(statement, source, rules) for statement in rest):
                return None
            body_start = docstring.end_byte
            body_end = rest[-1].end_byte if rest else docstring.end_byte
            form = "docstring"
            before = source.between(source.data.rfind(b"\n", 0, docstring.start_byte) + 1, docstring.start_byte)
            on_own_line = not before.strip()
            body_indent = source.line_indent(docstring.start_byte) if on_own_line else ""
        else:
            doc_texts = _placeholder_docs(statements, doc_texts, source, rules)
            if doc_texts is None:
                return None
            body_start, body_end, form, body_indent = body.start_byte + 1, body.end_byte - 1, "block", ""
        signature = source.between(outer.start_byte, body.start_byte).rstrip()
    else:
        return None  # an expression body (`=> x`): it has code
    return Stub(
        language=language.name, name=_name(node, source), signature=signature,
        doc="\n".join(doc_texts), source=source.between(first, outer.end_byte),
        enclosing=_enclosing(node, rules, source),
        start=source.char(first), end=source.char(outer.end_byte),
        body_start=source.char(body_start), body_end=source.char(body_end),
        line_indent=source.line_indent(outer.start_byte), body_indent=body_indent, form=form)


def reindent(body: str, indent: str, unit: str) -> str:
    """Body lines at `indent`, each nesting level one `unit` deeper, whatever unit the body used.

    The body's own unit is the greatest common divisor of its space indents (a tab is one level);
    when it is already `unit`, the lines keep their relative indentation exactly.
    """
    lines = textwrap.dedent(body.expandtabs(len(unit)) if unit != "\t" else body).strip("\n").split("\n")
    lines = [line.rstrip() for line in lines]
    widths = [len(line) - len(line.lstrip(" ")) for line in lines if line.strip()]
    own = math.gcd(*widths) if any(widths) else 0
    rebuilt = []
    for line in lines:
        if not line.strip():
            rebuilt.append("")
            continue
        stripped = line.lstrip(" \t")
        leading = line[:len(line) - len(stripped)]
        if unit == " " * own or own == 0:
            rebuilt.append(indent + leading + stripped)
        else:
            rebuilt.append(indent + unit * (leading.count("\t") + leading.count(" ") // own) + stripped)
    return "\n".join(rebuilt)


def body_from_answer(answer: str, stub: Stub) -> str:
    """The body in a model's answer: the closing fence, a repeated signature and docstring taken away.

    Models often write the whole function although asked for its body: when the answer parses
    to a function of the stub's name, that function's body (after any docstring) is the answer.
    """
    code = answer.split("```", 1)[0]
    language = language_named(stub.language)
    rules = language.stubs
    source = _Text(code)
    root = parser(stub.language).parse(source.data).root_node
    for node in _functions(root, rules):
        body = node.child_by_field_name("body")
        if body is None or _name(node, source) != stub.name or _outer(node, rules).parent != root:
            continue
        if rules.closer:
            return source.between(source.data.rfind(b"\n", 0, body.start_byte) + 1, body.end_byte)
        if not language.docstrings:
            return source.between(body.start_byte + 1, body.end_byte - 1)
        statements = _statements(body, rules)
        if statements and statements[0].type == "expression_statement" and \
                statements[0].named_children and statements[0].named_children[0].type == "string":
            statements = statements[1:]
        if not statements:
            return ""
        return source.between(source.data.rfind(b"\n", 0, statements[0].start_byte) + 1, body.end_byte)
    return code
