"""Retrieval for a cursor: the names used there, resolved to their definitions, with related and
similar code; ranked (`rank`) and fitted to a budget (`fit`)."""

from __future__ import annotations

import itertools
import re
import threading
import weakref
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from osslsp.index.extract import Definition, Import
from osslsp.index.fit import Fitting, Snippet
from osslsp.index.names import DefinitionRef, Lookups
from osslsp.index.rank import rarest_terms, related_rowids
from osslsp.index.resolve import ModuleResolver
from osslsp.index.secrets import redact_secrets
from osslsp.index.store import IndexStore
from osslsp.index.usages import Usage, keywords, usages_near
from osslsp.languages import language_for_path, language_named

# The prompt already holds this much of the current file around the cursor.
OWN_LINES_BEFORE = 60
OWN_LINES_AFTER = 30
MAX_DEFINITIONS_PER_NAME = 3
MAX_CLASS_MEMBERS = 12
MAX_RELATED = 12
MAX_RELATED_NAMES = 300  # the file's most frequent names looked up for related definitions
MAX_RELATED_TEXT_CHARS = 30_000  # of a file's text whose names count (a long file's tail is slow)
MAX_REEXPORT_HOPS = 3
MAX_CACHED_SNIPPET_FILES = 2_000
SIMILAR_REASON = "similar code"
SIMILAR_WINDOW_LINES = 30  # lines above the cursor whose identifiers look for similar bodies
MAX_SIMILAR = 3
MAX_SIMILAR_LINES = 30  # of a similar definition's text
_WORD = re.compile(r"[A-Za-z_]\w{2,}")
MAX_REMEMBERED_USAGES = 1_000  # resolved names and prefixes kept for the next keystrokes in a file
MAX_PREFIXED = 50  # definitions a lookup by the start of a name reads


@dataclass
class Remembered:
    """What retrievals in one file found, for the next keystrokes' to reuse; valid for one
    file, language, index data version and module resolver (`scope`), as the index's answers
    depend on nothing else."""

    scope: tuple[str, str, int, ModuleResolver]
    imports: list[Import] | None = None
    imported_files: set[str] | None = None
    resolved: dict[Usage, list[Definition]] = field(default_factory=dict)
    prefixed: dict[str, list[Definition]] = field(default_factory=dict)  # by the start of a name
    # the last similar-code lookup and the last fitting: (what it depends on, its result)
    similar: tuple[list[tuple[float, str]], list[Definition]] | None = None
    fitted: tuple[tuple, list[Snippet]] | None = None


class Reuse:
    """The `Remembered` of a store's latest retrieval scope, shared by the retrievers reading
    the store (`of`). A retrieval keeps the scope it started with: one that a write made stale
    while it ran fills a scope no later retrieval asks for."""

    _of_store: weakref.WeakKeyDictionary[IndexStore, Reuse] = weakref.WeakKeyDictionary()
    _of_store_lock = threading.Lock()

    def __init__(self) -> None:
        self._latest: Remembered | None = None

    @classmethod
    def of(cls, store: IndexStore) -> Reuse:
        with cls._of_store_lock:
            reuse = cls._of_store.get(store)
            if reuse is None:
                reuse = cls._of_store[store] = cls()
            return reuse

    def scoped(self, scope: tuple[str, str, int, ModuleResolver]) -> Remembered:
        """What is remembered in a scope (nothing when it is new: the older one is dropped)."""
        latest = self._latest
        if latest is None or latest.scope[:3] != scope[:3] or latest.scope[3] is not scope[3]:
            latest = self._latest = Remembered(scope)
        return latest


