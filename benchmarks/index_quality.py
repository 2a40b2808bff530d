"""Quality of cross-file retrieval: does the prompt at `name(` hold the callee's definition?

Samples call sites `name(` in real installed packages where `name` has exactly one definition in
the package and it lies in another file, puts the cursor right after the `(`, and counts how often
the snippets hold the callee's definition line; for classes also whether they hold the
constructor's signature. Target: >= 90% for Python.

    python benchmarks/index_quality.py [--packages jinja2 click ...] [--per-package 60]
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import sysconfig
import tempfile
from pathlib import Path

from osslsp.index import WorkspaceIndex
from osslsp.index.extract import Definition
from osslsp.languages import parser

DEFAULT_PACKAGES = ("jinja2", "click", "requests", "urllib3", "pygls", "watchfiles", "pathspec",
                    "platformdirs", "httpx", "rich", "packaging")
BUDGET_TOKENS = 1024


def count_tokens(text: str) -> int:
    """About four characters a token, as BPE tokenizers give on code."""
    return max(1, len(text) // 4)


def call_sites(source: bytes) -> list[tuple[str, int]]:
    """Each call's callee name and the byte offset just after its `(`."""
    tree = parser("python").parse(source)
    sites: list[tuple[str, int]] = []
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        if node.type == "call":
            function = node.child_by_field_name("function")
            arguments = node.child_by_field_name("arguments")
            if function is not None and arguments is not None and \
                    arguments.type == "argument_list":
                name_node = function.child_by_field_name("attribute") \
                    if function.type == "attribute" else function
                if name_node is not None and name_node.type == "identifier":
                    sites.append((name_node.text.decode(), arguments.start_byte + 1))
        stack.extend(node.children)
    return sites


def definition_line(definition: Definition) -> str:
    """The signature line that names the definition (after decorators)."""
    for line in definition.signature.splitlines():
        if definition.name in line and not line.lstrip().startswith("@"):
            return line.strip()
    return definition.signature.splitlines()[0].strip()


def evaluate_package(name: str, per_package: int, rng: random.Random) -> tuple[int, int, int, int]:
    """(sites, hits, class sites, constructor hits) for one installed package."""
    source_dir = Path(sysconfig.get_paths()["purelib"]) / name
    if not source_dir.is_dir():
        print(f"  {name}: not installed, skipped", file=sys.stderr)
        return 0, 0, 0, 0
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch) / "ws"
        shutil.copytree(source_dir, root / name, ignore=shutil.ignore_patterns("__pycache__"))
        index = WorkspaceIndex(root, cache_dir=Path(scratch) / "cache")
        index.refresh()
        candidates = []
        for path in sorted((root / name).rglob("*.py")):
            data = path.read_bytes()
            relative = path.relative_to(root).as_posix()
            for callee, byte_offset in call_sites(data):
                definitions = [d for d in index.definitions_named(callee)
                               if d.kind in ("function", "method", "class")]
                if len(definitions) == 1 and definitions[0].path != relative:
                    candidates.append((path, data, byte_offset, definitions[0]))
        sample = rng.sample(candidates, min(per_package, len(candidates)))
        hits = class_sites = constructor_hits = 0
        for path, data, byte_offset, definition in sample:
            text = data.decode(errors="replace")
            offset = len(data[:byte_offset].decode(errors="replace"))
            snippets = index.context_for(path, text, offset, BUDGET_TOKENS, count_tokens)
            context = "\n".join(snippet.text for snippet in snippets)
            hits += definition_line(definition) in context
            if definition.kind == "class":
                constructors = [m for m in index.store.members_of(definition.path, definition.name)
                                if m.name == "__init__"]
                if constructors:
                    class_sites += 1
                    constructor_hits += definition_line(constructors[0]) in context
        index.close()
    return len(sample), hits, class_sites, constructor_hits


def main() -> int:
    arguments = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    arguments.add_argument("--packages", nargs="*", default=list(DEFAULT_PACKAGES))
    arguments.add_argument("--per-package", type=int, default=60)
    arguments.add_argument("--seed", type=int, default=7)
    options = arguments.parse_args()
    rng = random.Random(options.seed)
    totals = [0, 0, 0, 0]
    for name in options.packages:
        result = evaluate_package(name, options.per_package, rng)
        if result[0]:
            print(f"{name:14} call sites {result[0]:4}  definition in prompt {result[1]:4} "
                  f"({100 * result[1] / result[0]:.0f}%)  classes {result[2]:3}, "
                  f"constructor in prompt {result[3]:3}")
        totals = [total + value for total, value in zip(totals, result)]
    sites, hits, class_sites, constructor_hits = totals
    if not sites:
        print("no call sites found", file=sys.stderr)
        return 1
    print(f"TOTAL python: {hits}/{sites} = {100 * hits / sites:.1f}% of call sites hold the "
          f"callee's definition line (target >= 90%)")
    if class_sites:
        print(f"constructors: {constructor_hits}/{class_sites} = "
              f"{100 * constructor_hits / class_sites:.1f}% of class call sites hold __init__")
    return 0


if __name__ == "__main__":
    sys.exit(main())
