"""What to extract from each language's syntax tree: data, one `LanguageSpec` per language name.

The extractor walks only the parts of a tree that can hold definitions (module level, class bodies,
impl blocks, namespaces...) instead of running a query over the whole tree: on CPython's standard
library a whole-tree query costs about as much as parsing, the walk a twentieth of that. Imports are
small nodes found by the walk; a tree-sitter query on each such node takes them apart.
Adding a language is a new `LanguageSpec` row keyed by the name used in `osslsp.languages`.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class LanguageSpec:
    """How to find definitions and imports in one grammar's trees."""

    definitions: dict[str, str]  # node type -> kind of definition it introduces
    scopes: frozenset[str] = frozenset()  # definitions whose body holds members (classes, impls)
    transparent: frozenset[str] = frozenset()  # wrappers and blocks to look inside
    prefix_wrappers: frozenset[str] = frozenset()  # wrappers whose text belongs to the signature
    imports: frozenset[str] = frozenset()  # node types holding imports
    import_query: str = ""  # captures @module, and optionally @name, @alias, @wildcard
    doc_style: str = "comments"  # "docstring" (Python) or "comments" (preceding comment lines)
    comment_types: frozenset[str] = frozenset({"comment"})
    function_kinds: frozenset[str] = frozenset({"function"})  # kinds that become "method" in a scope
    keywords: frozenset[str] = field(default_factory=frozenset)  # never looked up as identifiers


_C_LIKE_KEYWORDS = frozenset(
    "if else for while do switch case default break continue return goto sizeof struct union enum "
    "typedef static const volatile extern inline void int char short long float double unsigned "
    "signed bool true false NULL nullptr new delete this class public private protected template "
    "typename namespace using virtual override final auto".split())

PYTHON = LanguageSpec(
    definitions={"function_definition": "function", "class_definition": "class",
                 "assignment": "constant", "type_alias_statement": "type"},
    scopes=frozenset({"class_definition"}),
    transparent=frozenset({"decorated_definition", "expression_statement", "block",
                           "if_statement", "else_clause", "try_statement", "except_clause",
                           "finally_clause", "with_statement"}),
    prefix_wrappers=frozenset({"decorated_definition"}),
    imports=frozenset({"import_statement", "import_from_statement"}),
    import_query="""
    (import_statement name: (dotted_name) @module)
    (import_statement name: (aliased_import name: (dotted_name) @module alias: (identifier) @alias))
    (import_from_statement module_name: (_) @module name: (dotted_name) @name)
    (import_from_statement module_name: (_) @module
        name: (aliased_import name: (dotted_name) @name alias: (identifier) @alias))
    (import_from_statement module_name: (_) @module (wildcard_import) @wildcard)
    """,
    doc_style="docstring",
    keywords=frozenset("def class return if elif else for while in not and or is None True False "
                       "import from as with try except finally raise pass lambda yield self cls "
                       "print len str int dict list set tuple isinstance super".split()),
)

_JS_DEFINITIONS = {
    "function_declaration": "function", "generator_function_declaration": "function",
    "class_declaration": "class", "method_definition": "function", "variable_declarator": "constant",
    "field_definition": "constant", "public_field_definition": "constant",
    # TypeScript
    "interface_declaration": "type", "type_alias_declaration": "type", "enum_declaration": "type",
    "abstract_class_declaration": "class", "function_signature": "function",
    "abstract_method_signature": "function", "method_signature": "function",
    "module": "namespace", "internal_module": "namespace",
}
_JS_IMPORT_QUERY = """
(import_statement (import_clause (identifier) @alias) source: (string (string_fragment) @module))
(import_statement (import_clause (named_imports (import_specifier name: (_) @name alias: (_)? @alias)))
    source: (string (string_fragment) @module))
(import_statement (import_clause (namespace_import (identifier) @alias))
    source: (string (string_fragment) @module))
(variable_declarator name: (identifier) @alias
    value: (call_expression function: (identifier) @_require
        arguments: (arguments (string (string_fragment) @module))) (#eq? @_require "require"))
"""
JAVASCRIPT = LanguageSpec(
    definitions=_JS_DEFINITIONS,
    scopes=frozenset({"class_declaration", "abstract_class_declaration", "interface_declaration",
                      "module", "internal_module", "class"}),
    transparent=frozenset({"export_statement", "lexical_declaration", "variable_declaration",
                           "class_body", "statement_block", "interface_body", "object_type",
                           "ambient_declaration", "expression_statement"}),
    prefix_wrappers=frozenset({"export_statement", "lexical_declaration", "variable_declaration"}),
    imports=frozenset({"import_statement", "lexical_declaration", "variable_declaration"}),
    import_query=_JS_IMPORT_QUERY,
    keywords=frozenset("function class return if else for while const let var new this import "
                       "export default from async await typeof instanceof true false null "
                       "undefined interface type extends implements".split()),
)

GO = LanguageSpec(
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
)

RUST = LanguageSpec(
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
    keywords=frozenset("fn struct enum impl trait pub use mod let mut self Self return if else "
                       "match for while loop crate super where as ref true false Some None Ok "
                       "Err".split()),
)

JAVA = LanguageSpec(
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
)

C = LanguageSpec(
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
    keywords=_C_LIKE_KEYWORDS,
)

CPP = LanguageSpec(
    definitions={**C.definitions, "class_specifier": "class", "namespace_definition": "namespace",
                 "field_declaration": "function", "alias_declaration": "type",
                 "concept_definition": "type"},
    scopes=frozenset({"class_specifier", "struct_specifier", "namespace_definition"}),
    transparent=C.transparent | {"template_declaration", "field_declaration_list",
                                 "access_specifier"},
    prefix_wrappers=frozenset({"template_declaration"}),
    imports=C.imports,
    import_query=C.import_query,
    keywords=_C_LIKE_KEYWORDS,
)

SPECS: dict[str, LanguageSpec] = {
    "python": PYTHON, "javascript": JAVASCRIPT, "typescript": JAVASCRIPT,
    "typescriptreact": JAVASCRIPT, "go": GO, "rust": RUST, "java": JAVA, "c": C, "cpp": CPP,
}
