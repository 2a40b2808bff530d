"""Retrieval for a cursor: what is being used there, resolved to definitions, fitted to a budget."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from osslsp.index.extract import Definition, Import
from osslsp.index.resolve import ModuleResolver
from osslsp.index.secrets import redact_secrets
from osslsp.index.specs import SPECS
from osslsp.index.store import IndexStore
from osslsp.languages import language_for_path, language_named

USAGE_WINDOW_LINES = 8  # lines above the cursor whose names are looked up
# The prompt already holds this much of the current file around the cursor.
OWN_LINES_BEFORE = 60
OWN_LINES_AFTER = 30
MAX_DEFINITIONS_PER_NAME = 3
MAX_CLASS_MEMBERS = 12
MAX_RELATED = 12
MAX_RELATED_NAMES = 300  # the file's most frequent names looked up for related definitions
MAX_REEXPORT_HOPS = 3
CONSTRUCTORS = ("__init__", "__new__", "constructor", "new", "New")
_CHAIN_BEFORE = re.compile(r"((?:[A-Za-z_]\w*\s*\.\s*)*[A-Za-z_]\w*)\s*(?:<[^<>()]*>)?\s*$")
_PARTIAL_AT_CURSOR = re.compile(r"((?:[A-Za-z_]\w*\.)*)([A-Za-z_]\w*)?$")
_QUALIFIED_NAME = re.compile(r"(?:([A-Za-z_]\w*)\s*(?:\.|::|->)\s*)?([A-Za-z_]\w*)")
_WORD = re.compile(r"[A-Za-z_]\w{2,}")


@dataclass(frozen=True)
class Snippet:
    """A piece of context for a prompt, labelled with where it comes from."""

    path: str  # workspace-relative posix path
    line: int  # 1-based
    text: str
    reason: str  # "definition of render", "related", ...


@dataclass(frozen=True)
class Usage:
    """A name used near the cursor: `client.fetch_` is Usage("fetch_", "client", partial=True)."""

    name: str
    qualifier: str = ""
    partial: bool = False


def usages_near(text: str, offset: int, language: str) -> list[Usage]:
    """Names used at and around the cursor, most relevant first.

    Lexical on purpose: the code being typed rarely parses. First the call whose arguments the
    cursor is in (`render(`), then the name being typed (`client.fetch_`), then the names of the
    current and previous lines, nearest first.
    """
    spec = SPECS.get(language)
    keywords = spec.keywords if spec else frozenset()
    before = text[:offset]
    usages: list[Usage] = []
    call = _open_call(before)
    if call is not None:
        usages.append(call)
    typed = _PARTIAL_AT_CURSOR.search(before[-200:])
    if typed and (typed.group(1) or typed.group(2)):
        qualifier = typed.group(1).rstrip(".").split(".")[-1] if typed.group(1) else ""
        name = typed.group(2) or ""
        if name or qualifier:
            usages.append(Usage(name, qualifier, partial=True))
    line_start = offset
    for _ in range(USAGE_WINDOW_LINES):
        line_start = text.rfind("\n", 0, max(line_start - 1, 0)) + 1
        if line_start == 0:
            break
    window_lines = text[line_start:offset].split("\n")
    line_end = text.find("\n", offset)
    window_lines[-1] += text[offset:line_end if line_end >= 0 else len(text)]
    for line in reversed(window_lines):
        for match in reversed(list(_QUALIFIED_NAME.finditer(_strip_strings(line)))):
            qualifier, name = match.group(1) or "", match.group(2)
            if name not in keywords and len(name) > 1:
                usages.append(Usage(name, qualifier if qualifier not in ("self", "this") else ""))
    unique: dict[tuple[str, str], Usage] = {}
    for usage in usages:
        unique.setdefault((usage.name, usage.qualifier), usage)
    return list(unique.values())


def _open_call(before: str) -> Usage | None:
    """The function whose argument list the cursor is inside, if any."""
    depth = 0
    for index in range(len(before) - 1, max(len(before) - 2000, 0) - 1, -1):
        char = before[index]
        if char in ")]}":
            depth += 1
        elif char in "([{":
            if depth == 0:
                if char != "(":
                    return None
                chain = _CHAIN_BEFORE.search(before[max(index - 200, 0):index])
                if chain is None:
                    return None
                parts = [part.strip() for part in chain.group(1).split(".")]
                return Usage(parts[-1], parts[-2] if len(parts) > 1 else "")
            depth -= 1
    return None


def _strip_strings(line: str) -> str:
    return re.sub(r"(\"[^\"]*\"|'[^']*')", " ", line)


class Retriever:
    """Turns a cursor into snippets using the index's store and module resolver."""

    def __init__(self, store: IndexStore, resolver: ModuleResolver,
                 related_cache: dict[str, list[Definition]] | None = None) -> None:
        self.store = store
        self.resolver = resolver
        # Related definitions hardly change between keystrokes: computed once per file.
        self.related_cache = related_cache if related_cache is not None else {}

    def context_for(self, path: str, language: str, text: str, offset: int, budget_tokens: int,
                    count_tokens: Callable[[str], int]) -> list[Snippet]:
        cursor_line = text.count("\n", 0, offset) + 1
        own_region = (cursor_line - OWN_LINES_BEFORE, cursor_line + OWN_LINES_AFTER)
        imports = self.store.imports_of(path)
        candidates: list[tuple[Definition, str]] = []
        for usage in usages_near(text, offset, language):
            for definition in self.resolve(usage, path, language, imports):
                candidates.append((definition, f"definition of {definition.name}"))
        candidates.extend((definition, "related") for definition in
                          self.related(path, text))
        return self._fit(candidates, path, own_region, budget_tokens, count_tokens)

    def resolve(self, usage: Usage, path: str, language: str,
                imports: list[Import]) -> list[Definition]:
        """Definitions a used name most likely refers to, best first."""
        if not usage.name:
            return []
        if usage.qualifier:
            found = self._through_module(usage, path, language, imports)
            if found:
                return found
            members = [d for d in self._named(usage) if d.scope.split(".")[-1] == usage.qualifier]
            if members:
                return members[:MAX_DEFINITIONS_PER_NAME]
        else:
            for imported in imports:
                if imported.bound == usage.name and imported.name:
                    found = self._imported(language, path, imported, imported.name, 0)
                    if found:
                        return found
        candidates = self._named(usage)
        if not candidates:
            return []
        imported_files = {file for imported in imports for file in self.resolver.resolve(
            language, path, imported.module, imported.level)}
        ranks = self._ranks_of({d.path for d in candidates})

        def score(definition: Definition) -> tuple:
            return (definition.path == path, definition.path in imported_files,
                    definition.scope == "", ranks.get(definition.path, 0.0))

        return sorted(candidates, key=score, reverse=True)[:MAX_DEFINITIONS_PER_NAME]

    def _named(self, usage: Usage) -> list[Definition]:
        if usage.partial:
            return self.store.definitions_prefixed(usage.name, 50) if len(usage.name) >= 3 else []
        return self.store.definitions_named(usage.name)

    def _ranks_of(self, paths: set[str]) -> dict[str, float]:
        marks = ",".join("?" * len(paths))
        return dict(self.store.db.execute(
            f"SELECT path, rank FROM files WHERE path IN ({marks})", tuple(paths)))

    def _through_module(self, usage: Usage, path: str, language: str,
                        imports: list[Import]) -> list[Definition]:
        """`mod.name` where `mod` is an imported module (or an imported submodule)."""
        for imported in imports:
            if imported.bound != usage.qualifier:
                continue
            module = imported.module
            if imported.name:  # `from pkg import mod` then `mod.name`
                module = f"{module}.{imported.name}" if module else imported.name
            files = self.resolver.resolve(language, path, module, imported.level)
            found = self._defined_in(files, usage.name, usage.partial)
            if found:
                return found
        return []

    def _imported(self, language: str, path: str, imported: Import, name: str,
                  hops: int) -> list[Definition]:
        """The definition an imported name refers to, following re-exports a few hops."""
        files = self.resolver.resolve(language, path, imported.module, imported.level)
        found = self._defined_in(files, name, partial=False)
        if found or hops >= MAX_REEXPORT_HOPS:
            return found
        for file in files[:2]:
            for reexport in self.store.imports_of(file):
                if reexport.bound == name and reexport.name:
                    found = self._imported(language, file, reexport, reexport.name, hops + 1)
                    if found:
                        return found
        return []

    def _defined_in(self, files: list[str], name: str, partial: bool) -> list[Definition]:
        if not files:
            return []
        wanted = set(files)
        candidates = self.store.definitions_prefixed(name, 50) if partial else \
            self.store.definitions_named(name)
        found = [d for d in candidates if d.path in wanted]
        found.sort(key=lambda d: (d.scope != "", files.index(d.path)))
        return found[:MAX_DEFINITIONS_PER_NAME]

    def related(self, path: str, text: str) -> list[Definition]:
        """Top-level definitions of other files that this file's text names, by file rank.

        The aider-like part: files central to the workspace's reference graph come first, and a
        name defined in many files counts for less.
        """
        if path in self.related_cache:
            return self.related_cache[path]
        counts = Counter(_WORD.findall(text))
        names = [name for name, _ in counts.most_common(MAX_RELATED_NAMES)]
        if not names:
            return []
        marks = ",".join("?" * len(names))
        rows = self.store.db.execute(
            "SELECT d.name, d.kind, d.scope, d.signature, d.doc, d.line, d.end_line, f.path, "
            "f.rank FROM defs d JOIN files f ON f.id = d.file_id "
            f"WHERE d.name IN ({marks}) AND d.scope = '' AND f.path != ? "
            "AND d.kind != 'constant' ORDER BY f.rank DESC LIMIT 400", (*names, path)).fetchall()
        per_name: dict[str, int] = {}
        for row in rows:
            per_name[row[0]] = per_name.get(row[0], 0) + 1
        rows.sort(key=lambda row: row[8] / per_name[row[0]], reverse=True)
        related = [Definition(*row[:8]) for row in rows[:MAX_RELATED]]
        self.related_cache[path] = related
        return related

    def snippet_text(self, definition: Definition) -> str:
        """Signature and documentation; for a class its constructor and method signatures too."""
        language = _language_of(definition.path)
        lines = [_with_doc(definition, language)]
        if definition.kind in ("class", "type", "namespace"):
            scope = f"{definition.scope}.{definition.name}" if definition.scope else \
                definition.name
            members = self.store.members_of(definition.path, scope)
            members.sort(key=lambda member: member.name not in CONSTRUCTORS)
            for member in members[:MAX_CLASS_MEMBERS]:
                lines.append(_indent(_with_doc(member, language) if member.name in CONSTRUCTORS
                                     else _terminated(member, language)))
            if len(members) > MAX_CLASS_MEMBERS:
                lines.append(_indent("..."))
        return redact_secrets("\n".join(lines))

    def _fit(self, candidates: list[tuple[Definition, str]], path: str,
             own_region: tuple[int, int], budget_tokens: int,
             count_tokens: Callable[[str], int]) -> list[Snippet]:
        """Snippets in order of certainty that fit the budget together, without repeats."""
        chosen: list[Snippet] = []
        seen: set[tuple[str, int]] = set()
        spent = 0
        for definition, reason in candidates:
            key = (definition.path, definition.line)
            if key in seen:
                continue
            seen.add(key)
            if definition.path == path and definition.line <= own_region[1] and \
                    definition.end_line >= own_region[0]:
                continue
            text = self.snippet_text(definition)
            cost = count_tokens(text)
            if spent + cost > budget_tokens:
                continue
            spent += cost
            chosen.append(Snippet(definition.path, definition.line, text, reason))
        return chosen


def _language_of(path: str) -> str:
    language = language_for_path(path)
    return language.name if language else ""


def _with_doc(definition: Definition, language: str) -> str:
    if not definition.doc:
        return _terminated(definition, language)
    if language == "python":
        indent = "    "
        doc = "\n".join(indent + line if line else line for line in definition.doc.splitlines())
        return f"{_terminated(definition, language)}\n{indent}\"\"\"{doc.lstrip()}\"\"\""
    registered = language_named(language)
    comment = registered.line_comment if registered else "//"
    doc = "\n".join(f"{comment} {line}".rstrip() for line in definition.doc.splitlines())
    return f"{doc}\n{definition.signature}"


def _terminated(definition: Definition, language: str) -> str:
    """A signature written as a complete-looking declaration line."""
    if language == "python" and definition.kind in ("function", "method", "class"):
        return definition.signature + ":"
    return definition.signature


def _indent(text: str) -> str:
    return "\n".join("    " + line if line else line for line in text.split("\n"))
