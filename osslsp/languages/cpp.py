"""C++: C's rules plus classes, namespaces, templates and qualified names."""

from __future__ import annotations

from dataclasses import replace

from osslsp.languages.base import StubRules
from osslsp.languages.c import C, SYMBOLS
from osslsp.languages.rules import BRACE_THROW

INDEX = replace(
    C.index,
    definitions={**C.index.definitions, "class_specifier": "class", "namespace_definition": "namespace",
                 "field_declaration": "function", "alias_declaration": "type",
                 "concept_definition": "type"},
    scopes=frozenset({"class_specifier", "struct_specifier", "namespace_definition"}),
    transparent=C.index.transparent | {"template_declaration", "field_declaration_list",
                                       "access_specifier"},
    prefix_wrappers=frozenset({"template_declaration"}),
    prototypes=frozenset({"declaration", "field_declaration"}),
)

STYLE = replace(
    C.style,
    symbols=SYMBOLS + """
(function_definition declarator: (function_declarator declarator: (field_identifier) @name.method))
(field_declaration declarator: (function_declarator declarator: (field_identifier) @name.method))
(function_definition declarator: (function_declarator declarator: (qualified_identifier name: (identifier) @name.method)))
(class_specifier name: (type_identifier) @name.type body: (field_declaration_list))
(alias_declaration name: (type_identifier) @name.type)
(parameter_declaration declarator: (reference_declarator (identifier) @name.parameter))
(namespace_definition name: (namespace_identifier) @name.namespace)
(using_declaration "namespace") @import.wildcard
""",
    literals="""(string_literal) @literal (raw_string_literal) @literal (char_literal) @literal
(comment) @comment""",
    kinds=("function", "method", "type", "enumerator", "constant", "variable", "class_member",
           "struct_member", "parameter", "namespace", "macro"),
    refinements={"variable": ("variable", "constant"), "field": ("class_member", "struct_member", "constant")},
)

CPP = replace(
    C,
    name="cpp",
    suffixes=(".cc", ".cpp", ".cxx", ".hpp", ".hh", ".hxx"),
    grammar_module="tree_sitter_cpp",
    aliases=("c++",),
    index=INDEX,
    style=STYLE,
    default_guide="cpp",
    stubs=StubRules(functions=frozenset({"function_definition"}),
                    classes=frozenset({"class_specifier", "struct_specifier"}),
                    declarations=frozenset({"declaration", "field_declaration"}),
                    wrappers=frozenset({"template_declaration"}), placeholder=BRACE_THROW),
)
LANGUAGES = (CPP,)
