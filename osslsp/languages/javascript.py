"""JavaScript: ES modules and `require`, JSDoc comments, exported means public.

TypeScript (`typescript.py`) shares its index rules, stubs and import rules."""

from __future__ import annotations

from osslsp.languages.base import IndexRules, Language, Node, StubRules, StyleSyntax, leading_quote
from osslsp.languages.rules import BRACE_THROW, file_paths

INDEX = IndexRules(
    definitions={
        "function_declaration": "function", "generator_function_declaration": "function",
        "class_declaration": "class", "method_definition": "function", "variable_declarator": "constant",
        "field_definition": "constant", "public_field_definition": "constant",
        # TypeScript
        "interface_declaration": "type", "type_alias_declaration": "type", "enum_declaration": "type",
        "abstract_class_declaration": "class", "function_signature": "function",
        "abstract_method_signature": "function", "method_signature": "function",
        "module": "namespace", "internal_module": "namespace",
    },
    scopes=frozenset({"class_declaration", "abstract_class_declaration", "interface_declaration",
                      "module", "internal_module", "class"}),
    transparent=frozenset({"export_statement", "lexical_declaration", "variable_declaration",
                           "class_body", "statement_block", "interface_body", "object_type",
                           "ambient_declaration", "expression_statement"}),
    prefix_wrappers=frozenset({"export_statement", "lexical_declaration", "variable_declaration"}),
    imports=frozenset({"import_statement", "lexical_declaration", "variable_declaration"}),
    import_query="""
(import_statement (import_clause (identifier) @alias) source: (string (string_fragment) @module))
(import_statement (import_clause (named_imports (import_specifier name: (_) @name alias: (_)? @alias)))
    source: (string (string_fragment) @module))
(import_statement (import_clause (namespace_import (identifier) @alias))
    source: (string (string_fragment) @module))
(variable_declarator name: (identifier) @alias
    value: (call_expression function: (identifier) @_require
        arguments: (arguments (string (string_fragment) @module))) (#eq? @_require "require"))
""",
    keywords=frozenset("function class return if else for while const let var new this import "
                       "export default from async await typeof instanceof true false null "
                       "undefined interface type extends implements".split()),
    value_definitions=frozenset({"variable_declarator"}),
    function_values=frozenset({"arrow_function", "function_expression", "function"}),
)

STUBS = StubRules(
    functions=frozenset({"function_declaration", "generator_function_declaration", "method_definition",
                         "function_expression", "arrow_function", "function"}),
    classes=frozenset({"class_declaration", "class", "abstract_class_declaration"}),
    wrappers=frozenset({"export_statement", "lexical_declaration", "variable_declaration",
                        "variable_declarator"}),
    placeholder=BRACE_THROW,
)

# --- style --------------------------------------------------------------------------------------

_FUNCTION_VALUES = {"arrow_function", "function_expression", "function", "generator_function"}


def _refine(kind: str, node: Node) -> str | None:
    if kind == "variable":
        value = node.parent.child_by_field_name("value") if node.parent else None
        if value is not None and value.type in _FUNCTION_VALUES:
            return "function"
    return kind


def _quote_of(node: Node) -> str:
    """A string's quote character; "" in JSX attributes, which follow HTML's double quotes."""
    if node.parent is not None and node.parent.type == "jsx_attribute":
        return ""
    return leading_quote(node)


def _is_public(node: Node, name: str) -> bool:
    """A method unless private or `#name`; anything else when exported."""
    if node.type == "method_definition":
        private = any(child.type == "accessibility_modifier" and child.text != b"public"
                      for child in node.children)
        return not private and not name.startswith("#")
    return node.parent is not None and node.parent.type == "export_statement"


COMMON_SYMBOLS = """
(function_declaration name: (identifier) @name.function) @def.function
(generator_function_declaration name: (identifier) @name.function) @def.function
(method_definition name: (property_identifier) @name.method) @def.method
(variable_declarator name: (identifier) @name.variable)
"""

STYLE = StyleSyntax(
    symbols=COMMON_SYMBOLS + """
(class_declaration name: (identifier) @name.class) @def.class
(formal_parameters (identifier) @name.parameter)
(formal_parameters (assignment_pattern left: (identifier) @name.parameter))
(formal_parameters (rest_pattern (identifier) @name.parameter))
""",
    literals="(string) @string (template_string) @literal (comment) @comment (regex) @literal",
    kinds=("function", "method", "class", "parameter", "variable"),
    doc_markers=("/**",),
    refine=_refine,
    refinements={"variable": ("variable", "function")},
    needs_docs=_is_public,
    quote_of=_quote_of,
    doc_wrappers=frozenset({"export_statement"}),
    skipped_above=frozenset({"decorator"}),
)

JAVASCRIPT = Language(
    name="javascript",
    suffixes=(".js", ".mjs", ".cjs", ".jsx"),
    grammar_module="tree_sitter_javascript",
    aliases=("js", "javascriptreact"),
    index=INDEX,
    resolve_import=file_paths(local_first=False),
    package_stems=frozenset({"index"}),
    style=STYLE,
    default_guide="typescript",
    guide_tables=("javascript", "typescript"),
    stubs=STUBS,
    constructors=frozenset({"constructor"}),
)
LANGUAGES = (JAVASCRIPT,)
