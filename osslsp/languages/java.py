"""Java: dotted imports, classes as scopes, public/protected members, Google's guide."""

from __future__ import annotations

from osslsp.languages.base import IndexRules, Language, Node, StubRules, StyleSyntax
from osslsp.languages.rules import BRACE_THROW, dotted

_SIMPLE_TYPES = {"integral_type", "floating_point_type", "boolean_type"}


def _text(node: Node | None) -> str:
    return (node.text or b"").decode("utf-8", "replace") if node is not None else ""


def _modifiers(declaration: Node) -> str:
    return _text(next((child for child in declaration.children if child.type == "modifiers"), None))


def _refine(kind: str, node: Node) -> str | None:
    if kind != "field":
        return kind
    declaration = node.parent.parent if node.parent is not None else None
    if declaration is None:
        return kind
    if {"static", "final"} <= set(_modifiers(declaration).split()):
        type_node = declaration.child_by_field_name("type")
        simple = type_node is not None and (type_node.type in _SIMPLE_TYPES or _text(type_node) == "String")
        # Google: a static final field is a constant when its value is deeply immutable; for a
        # primitive or String that is certain, for other types only the author knows.
        return "constant" if simple else "static_final"
    return kind


def _is_public(node: Node, name: str) -> bool:
    """Public or protected, and not an override (documented where it is declared)."""
    modifiers = _modifiers(node)
    return "@Override" not in modifiers and bool({"public", "protected"} & set(modifiers.split()))


INDEX = IndexRules(
    definitions={"class_declaration": "class", "interface_declaration": "type",
                 "enum_declaration": "type", "record_declaration": "class",
                 "annotation_type_declaration": "type", "method_declaration": "function",
                 "constructor_declaration": "function", "field_declaration": "constant"},
    scopes=frozenset({"class_declaration", "interface_declaration", "enum_declaration",
                      "record_declaration"}),
    transparent=frozenset({"class_body", "interface_body", "enum_body",
                           "enum_body_declarations"}),
    imports=frozenset({"import_declaration"}),
    import_query="""
    (import_declaration (scoped_identifier scope: (_) @module name: (identifier) @name))
    (import_declaration (scoped_identifier) @module (asterisk) @wildcard)
    """,
    comment_types=frozenset({"line_comment", "block_comment"}),
    keywords=frozenset("class interface enum public private protected static final void int "
                       "boolean return if else for while new this super import package null "
                       "true false extends implements throws String".split()),
    binds="last",
)

STYLE = StyleSyntax(
    symbols="""
(class_declaration name: (identifier) @name.class) @def.class
(interface_declaration name: (identifier) @name.class) @def.class
(enum_declaration name: (identifier) @name.class) @def.class
(record_declaration name: (identifier) @name.class) @def.class
(annotation_type_declaration name: (identifier) @name.class) @def.class
(method_declaration name: (identifier) @name.method) @def.method
(constructor_declaration) @def.method
(enum_constant name: (identifier) @name.enum_constant)
(field_declaration declarator: (variable_declarator name: (identifier) @name.field))
(local_variable_declaration declarator: (variable_declarator name: (identifier) @name.variable))
(formal_parameter name: (identifier) @name.parameter)
(type_parameter (type_identifier) @name.type_parameter)
(import_declaration (asterisk)) @import.wildcard
""",
    literals="""(string_literal) @literal (character_literal) @literal
(line_comment) @comment (block_comment) @comment""",
    kinds=("class", "method", "enum_constant", "constant", "static_final", "field", "variable",
           "parameter", "type_parameter"),
    doc_markers=("/**",),
    refine=_refine,
    refinements={"field": ("field", "constant", "static_final")},
    needs_docs=_is_public,
)

JAVA = Language(
    name="java",
    suffixes=(".java",),
    grammar_module="tree_sitter_java",
    index=INDEX,
    resolve_import=dotted,
    style=STYLE,
    default_guide="java-google",
    stubs=StubRules(functions=frozenset({"method_declaration", "constructor_declaration"}),
                    classes=frozenset({"class_declaration", "interface_declaration", "enum_declaration",
                                       "record_declaration"}),
                    placeholder=rf"{BRACE_THROW}|throw\s+new\s+UnsupportedOperationException\(.*\)\s*;?"),
)
LANGUAGES = (JAVA,)
