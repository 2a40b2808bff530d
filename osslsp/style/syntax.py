"""What each language's code looks like to the style checker: tree-sitter queries and small rules.

One `LanguageSyntax` per grammar. Its `symbols` query names every definition the naming rules see
(`name.<kind>`), the declarations that may need documentation (`def.<kind>`) and the imports the
import rules look at; its `literals` query finds strings and comments, which the layout rules must
not read as code. `refine` turns a raw capture kind into the kind a guide names, where the syntax
alone cannot tell (a Python `def` inside a class is a method).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cache

import tree_sitter

from osslsp.languages import grammar

Node = tree_sitter.Node


@dataclass(frozen=True)
class LanguageSyntax:
    """The grammar-specific half of the checker for one language."""

    symbols: str  # query source: @name.<kind>, @def.<kind>, @import.wildcard, @import.multiple
    literals: str  # query source: @string (quote-checked), @comment, @literal (other text)
    kinds: tuple[str, ...]  # the naming kinds a guide may set for this language
    doc_markers: tuple[str, ...]  # how a doc comment starts; empty for Python docstrings
    block_opener: bytes = b"{"  # the last character of a line that opens an indented block
    continuation_brackets: bytes = b"(["  # brackets inside which lines are continuation lines
    refine: Callable[[str, Node], str | None] = lambda kind, node: kind
    refinements: dict[str, tuple[str, ...]] = field(default_factory=dict)  # capture kind -> kinds `refine` may give


def _text(node: Node | None) -> str:
    return node.text.decode("utf-8", "replace") if node is not None and node.text else ""


# --- Python -------------------------------------------------------------------------------------

_PY_TRANSPARENT = {"block", "if_statement", "elif_clause", "else_clause", "try_statement",
                   "except_clause", "finally_clause", "with_statement", "for_statement",
                   "while_statement", "decorated_definition", "expression_statement"}


def python_scope(node: Node) -> str:
    """What a Python statement belongs to: 'module', 'class_definition' or 'function_definition'."""
    parent = node.parent
    while parent is not None and parent.type in _PY_TRANSPARENT:
        parent = parent.parent
    return "module" if parent is None else parent.type


def _python_refine(kind: str, node: Node) -> str | None:
    if kind == "function":
        return "method" if python_scope(node.parent) == "class_definition" else "function"
    if kind == "variable":
        scope = python_scope(node.parent)
        return {"module": "module_variable", "class_definition": "class_attribute"}.get(scope, "variable")
    return kind


PYTHON = LanguageSyntax(
    symbols="""
(function_definition name: (identifier) @name.function) @def.function
(class_definition name: (identifier) @name.class) @def.class
(parameters (identifier) @name.parameter)
(parameters (typed_parameter (identifier) @name.parameter))
(parameters (default_parameter name: (identifier) @name.parameter))
(parameters (typed_default_parameter name: (identifier) @name.parameter))
(parameters (list_splat_pattern (identifier) @name.parameter))
(parameters (dictionary_splat_pattern (identifier) @name.parameter))
(parameters (typed_parameter (list_splat_pattern (identifier) @name.parameter)))
(parameters (typed_parameter (dictionary_splat_pattern (identifier) @name.parameter)))
(expression_statement (assignment left: (identifier) @name.variable))
(wildcard_import) @import.wildcard
(import_statement) @import.multiple
""",
    literals="(string) @string (comment) @comment",
    kinds=("function", "method", "class", "parameter", "variable", "module_variable", "class_attribute"),
    block_opener=b":",
    continuation_brackets=b"([{",
    doc_markers=(),
    refine=lambda kind, node: _python_refine(kind, node),
    refinements={"function": ("function", "method"),
                 "variable": ("variable", "module_variable", "class_attribute")},
)

# --- JavaScript / TypeScript --------------------------------------------------------------------

_JS_FUNCTION_VALUES = {"arrow_function", "function_expression", "function", "generator_function"}


def _js_refine(kind: str, node: Node) -> str | None:
    if kind == "variable":
        value = node.parent.child_by_field_name("value") if node.parent else None
        if value is not None and value.type in _JS_FUNCTION_VALUES:
            return "function"
    return kind


_JS_COMMON = """
(function_declaration name: (identifier) @name.function) @def.function
(generator_function_declaration name: (identifier) @name.function) @def.function
(method_definition name: (property_identifier) @name.method) @def.method
(variable_declarator name: (identifier) @name.variable)
"""

JAVASCRIPT = LanguageSyntax(
    symbols=_JS_COMMON + """
