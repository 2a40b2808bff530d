"""Python: docstrings, `:` blocks, dotted and relative imports, PEP 8 by default."""

from __future__ import annotations

import posixpath
from collections.abc import Iterator

from osslsp.languages.base import IndexRules, Language, Node, Resolver, StubRules, StyleSyntax


def _resolve(resolver: Resolver, importer: str, module: str, level: int) -> list[str]:
    """`a.b` anywhere in the workspace (nearest first); `..a.b` from the importer's package."""
    parts = tuple(part for part in module.split(".") if part)
    if not level:
        return resolver.nearest(parts, importer)
    base = posixpath.dirname(importer)
    for _ in range(level - 1):
        base = posixpath.dirname(base)
    return resolver.exact(tuple(part for part in base.split("/") if part) + parts)


INDEX = IndexRules(
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
    name_fields={"assignment": "left"},
    fold_bodies=True,
    relative_prefix=".",
    binds="first",
)

# --- style --------------------------------------------------------------------------------------

_TRANSPARENT = {"block", "if_statement", "elif_clause", "else_clause", "try_statement",
                "except_clause", "finally_clause", "with_statement", "for_statement",
                "while_statement", "decorated_definition", "expression_statement"}
_SCOPES = {"class_definition": "class", "function_definition": "function"}


def scope_of(node: Node) -> str:
    """What a statement belongs to: 'module', 'class' or 'function'."""
    parent = node.parent
    while parent is not None and parent.type in _TRANSPARENT:
        parent = parent.parent
    return "module" if parent is None else _SCOPES.get(parent.type, parent.type)


def _refine(kind: str, node: Node) -> str | None:
    if kind == "function":
        return "method" if scope_of(node.parent) == "class" else "function"
    if kind == "variable":
        return {"module": "module_variable", "class": "class_attribute"}.get(scope_of(node.parent), "variable")
    return kind


def _quote_of(node: Node) -> str:
    """The quote of a one-line literal from its opening token (`f'`); "" for triple quotes."""
    first = node.children[0] if node.children else None
    quote = (first.text or b"").decode("utf-8", "replace").lstrip("rRbBuUfFtT") if first is not None else ""
    return quote if quote in ("'", '"') else ""


def _text(node: Node | None) -> str:
    return (node.text or b"").decode("utf-8", "replace") if node is not None else ""


def _unannotated(function: Node, public_only: bool) -> Iterator[tuple[Node, str]]:
    """The parameters without a type annotation and the missing return annotation of a function."""
    name_node = function.child_by_field_name("name")
    name = _text(name_node)
    if public_only and (name.startswith("_") and not name.startswith("__")
                        or scope_of(function) == "function"):
        return  # private, or a helper nested in a function
    is_method = scope_of(function) == "class"
    parameters = function.child_by_field_name("parameters")
    for index, parameter in enumerate(parameters.named_children if parameters is not None else ()):
        if parameter.type in ("typed_parameter", "typed_default_parameter", "comment",
                              "keyword_separator", "positional_separator"):
            continue
        inner = parameter.child_by_field_name("name") if parameter.type == "default_parameter" else parameter
        label = _text(inner).lstrip("*")
        if index == 0 and is_method and label in ("self", "cls"):
            continue
        yield parameter, f"parameter '{label}' of '{name}' has no type annotation"
    if function.child_by_field_name("return_type") is None and name != "__init__" and name_node is not None:
        yield name_node, f"'{name}' has no return type annotation"


STYLE = StyleSyntax(
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
    refine=_refine,
    refinements={"function": ("function", "method"),
                 "variable": ("variable", "module_variable", "class_attribute")},
    quote_of=_quote_of,
    scope_of=scope_of,
    unannotated=_unannotated,
)

PYTHON = Language(
    name="python",
    suffixes=(".py", ".pyi"),
    grammar_module="tree_sitter_python",
    aliases=("py",),
    line_comment="#",
    index=INDEX,
    resolve_import=_resolve,
    package_stems=frozenset({"__init__"}),
    style=STYLE,
    default_guide="python-pep8",
    stubs=StubRules(functions=frozenset({"function_definition"}), classes=frozenset({"class_definition"}),
                    wrappers=frozenset({"decorated_definition"}),
                    placeholder=r"pass|\.\.\.|raise\s+NotImplementedError\b(\(.*\))?"),
    body_opener=":",
    constructors=frozenset({"__init__", "__new__"}),
)
LANGUAGES = (PYTHON,)