class Retriever:
    """Turns a cursor into snippets using the index's store, lookups and module resolver.

    Retrieval runs at every keystroke, and typing on a line hardly changes what it looks up: the
    names near the cursor are resolved once per file and index version (`Reuse`), the similar
    code once per set of terms, and the fitting is reused while its candidates stay the same.
    `reuse` is the store's shared one unless given (an empty `Reuse()` computes afresh).
    """

    def __init__(self, store: IndexStore, resolver: ModuleResolver,
                 related_cache: dict[str, list[Definition]] | None = None,
                 reuse: Reuse | None = None) -> None:
        self.store = store
        self.lookups = Lookups.of(store)
        self.resolver = resolver
        # Related definitions hardly change between keystrokes: computed once per file.
        self.related_cache = related_cache if related_cache is not None else {}
        self.reuse = reuse if reuse is not None else Reuse.of(store)
        self.remembered: Remembered | None = None  # the scope of the retrieval running

    def context_for(self, path: str, language: str, text: str, offset: int, budget_tokens: int,
                    count_tokens: Callable[[str], int]) -> list[Snippet]:
        # read before anything of the index: a write meanwhile makes this scope stale
        self.remembered = remembered = self.reuse.scoped(
            (path, language, self.lookups.version, self.resolver))
        if remembered.imports is None:
            remembered.imports = self.store.imports_of(path)
        cursor_line = text.count("\n", 0, offset) + 1
        own_region = (cursor_line - OWN_LINES_BEFORE, cursor_line + OWN_LINES_AFTER)
        candidates: list[tuple[Definition, str]] = []
        for usage in usages_near(text, offset, language):
            for definition in self._resolved(usage, path, language):
                candidates.append((definition, f"definition of {definition.name}"))
        candidates.extend((definition, "related") for definition in
                          self.related(path, text))
        terms = self.similar_terms(_window_above(text, offset, SIMILAR_WINDOW_LINES), language)
        depends_on = (own_region, budget_tokens, count_tokens, candidates, terms)
        if remembered.fitted is not None and remembered.fitted[0] == depends_on:
            return list(remembered.fitted[1])
        fitting = Fitting(path, own_region, budget_tokens)
        fitting.add(candidates, self._text, count_tokens)
        if fitting.spent < budget_tokens:  # similar code only fills what is left
            fitting.add([(definition, SIMILAR_REASON) for definition in
                         self._similar_to(terms)], self._text, count_tokens)
        remembered.fitted = (depends_on, fitting.chosen)
        return list(fitting.chosen)

    def _resolved(self, usage: Usage, path: str, language: str) -> list[Definition]:
        """`resolve`, remembered per usage in the retrieval's scope."""
        remembered = self.remembered
        found = remembered.resolved.get(usage)
        if found is None:
            if len(remembered.resolved) >= MAX_REMEMBERED_USAGES:
                remembered.resolved.clear()
            found = remembered.resolved[usage] = self.resolve(usage, path, language,
                                                              remembered.imports)
        return found

    def _similar_to(self, terms: list[tuple[float, str]]) -> list[Definition]:
        """Functions whose bodies hold the most weight of the terms; the last lookup's answer
        when the terms are the same."""
        remembered = self.remembered
        if remembered.similar is None or remembered.similar[0] != terms:
            remembered.similar = (terms, self.store.definitions_by_rowid(
                self.store.bodies_matching(terms, MAX_SIMILAR)))
        return remembered.similar[1]

    def _text(self, definition: Definition, reason: str) -> str:
        """A candidate's text in a prompt: similar code as written, else its snippet."""
        return self.similar_text(definition) if reason == SIMILAR_REASON else \
            self.snippet_text(definition)

    def resolve(self, usage: Usage, path: str, language: str,
                imports: list[Import]) -> list[Definition]:
        """Definitions a used name most likely refers to, best first."""
        if not usage.name:
            return []
        if usage.qualifier:
            found = self._through_module(usage, path, language, imports)
            if found:
                return found
            if usage.partial:
                members = [d for d in self._named(usage)
                           if d.scope.split(".")[-1] == usage.qualifier]
            else:
                members = self.store.definitions_by_rowid([
                    ref.rowid for ref in self._refs(usage.name)
                    if ref.scope.split(".")[-1] == usage.qualifier][:MAX_DEFINITIONS_PER_NAME])
            if members:
                return members[:MAX_DEFINITIONS_PER_NAME]
        else:
            for imported in imports:
                if imported.bound == usage.name and imported.name:
                    found = self._imported(language, path, imported, imported.name, 0)
                    if found:
                        return found
        imported_files = self._imported_files(language, path, imports)
        ranks = self.lookups.names().ranks
        if usage.partial:
            candidates = self._named(usage)

            def score(definition: Definition) -> tuple:
                return (definition.path == path, definition.path in imported_files,
                        definition.scope == "", ranks.get(definition.path, 0.0))

            return sorted(candidates, key=score, reverse=True)[:MAX_DEFINITIONS_PER_NAME]

        def ref_score(ref: DefinitionRef) -> tuple:
            return (ref.path == path, ref.path in imported_files, ref.scope == "",
                    ranks.get(ref.path, 0.0))

        best = sorted(self._refs(usage.name), key=ref_score, reverse=True)
        return self.store.definitions_by_rowid(
            [ref.rowid for ref in best[:MAX_DEFINITIONS_PER_NAME]])

    def _imported_files(self, language: str, path: str, imports: list[Import]) -> set[str]:
        """The files a file's imports resolve to (kept in the retrieval's scope)."""
        remembered = self.remembered
        if remembered is not None and remembered.imported_files is not None:
            return remembered.imported_files
        files = {file for imported in imports
                 for file in self.resolver.resolve(language, path, imported.module,
                                                   imported.level)}
        if remembered is not None:
            remembered.imported_files = files
        return files

    def _prefixed(self, prefix: str) -> list[Definition]:
        """The definitions whose names start with `prefix` (at most MAX_PREFIXED, in the store's
        order). Typing a name on narrows the last lookup: one that found fewer than the most
        found them all, so the longer prefix's are those of them in its range."""
        remembered = self.remembered
        if remembered is None:
            return self.store.definitions_prefixed(prefix, MAX_PREFIXED)
        found = remembered.prefixed.get(prefix)
        if found is None:
            complete = next((kept for end in range(len(prefix) - 1, 0, -1)
                             if (kept := remembered.prefixed.get(prefix[:end])) is not None
                             and len(kept) < MAX_PREFIXED), None)
            if len(remembered.prefixed) >= MAX_REMEMBERED_USAGES:
                remembered.prefixed.clear()
            # the store's range, in the same order: str and UTF-8 bytes sort alike
            found = remembered.prefixed[prefix] = self.store.definitions_prefixed(
                prefix, MAX_PREFIXED) if complete is None else [
                definition for definition in complete
                if prefix <= definition.name < prefix + "\uffff"]
        return found

    def _refs(self, name: str) -> list[DefinitionRef]:
        return self.lookups.names().named(name)

    def _named(self, usage: Usage) -> list[Definition]:
        if usage.partial:
            return self._prefixed(usage.name) if len(usage.name) >= 3 else []
        return self.store.definitions_named(usage.name)

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
        order = {file: number for number, file in enumerate(files)}
        if partial:
            found = [d for d in self._prefixed(name) if d.path in order]
            found.sort(key=lambda d: (d.scope != "", order[d.path]))
            return found[:MAX_DEFINITIONS_PER_NAME]
        refs = sorted((ref for ref in self._refs(name) if ref.path in order),
                      key=lambda ref: (ref.scope != "", order[ref.path]))
        return self.store.definitions_by_rowid(
            [ref.rowid for ref in refs[:MAX_DEFINITIONS_PER_NAME]])

    def related(self, path: str, text: str) -> list[Definition]:
        """Top-level definitions of other files that this file's text names, by file rank.

        The aider-like part: files central to the workspace's reference graph come first, and a
        name defined in many files counts for less.
        """
        if path in self.related_cache:
            return self.related_cache[path]
        counts = Counter(_WORD.findall(text, 0, MAX_RELATED_TEXT_CHARS))
        related = self.store.definitions_by_rowid(
            related_rowids(self.lookups.names(), path, counts, MAX_RELATED_NAMES, MAX_RELATED))
        self.related_cache[path] = related
        return related

    def similar_terms(self, window: str, language: str) -> list[tuple[float, str]]:
        """The rarest identifiers of the code above, weighted: functions elsewhere whose bodies
        share them are similar code (`_similar_to`)."""
        return rarest_terms(set(_WORD.findall(window)) - keywords(language), self.lookups.term_bodies())

    def similar_text(self, definition: Definition) -> str:
        """A similar definition as written (its first lines), read from disk."""
        return _cached(self.lookups.names().similar_texts, definition, self._similar_text)

    def _similar_text(self, definition: Definition) -> str:
        last = min(definition.end_line, definition.line - 1 + MAX_SIMILAR_LINES)
        try:
            with open(Path(self.store.root_key) / definition.path, encoding="utf-8",
                      errors="replace") as source:
                body = [line.rstrip("\n") for line in
                        itertools.islice(source, definition.line - 1, last)]
        except OSError:
            return self.snippet_text(definition)
        if last < definition.end_line:
            body.append(body[-1][:len(body[-1]) - len(body[-1].lstrip())] + "..." if body
                        else "...")
        return redact_secrets("\n".join(body))

    def snippet_text(self, definition: Definition) -> str:
        """Signature and documentation; for a class its constructor and method signatures too."""
        return _cached(self.lookups.names().snippet_texts, definition, self._snippet_text)

    def _snippet_text(self, definition: Definition) -> str:
        language = _language_of(definition.path)
        registered = language_named(language)
        constructors = registered.constructors if registered is not None else frozenset()
        lines = [_with_doc(definition, language)]
        if definition.kind in ("class", "type", "namespace"):
            scope = f"{definition.scope}.{definition.name}" if definition.scope else \
                definition.name
            members = self.store.members_of(definition.path, scope)
            members.sort(key=lambda member: member.name not in constructors)
            for member in members[:MAX_CLASS_MEMBERS]:
                lines.append(_indent(_with_doc(member, language, member.name in constructors)))
            if len(members) > MAX_CLASS_MEMBERS:
                lines.append(_indent("..."))
        return redact_secrets("\n".join(lines))


