"""Ruby: `require`/`require_relative` paths, `def ... end`, `#` doc comments, the Ruby Style Guide."""

from __future__ import annotations

from osslsp.languages.base import IndexRules, Language, Node, StubRules, StyleSyntax, leading_quote
from osslsp.languages.rules import file_paths

_VISIBILITY = {b"private": False, b"protected": False, b"public": True}


def _is_public(node: Node, name: str) -> bool:
    """Public unless `private`/`protected` (bare, above it in its body, or around it)."""
    call = node.parent.parent if node.parent is not None and node.parent.type == "argument_list" else None
    if call is not None and call.type == "call":  # `private def helper`
        method = call.child_by_field_name("method")
        return _VISIBILITY.get(method.text if method is not None else b"", True)
    sibling = node.prev_named_sibling
    while sibling is not None:
        if sibling.type == "identifier" and sibling.text in _VISIBILITY:
            return _VISIBILITY[sibling.text]
        sibling = sibling.prev_named_sibling
    return True


def _needs_docs(node: Node, name: str) -> bool:
    """Public methods, and classes and modules that hold more than classes, modules and
    constants (RuboCop's Style/Documentation leaves namespaces alone)."""
    if node.type in ("class", "module"):
        body = node.child_by_field_name("body")
        return body is None or not all(_declares_a_constant(child) for child in body.named_children)
    return _is_public(node, name)


def _declares_a_constant(node: Node) -> bool:
    if node.type in ("class", "module", "comment"):
        return True
    left = node.child_by_field_name("left") if node.type == "assignment" else None
    return left is not None and left.type == "constant"


def _quote_of(node: Node) -> str:
    """The quote of a plain string; "" for `%q()` forms and for strings whose quotes change their
    meaning (interpolation and escapes work only inside double quotes)."""
    if any(child.type in ("interpolation", "escape_sequence") for child in node.children):
        return ""
    return leading_quote(node)


INDEX = IndexRules(
    definitions={"method": "function", "singleton_method": "function", "class": "class",
                 "module": "namespace", "assignment": "constant"},
    scopes=frozenset({"class", "module"}),
    transparent=frozenset({"body_statement"}),
    imports=frozenset({"call"}),
    import_query="""
    (call method: (identifier) @_require arguments: (argument_list . (string (string_content) @module))
        (#eq? @_require "require"))
    (call method: (identifier) @relative arguments: (argument_list . (string (string_content) @module))
        (#eq? @relative "require_relative"))
    """,
    keywords=frozenset("def end class module self nil true false if elsif else unless while until "
                       "case when then do return yield begin rescue ensure raise new require "
                       "require_relative attr_reader attr_writer attr_accessor private protected "
                       "public puts include extend super lambda proc".split()),
    name_types=frozenset({"identifier", "constant"}),
    qualified_types=frozenset({"scope_resolution"}),
    name_fields={"assignment": "left"},
)

STYLE = StyleSyntax(
    symbols="""
(method name: [(identifier) (constant)] @name.method) @def.method
(singleton_method name: [(identifier) (constant)] @name.method) @def.method
(class name: (constant) @name.class) @def.class
(module name: (constant) @name.module) @def.class
(assignment left: (constant) @name.constant)
(assignment left: (identifier) @name.variable)
(method_parameters (identifier) @name.parameter)
(method_parameters (optional_parameter name: (identifier) @name.parameter))
(method_parameters (keyword_parameter name: (identifier) @name.parameter))
""",
    literals="""(string) @string (heredoc_body) @literal (regex) @literal (subshell) @literal
(comment) @comment""",
    kinds=("method", "class", "module", "constant", "variable", "parameter"),
    doc_markers=("#",),
    continuation_brackets=b"([{",
    needs_docs=_needs_docs,
    quote_of=_quote_of,
)

RUBY = Language(
    name="ruby",
    suffixes=(".rb", ".rake"),
    grammar_module="tree_sitter_ruby",
    aliases=("rb",),
    line_comment="#",
    index=INDEX,
    resolve_import=file_paths(local_first=False),
    style=STYLE,
    default_guide="ruby",
    constructors=frozenset({"initialize"}),
    stubs=StubRules(functions=frozenset({"method", "singleton_method"}), classes=frozenset({"class", "module"}),
                    placeholder=r"(raise|fail)\s*\(?\s*NotImplementedError\b.*", closer="end"),
)
LANGUAGES = (RUBY,)
