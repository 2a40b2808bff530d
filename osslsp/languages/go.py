"""Go: packages are directories, methods belong to their receiver, capitals export, gofmt."""

from __future__ import annotations

from osslsp.languages.base import IndexRules, Language, Node, Resolver, StubRules, StyleSyntax


def _resolve(resolver: Resolver, importer: str, module: str, level: int) -> list[str]:
    """An import path names a directory: the longest suffix present in the workspace wins."""
    return resolver.directory(tuple(module.split("/")))


def _is_public(node: Node, name: str) -> bool:
    return name[:1].isupper()


INDEX = IndexRules(
    definitions={"function_declaration": "function", "method_declaration": "method",
                 "type_spec": "type", "type_alias": "type", "const_spec": "constant",
                 "var_spec": "constant", "method_elem": "method"},
    scopes=frozenset({"type_spec"}),
    transparent=frozenset({"type_declaration", "const_declaration", "var_declaration",
                           "interface_type", "var_spec_list"}),
    prefix_wrappers=frozenset({"type_declaration"}),
    imports=frozenset({"import_declaration"}),
    import_query="""
    (import_spec name: (_)? @alias
        path: (interpreted_string_literal (interpreted_string_literal_content) @module))
    """,
    keywords=frozenset("func type struct interface return if else for range var const package "
                       "import go defer chan map nil true false err".split()),
    receiver_scoped=frozenset({"method_declaration"}),
    binds="last",
)

STYLE = StyleSyntax(
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
    needs_docs=_is_public,
)

GO = Language(
    name="go",
    suffixes=(".go",),
    grammar_module="tree_sitter_go",
    aliases=("golang",),
    index=INDEX,
    resolve_import=_resolve,
    style=STYLE,
    default_guide="go",
    constructors=frozenset({"New"}),
    stubs=StubRules(functions=frozenset({"function_declaration", "method_declaration"}),
                    placeholder=r"panic\(.*(?i:implement|todo).*\)",
                    statement_lists=frozenset({"statement_list"})),
)
LANGUAGES = (GO,)