(class_declaration name: (identifier) @name.class) @def.class
(formal_parameters (identifier) @name.parameter)
(formal_parameters (assignment_pattern left: (identifier) @name.parameter))
(formal_parameters (rest_pattern (identifier) @name.parameter))
""",
    literals="(string) @string (template_string) @literal (comment) @comment (regex) @literal",
    kinds=("function", "method", "class", "parameter", "variable"),
    doc_markers=("/**",),
    refine=_js_refine,
    refinements={"variable": ("variable", "function")},
)

TYPESCRIPT = replace(
    JAVASCRIPT,
    symbols=_JS_COMMON + """
(class_declaration name: (type_identifier) @name.class) @def.class
(abstract_class_declaration name: (type_identifier) @name.class) @def.class
(interface_declaration name: (type_identifier) @name.type) @def.class
(type_alias_declaration name: (type_identifier) @name.type)
(enum_declaration name: (identifier) @name.type)
(required_parameter pattern: (identifier) @name.parameter)
(optional_parameter pattern: (identifier) @name.parameter)
(required_parameter pattern: (rest_pattern (identifier) @name.parameter))
""",
    kinds=("function", "method", "class", "type", "parameter", "variable"),
)

# --- Go -----------------------------------------------------------------------------------------

GO = LanguageSyntax(
    symbols="""
(function_declaration name: (identifier) @name.function) @def.function
(method_declaration name: (field_identifier) @name.method) @def.method
(type_declaration (type_spec name: (type_identifier) @name.type)) @def.class
(const_spec name: (identifier) @name.constant)
(var_spec name: (identifier) @name.variable)
(short_var_declaration left: (expression_list (identifier) @name.variable))
(parameter_declaration name: (identifier) @name.parameter)
(field_declaration name: (field_identifier) @name.field)
(import_spec name: (dot)) @import.wildcard
""",
    literals="""(interpreted_string_literal) @literal (raw_string_literal) @literal
(rune_literal) @literal (comment) @comment""",
    kinds=("function", "method", "type", "constant", "variable", "parameter", "field"),
    doc_markers=("//", "/*"),
)

# --- Rust ---------------------------------------------------------------------------------------


def _rust_refine(kind: str, node: Node) -> str | None:
    if kind == "function":
        item = node.parent
        container = item.parent.parent if item.parent is not None else None
        if container is not None and container.type in ("impl_item", "trait_item"):
            return "method"
        return "function"
    return kind


RUST = LanguageSyntax(
    symbols="""
(function_item name: (identifier) @name.function) @def.function
(function_signature_item name: (identifier) @name.function)
(struct_item name: (type_identifier) @name.type) @def.class
(enum_item name: (type_identifier) @name.type) @def.class
(trait_item name: (type_identifier) @name.type) @def.class
(union_item name: (type_identifier) @name.type) @def.class
(type_item name: (type_identifier) @name.type)
(type_parameter name: (type_identifier) @name.type)
(enum_variant name: (identifier) @name.enum_variant)
(const_item name: (identifier) @name.constant)
(static_item name: (identifier) @name.constant)
(let_declaration pattern: (identifier) @name.variable)
(parameter pattern: (identifier) @name.parameter)
(field_declaration name: (field_identifier) @name.field)
(mod_item name: (identifier) @name.module)
(macro_definition name: (identifier) @name.macro)
(use_wildcard) @import.wildcard
""",
    literals="""(string_literal) @literal (raw_string_literal) @literal (char_literal) @literal
