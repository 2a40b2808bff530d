"""C: `#include` paths from the including file first, prototypes as functions, Google-like names.

C++ (`cpp.py`) builds on these rules.
"""

from __future__ import annotations

from osslsp.languages.base import IndexRules, Language, Node, StubRules, StyleSyntax
from osslsp.languages.rules import file_paths

KEYWORDS = frozenset(
    "if else for while do switch case default break continue return goto sizeof struct union enum "
    "typedef static const volatile extern inline void int char short long float double unsigned "
    "signed bool true false NULL nullptr new delete this class public private protected template "
    "typename namespace using virtual override final auto".split())

INDEX = IndexRules(
    definitions={"function_definition": "function", "declaration": "function",
                 "type_definition": "type", "struct_specifier": "type", "enum_specifier": "type",
                 "union_specifier": "type", "preproc_def": "constant",
                 "preproc_function_def": "function"},
    transparent=frozenset({"preproc_ifdef", "preproc_if", "preproc_else", "preproc_elif",
                           "linkage_specification", "declaration_list"}),
    imports=frozenset({"preproc_include"}),
    import_query="""
    (preproc_include path: (string_literal (string_content) @module))
    (preproc_include path: (system_lib_string) @module)
    """,
    keywords=KEYWORDS,
    prototypes=frozenset({"declaration"}),
    body_required=frozenset({"struct_specifier", "enum_specifier", "union_specifier"}),
)

# --- style --------------------------------------------------------------------------------------

_NAMESPACE_SCOPES = {"translation_unit", "declaration_list"}


def _text(node: Node) -> str:
    return (node.text or b"").decode("utf-8", "replace")


def _is_const(declaration: Node) -> bool:
    return any(child.type == "type_qualifier" and _text(child) in ("const", "constexpr", "constinit")
               for child in declaration.children)


def refine(kind: str, node: Node) -> str | None:
    """Constants among variables and fields; class members apart from struct members."""
    if kind == "variable":
        declaration = node.parent if node.parent.type == "declaration" else node.parent.parent
        if _is_const(declaration):
            # Google: a `k` name for constants of static storage; a local const may be either.
            return "constant" if declaration.parent.type in _NAMESPACE_SCOPES else None
        return kind
    if kind == "field":
        declaration = node.parent
        if _is_const(declaration):
            return "constant"
        owner = declaration.parent.parent if declaration.parent is not None else None
        return "class_member" if owner is not None and owner.type == "class_specifier" else "struct_member"
    return kind


SYMBOLS = """
(function_definition declarator: (function_declarator declarator: (identifier) @name.function))
(declaration declarator: (function_declarator declarator: (identifier) @name.function))
(declaration declarator: (pointer_declarator declarator: (function_declarator declarator: (identifier) @name.function)))
(struct_specifier name: (type_identifier) @name.type body: (field_declaration_list))
(enum_specifier name: (type_identifier) @name.type body: (enumerator_list))
(type_definition declarator: (type_identifier) @name.type)
(enumerator name: (identifier) @name.enumerator)
(declaration declarator: (init_declarator declarator: (identifier) @name.variable))
(declaration declarator: (identifier) @name.variable)
(field_declaration declarator: (field_identifier) @name.field)
(parameter_declaration declarator: (identifier) @name.parameter)
(parameter_declaration declarator: (pointer_declarator declarator: (identifier) @name.parameter))
(preproc_def name: (identifier) @name.macro)
(preproc_function_def name: (identifier) @name.macro)
"""

STYLE = StyleSyntax(
    symbols=SYMBOLS,
    literals="(string_literal) @literal (char_literal) @literal (comment) @comment",
    kinds=("function", "type", "enumerator", "constant", "variable", "struct_member", "parameter",
           "macro"),
    doc_markers=("///", "/**", "//"),
    refine=refine,
    refinements={"variable": ("variable", "constant"), "field": ("struct_member", "constant")},
)

C = Language(
    name="c",
    suffixes=(".c", ".h"),
    grammar_module="tree_sitter_c",
    index=INDEX,
    resolve_import=file_paths(local_first=True),
    style=STYLE,
    stubs=StubRules(functions=frozenset({"function_definition"}), declarations=frozenset({"declaration"})),
)
LANGUAGES = (C,)
