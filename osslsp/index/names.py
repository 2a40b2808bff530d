"""Every definition's name, file, scope and kind in memory, for retrieval's candidate scoring.

Retrieval scores many candidates (a name such as `get` has hundreds of definitions) but shows a
few: scoring on these small tuples and reading only the chosen rows from SQLite keeps one cursor's
retrieval within a few milliseconds. About 10 MB for CPython's 70,000 definitions.
"""

from __future__ import annotations

import sqlite3
import threading
import weakref
from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from osslsp.index.store import IndexStore

RELOAD_ABOVE_FILES = 64  # files written at once beyond which reloading beats patching


@dataclass(frozen=True, slots=True, eq=False)  # compared by identity: removal stays cheap
class DefinitionRef:
    """Where a definition lies, without its text: `rowid` reads the rest from the store."""

    rowid: int
    path: str
    scope: str
    kind: str


class NameTable:
    """Definitions by name and by file, with each file's rank in the reference graph."""

    def __init__(self) -> None:
        self.by_name: dict[str, list[DefinitionRef]] = {}
        self.by_path: dict[str, list[tuple[str, DefinitionRef]]] = {}
        # top-level functions, classes and types by name: what "related" definitions are
        self.top_level: dict[str, list[DefinitionRef]] = {}
        self.ranks: dict[str, float] = {}
        # definitions' prompt texts by path and line: definitions shared by many prompts
        self.snippet_texts: dict[str, dict[int, str]] = {}
        self.similar_texts: dict[str, dict[int, str]] = {}  # the same for similar code

    @classmethod
    def load(cls, db: sqlite3.Connection) -> NameTable:
        """The table of everything the index holds (one pass over the definitions)."""
        table = cls()
        table.ranks = dict(db.execute("SELECT path, rank FROM files"))
        for rowid, name, scope, kind, path in db.execute(
                "SELECT d.rowid, d.name, d.scope, d.kind, f.path FROM defs d "
                "JOIN files f ON f.id = d.file_id"):
            table._add(name, DefinitionRef(rowid, path, scope, kind))
        return table

    def _add(self, name: str, ref: DefinitionRef) -> None:
        self.by_name.setdefault(name, []).append(ref)
        self.by_path.setdefault(ref.path, []).append((name, ref))
        if not ref.scope and ref.kind != "constant":
            self.top_level.setdefault(name, []).append(ref)

    def named(self, name: str) -> list[DefinitionRef]:
        return self.by_name.get(name, [])

    def replace_file(self, db: sqlite3.Connection, path: str) -> None:
        """Read one file's definitions again after it was written or deleted. Each name's list is
        filtered once, so the cost is linear in the definitions (removing them one at a time is
        quadratic: a generated file can define one name a million times)."""
        leaving: dict[str, set[int]] = {}
        for name, ref in self.by_path.pop(path, []):
            leaving.setdefault(name, set()).add(id(ref))
        for name, gone in leaving.items():
            for table in (self.by_name, self.top_level):
                refs = table.get(name)
                if refs is None:
                    continue
                kept = [ref for ref in refs if id(ref) not in gone]
                if kept:
                    table[name] = kept
                else:
                    del table[name]
        self.snippet_texts.pop(path, None)
        self.similar_texts.pop(path, None)
        row = db.execute("SELECT id, rank FROM files WHERE path = ?", (path,)).fetchone()
        if row is None:
            self.ranks.pop(path, None)
            return
        file_id, self.ranks[path] = row
        for rowid, name, scope, kind in db.execute(
                "SELECT rowid, name, scope, kind FROM defs WHERE file_id = ?", (file_id,)):
            self._add(name, DefinitionRef(rowid, path, scope, kind))


class Lookups:
    """What retrieval looks up in memory: the name table and how many bodies hold each
    identifier, loaded from a store on first use, then kept in step with its writes. One per
    store (`of`), shared by everything that reads it."""

    _of_store: weakref.WeakKeyDictionary[IndexStore, Lookups] = weakref.WeakKeyDictionary()
    _of_store_lock = threading.Lock()

    @classmethod
    def of(cls, store: IndexStore) -> Lookups:
        """The lookups of a store."""
        with cls._of_store_lock:
            lookups = cls._of_store.get(store)
            if lookups is None:
                lookups = cls._of_store[store] = cls(store)
            return lookups

    def __init__(self, store: IndexStore) -> None:
        # weak: a strong reference would keep the store's entry in `_of_store` alive
        self._store = weakref.proxy(store)
        self._lock = threading.Lock()
        self._names: NameTable | None = None
        self._term_bodies: dict[str, int] | None = None  # per body identifier, bodies holding it
        self.version = 0  # the index's data version: one more at each write (`changed`)

    def names(self) -> NameTable:
        """Every definition's name, file and scope."""
        with self._lock:
            if self._names is None:
                self._names = NameTable.load(self._store.db)
            return self._names

    def term_bodies(self) -> dict[str, int]:
        """How many bodies hold each identifier (folded to lower case)."""
        with self._lock:
            if self._term_bodies is None:
                self._term_bodies = self._store.body_term_counts()
            return self._term_bodies

    def changed(self, paths: Collection[str] | None = None) -> None:
        """Files were written (all of them when `paths` is None): the tables follow."""
        with self._lock:
            self.version += 1
            if self._names is None:
                return
            if paths is None or len(paths) > RELOAD_ABOVE_FILES:
                self._names = None
                self._term_bodies = None  # only rarity: one file's edits hardly change it
                return
            for path in paths:
                self._names.replace_file(self._store.db, path)