(line_comment) @comment (block_comment) @comment""",
    kinds=("function", "method", "type", "enum_variant", "constant", "variable", "parameter",
           "field", "module", "macro"),
    doc_markers=("///", "/**"),
    refine=_rust_refine,
    refinements={"function": ("function", "method")},
)

# --- Java ---------------------------------------------------------------------------------------

_JAVA_SIMPLE_TYPES = {"integral_type", "floating_point_type", "boolean_type"}


def _java_refine(kind: str, node: Node) -> str | None:
    if kind != "field":
        return kind
    declaration = node.parent.parent if node.parent is not None else None
    if declaration is None:
        return kind
    modifiers = next((child for child in declaration.children if child.type == "modifiers"), None)
    words = set(_text(modifiers).split()) if modifiers is not None else set()
    if {"static", "final"} <= words:
        type_node = declaration.child_by_field_name("type")
        simple = type_node is not None and (type_node.type in _JAVA_SIMPLE_TYPES or _text(type_node) == "String")
        # Google: a static final field is a constant when its value is deeply immutable; for a
        # primitive or String that is certain, for other types only the author knows.
        return "constant" if simple else "static_final"
    return kind


JAVA = LanguageSyntax(
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
    refine=_java_refine,
    refinements={"field": ("field", "constant", "static_final")},
)

# --- C++ ----------------------------------------------------------------------------------------

_CPP_NAMESPACE_SCOPES = {"translation_unit", "declaration_list"}


def _cpp_is_const(declaration: Node) -> bool:
    return any(child.type == "type_qualifier" and _text(child) in ("const", "constexpr", "constinit")
               for child in declaration.children)


def _cpp_refine(kind: str, node: Node) -> str | None:
    if kind == "variable":
        declaration = node.parent if node.parent.type == "declaration" else node.parent.parent
        if _cpp_is_const(declaration):
            # Google: a `k` name for constants of static storage; a local const may be either.
            return "constant" if declaration.parent.type in _CPP_NAMESPACE_SCOPES else None
        return kind
    if kind == "field":
        declaration = node.parent
        if _cpp_is_const(declaration):
            return "constant"
        owner = declaration.parent.parent if declaration.parent is not None else None
        return "class_member" if owner is not None and owner.type == "class_specifier" else "struct_member"
    return kind


CPP = LanguageSyntax(
    symbols="""
(function_definition declarator: (function_declarator declarator: (identifier) @name.function))
(declaration declarator: (function_declarator declarator: (identifier) @name.function))
(declaration declarator: (pointer_declarator declarator: (function_declarator declarator: (identifier) @name.function)))
(function_definition declarator: (function_declarator declarator: (field_identifier) @name.method))
(field_declaration declarator: (function_declarator declarator: (field_identifier) @name.method))
(function_definition declarator: (function_declarator declarator: (qualified_identifier name: (identifier) @name.method)))
(class_specifier name: (type_identifier) @name.type body: (field_declaration_list))
(struct_specifier name: (type_identifier) @name.type body: (field_declaration_list))
(enum_specifier name: (type_identifier) @name.type body: (enumerator_list))
(alias_declaration name: (type_identifier) @name.type)
(type_definition declarator: (type_identifier) @name.type)
(enumerator name: (identifier) @name.enumerator)
(declaration declarator: (init_declarator declarator: (identifier) @name.variable))
(declaration declarator: (identifier) @name.variable)
(field_declaration declarator: (field_identifier) @name.field)
(parameter_declaration declarator: (identifier) @name.parameter)
(parameter_declaration declarator: (reference_declarator (identifier) @name.parameter))
(parameter_declaration declarator: (pointer_declarator declarator: (identifier) @name.parameter))
(namespace_definition name: (namespace_identifier) @name.namespace)
(preproc_def name: (identifier) @name.macro)
(preproc_function_def name: (identifier) @name.macro)
(using_declaration "namespace") @import.wildcard
""",
    literals="""(string_literal) @literal (raw_string_literal) @literal (char_literal) @literal
(comment) @comment""",
    kinds=("function", "method", "type", "enumerator", "constant", "variable", "class_member",
           "struct_member", "parameter", "namespace", "macro"),
    doc_markers=("///", "/**", "//"),
    refine=_cpp_refine,
    refinements={"variable": ("variable", "constant"), "field": ("class_member", "struct_member", "constant")},
)

SYNTAXES: dict[str, LanguageSyntax] = {
    "python": PYTHON, "javascript": JAVASCRIPT, "typescript": TYPESCRIPT,
    "typescriptreact": TYPESCRIPT, "go": GO, "rust": RUST, "java": JAVA, "cpp": CPP,
}


LITERAL_CAPTURES = ("string", "comment", "literal")


@cache
def queries(language: str) -> tuple[tree_sitter.Query, tree_sitter.Query]:
    """The compiled queries of a language: (symbols and literals in one, literals alone)."""
    syntax = SYNTAXES[language]
    return (tree_sitter.Query(grammar(language), syntax.symbols + syntax.literals),
            tree_sitter.Query(grammar(language), syntax.literals))