def _window_above(text: str, offset: int, lines: int) -> str:
    """The text of the given number of lines above the cursor, up to the cursor."""
    start = offset
    for _ in range(lines):
        start = text.rfind("\n", 0, max(start - 1, 0)) + 1
        if start == 0:
            break
    return text[start:offset]


def _cached(by_path: dict[str, dict[int, str]], definition: Definition,
            make: Callable[[Definition], str]) -> str:
    """A definition's text from a per-file cache, made and kept when missing."""
    texts = by_path.get(definition.path)
    if texts is None:
        if len(by_path) >= MAX_CACHED_SNIPPET_FILES:
            by_path.clear()
        texts = by_path[definition.path] = {}
    text = texts.get(definition.line)
    if text is None:
        text = texts[definition.line] = make(definition)
    return text


def _language_of(path: str) -> str:
    language = language_for_path(path)
    return language.name if language else ""


def _with_doc(definition: Definition, language: str, doc: bool = True) -> str:
    """A definition's declaration (and documentation), as its language writes them."""
    registered = language_named(language)
    if registered is None:
        return definition.signature
    return registered.documented(definition.signature, definition.kind, definition.doc if doc else "")


def _indent(text: str) -> str:
    return "\n".join("    " + line if line else line for line in text.split("\n"))
