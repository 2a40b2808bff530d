"""Rust: `use` paths with `crate`/`super`, `mod.rs`, `pub` items, doc comments `///`."""

from __future__ import annotations

import posixpath

from osslsp.languages.base import IndexRules, Language, Node, Resolver, StubRules, StyleSyntax


def _resolve(resolver: Resolver, importer: str, module: str, level: int) -> list[str]:
    """`a::b` anywhere in the crate (nearest first); `super::a` from the importer's parent."""
    parts = tuple(part for part in module.split("::") if part not in ("crate", "self"))
    supers = 0
    while parts and parts[0] == "super":
        supers, parts = supers + 1, parts[1:]
    if not supers:
        return resolver.nearest(parts, importer)
    base = posixpath.dirname(importer)
    for _ in range(supers - 1):
        base = posixpath.dirname(base)
    return resolver.exact(tuple(part for part in base.split("/") if part) + parts)


def _is_public(node: Node, name: str) -> bool:
    """`pub` items, except a trait impl's methods (documented on the trait)."""
    if node.type == "function_item" and node.parent is not None and node.parent.parent is not None \
            and node.parent.parent.type == "impl_item" \
            and node.parent.parent.child_by_field_name("trait") is not None:
        return False
    # `pub(crate)` and the like are not the crate's public API.
    return any(child.type == "visibility_modifier" and child.text == b"pub" for child in node.children)


def _refine(kind: str, node: Node) -> str | None:
    if kind == "function":
        item = node.parent
        container = item.parent.parent if item.parent is not None else None
        if container is not None and container.type in ("impl_item", "trait_item"):
            return "method"
        return "function"
    return kind


INDEX = IndexRules(
    definitions={"function_item": "function", "function_signature_item": "function",
                 "struct_item": "type", "enum_item": "type", "union_item": "type",
                 "trait_item": "type", "type_item": "type", "const_item": "constant",
                 "static_item": "constant", "macro_definition": "function", "mod_item": "module",
                 "impl_item": "impl"},
    scopes=frozenset({"impl_item", "trait_item", "mod_item"}),
    transparent=frozenset({"declaration_list"}),
    imports=frozenset({"use_declaration"}),
    import_query="""
    (use_declaration argument: (scoped_identifier path: (_) @module name: (identifier) @name))
    (use_declaration argument: (use_as_clause
        path: (scoped_identifier path: (_) @module name: (identifier) @name) alias: (identifier) @alias))
    (scoped_use_list path: (_) @module list: (use_list (identifier) @name))
    (scoped_use_list path: (_) @module list: (use_list (use_as_clause path: (identifier) @name
        alias: (identifier) @alias)))
    (use_declaration argument: (scoped_use_list path: (_) @module list: (use_list (self) @wildcard)))
    """,
    comment_types=frozenset({"line_comment", "block_comment", "attribute_item"}),
    name_fields={"impl_item": "type"},  # `impl<T> Stack<T>` names Stack
    keywords=frozenset("fn struct enum impl trait pub use mod let mut self Self return if else "
                       "match for while loop crate super where as ref true false Some None Ok "
                       "Err".split()),
)

STYLE = StyleSyntax(
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
    refine=_refine,
    refinements={"function": ("function", "method")},
    needs_docs=_is_public,
    skipped_above=frozenset({"attribute_item"}),
)

RUST = Language(
    name="rust",
    suffixes=(".rs",),
    grammar_module="tree_sitter_rust",
    index=INDEX,
    resolve_import=_resolve,
    package_stems=frozenset({"mod"}),
    style=STYLE,
    default_guide="rust",
    constructors=frozenset({"new"}),
    stubs=StubRules(functions=frozenset({"function_item"}), classes=frozenset({"impl_item", "trait_item"}),
                    skipped_above=frozenset({"attribute_item"}),
                    placeholder=r"(todo|unimplemented)!\s*\(.*\)\s*;?"),
)
LANGUAGES = (RUST,)
