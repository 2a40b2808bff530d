"""TypeScript and TSX: JavaScript's index, stubs and imports; its own names for types."""

from __future__ import annotations

from dataclasses import replace

from osslsp.languages.javascript import COMMON_SYMBOLS, JAVASCRIPT

STYLE = replace(
    JAVASCRIPT.style,
    symbols=COMMON_SYMBOLS + """
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

TYPESCRIPT = replace(JAVASCRIPT, name="typescript", suffixes=(".ts", ".mts", ".cts"),
                     grammar_module="tree_sitter_typescript", grammar_function="language_typescript",
                     aliases=("ts",), compound_suffixes=(".d.ts", ".d.mts", ".d.cts"),
                     style=STYLE, guide_tables=())
TYPESCRIPTREACT = replace(TYPESCRIPT, name="typescriptreact", suffixes=(".tsx",),
                          grammar_function="language_tsx", aliases=("tsx",),
                          guide_tables=("typescriptreact", "typescript"))


LANGUAGES = (TYPESCRIPT, TYPESCRIPTREACT)
