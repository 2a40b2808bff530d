"""The package's import graph: no cycles, and pygls and torch only where the layering allows them.

The graph is read from the source with `ast` (nothing is imported): an edge for each import that runs
when a module is loaded (at module level, in classes, in `try` and `if` blocks, but not in functions
and not under `if TYPE_CHECKING:`). Importing `a.b.c` also runs the packages `a.b` and `a`, so those
are edges too, except the packages the importer is itself inside (they are loaded before it).
Imports inside functions make a second graph: a cycle there is no error at load time, but it is a
knot all the same (two modules that cannot be read or changed apart).
"""

from __future__ import annotations

import ast
from pathlib import Path

import osslsp

PACKAGE = Path(osslsp.__file__).parent


def module_names() -> dict[str, Path]:
    """Every module of osslsp by dotted name (a package by its own name), with its file."""
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = ("osslsp", *path.relative_to(PACKAGE).with_suffix("").parts)
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def all_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement, those in functions too (but not under `if TYPE_CHECKING:`)."""
    hidden = {id(node) for top in ast.walk(tree) if isinstance(top, ast.If) and _is_type_checking(top)
              for statement in top.body for node in ast.walk(statement)}
    return [node for node in ast.walk(tree)
            if isinstance(node, (ast.Import, ast.ImportFrom)) and id(node) not in hidden]


def load_time_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """The import statements that run when the module is loaded."""
    found, pending = [], list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        elif isinstance(node, ast.If) and _is_type_checking(node):
            pending.extend(node.orelse)
        else:
            pending.extend(child for child in ast.iter_child_nodes(node) if isinstance(child, ast.stmt))
    return found


def imported_names(module: str, is_package: bool, node: ast.Import | ast.ImportFrom) -> list[str]:
    """The dotted names an import statement loads (absolute; `from x import y` gives x and x.y)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        anchor = module.split(".") if is_package else module.split(".")[:-1]
        anchor = anchor[:len(anchor) - (node.level - 1)]
        base = ".".join([*anchor, base] if base else anchor)
    return [base, *(f"{base}.{alias.name}" for alias in node.names)]


def import_graph(deferred: bool = False) -> dict[str, set[str]]:
    """Each osslsp module and the osslsp modules loading it runs (`deferred`: or its functions import)."""
    modules = module_names()
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        is_package = path.name == "__init__.py"
        inside = {".".join(module.split(".")[:n]) for n in range(1, module.count(".") + 2)}
        targets = set()
        tree = ast.parse(path.read_text(), str(path))
        for node in (all_imports(tree) if deferred else load_time_imports(tree)):
            for name in imported_names(module, is_package, node):
                parts = name.split(".")
                targets.update(".".join(parts[:n]) for n in range(1, len(parts) + 1))
        graph[module] = {target for target in targets if target in modules and target not in inside}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One cycle of the graph as the modules along it (first repeated at the end), or []."""
    done: set[str] = set()
    for start in sorted(graph):
        path, stack = [start], [iter(sorted(graph[start]))]
        while stack:
            following = next(stack[-1], None)
            if following is None:
                done.add(path.pop())
                stack.pop()
            elif following in path:
                return path[path.index(following):] + [following]
            elif following not in done:
                path.append(following)
                stack.append(iter(sorted(graph[following])))
    return []


def external_importers(top_level: str) -> set[str]:
    """The osslsp modules that import the package `top_level` anywhere (in functions too)."""
    importers = set()
    for module, path in module_names().items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
            if any(name == top_level or name.startswith(top_level + ".") for name in names):
                importers.add(module)
    return importers


def test_the_graph_sees_the_package():
    graph = import_graph()
    assert "osslsp.cli.actions" in graph and "osslsp.cli.common" in graph["osslsp.cli.actions"]
    assert "osslsp.server" in graph and len(graph) > 50


def test_find_cycle_finds_a_cycle_and_only_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) == []


def test_no_import_cycle_in_osslsp():
    assert find_cycle(import_graph()) == []


def test_no_cycle_through_imports_in_functions():
    assert find_cycle(import_graph(deferred=True)) == []


def test_only_the_lsp_adapters_import_pygls():
    allowed = {module for module in module_names()
               if module == "osslsp.server" or module.startswith("osslsp.features")}
    assert external_importers("pygls") <= allowed
    assert external_importers("lsprotocol") <= allowed


def test_only_the_engine_imports_torch():
    assert {module for module in external_importers("torch") if not module.startswith("osslsp.engine")} == set()
