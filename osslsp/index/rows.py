"""The index's tables: their schema, a file's summary as their rows, and the statements that
write and delete those (inside a store's `transaction()`)."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from osslsp.index.extract import FileSummary

SCHEMA_VERSION = "osslsp-index-4"
# Bodies' identifiers are searched whole (`_` is part of a term; terms are case-folded), by
# which bodies hold them: no positions (detail=none), no lengths (columnsize=0, no BM25 used).
SCHEMA = """
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE files(id INTEGER PRIMARY KEY, path TEXT UNIQUE NOT NULL, language TEXT NOT NULL,
    size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, hash TEXT NOT NULL,
    rank REAL NOT NULL DEFAULT 0);
-- Apart from `files`, whose ranks are all rewritten after a refresh: SQLite rewrites a whole row
-- to change one column, and a file's identifiers run to kilobytes.
CREATE TABLE file_identifiers(file_id INTEGER PRIMARY KEY, identifiers TEXT NOT NULL);
CREATE TABLE defs(file_id INTEGER NOT NULL, name TEXT NOT NULL, kind TEXT NOT NULL,
    scope TEXT NOT NULL, line INTEGER NOT NULL, end_line INTEGER NOT NULL,
    signature TEXT NOT NULL, doc TEXT NOT NULL);
CREATE TABLE imports(file_id INTEGER NOT NULL, module TEXT NOT NULL, name TEXT NOT NULL,
    bound TEXT NOT NULL, level INTEGER NOT NULL, line INTEGER NOT NULL, wildcard INTEGER NOT NULL);
CREATE VIRTUAL TABLE def_tokens USING fts5(tokens, detail=none, columnsize=0,
    tokenize="unicode61 tokenchars '_'");
CREATE VIRTUAL TABLE def_token_counts USING fts5vocab(def_tokens, row);
"""
# Dropped while an empty index is filled (building them once at the end is faster).
INDEXES = """
CREATE INDEX IF NOT EXISTS defs_by_name ON defs(name);
CREATE INDEX IF NOT EXISTS defs_by_file ON defs(file_id);
CREATE INDEX IF NOT EXISTS imports_by_file ON imports(file_id);
"""
LOOKUP_INDEXES = ("defs_by_name", "defs_by_file", "imports_by_file")
PATHS_PER_QUERY = 500  # under SQLite's limit of bound parameters
# A meta key present from a refresh's first write of files until their ranks are stored.
RANKS_STALE = "ranks_stale"


def run_script(db: sqlite3.Connection, script: str) -> None:
    """Run SQL statements inside the current transaction (`executescript` would commit it)."""
    for statement in script.split(";"):
        if statement.strip():
            db.execute(statement)


@dataclass(frozen=True)
class FileState:
    """What the index remembers of a file to tell whether it changed."""

    size: int
    mtime_ns: int
    hash: str


# A file summary as the tables' rows: language, identifiers (space-separated), definitions
# (name, kind, scope, signature, doc, line, end_line), body tokens (one per definition) and imports
# (module, name, bound, level, line, wildcard). Worker processes send this: tuples of strings and
# numbers pickle several times faster than dataclasses.
SummaryRows = tuple[str, str, list[tuple[str, str, str, str, str, int, int]], tuple[str, ...],
                    list[tuple[str, str, str, int, int, bool]]]


def summary_rows(summary: FileSummary) -> SummaryRows:
    """A summary as the rows `put_files` stores."""
    return (summary.language, summary.identifiers,
            # plain tuples, sliced in C: named tuples pickle with their class
            [definition[:7] for definition in summary.definitions],
            summary.tokens or ("",) * len(summary.definitions),
            [imported[:] for imported in summary.imports])


def put_file(db: sqlite3.Connection, path: str, state: FileState, summary: FileSummary) -> None:
    """Replace everything known about a file by a summary (it keeps its rank until the next
    ranking)."""
    put_files(db, [(path, state, summary_rows(summary))])


def put_files(db: sqlite3.Connection, files: list[tuple[str, FileState, SummaryRows]]) -> None:
    """Store many files' rows (see `summary_rows`), one statement per table for all of them:
    a cold index writes about 70,000 definitions. What the index held of these files is
    replaced, even of files new to the caller: another process sharing the index (an editor
    window's buffer) may have stored them since."""
    ranks: dict[str, float] = {}
    for start in range(0, len(files), PATHS_PER_QUERY):
        chunk = [path for path, _, _ in files[start:start + PATHS_PER_QUERY]]
        for path, rank in db.execute(f"SELECT path, rank FROM files WHERE path IN "
                                     f"({','.join('?' * len(chunk))})", chunk).fetchall():
            ranks[path] = rank
            delete_file(db, path)
    # Explicit row ids, so that definitions name their file and the bodies' search rows their
    # definition without a lookup.
    file_id = db.execute("SELECT max(id) FROM files").fetchone()[0] or 0
    def_id = db.execute("SELECT max(rowid) FROM defs").fetchone()[0] or 0
    file_rows, identifier_rows, def_rows, token_rows, import_rows = [], [], [], [], []
    for path, state, (language, identifiers, definitions, tokens, imports) in files:
        file_id += 1
        file_rows.append((file_id, path, language, state.size, state.mtime_ns, state.hash,
                          ranks.get(path, 0.0)))
        identifier_rows.append((file_id, identifiers))
        for definition, body in zip(definitions, tokens):
            def_id += 1
            def_rows.append((def_id, file_id, *definition))
            if body:
                token_rows.append((def_id, body))
        import_rows.extend((file_id, *imported) for imported in imports)
    db.executemany("INSERT INTO files(id, path, language, size, mtime_ns, hash, rank) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?)", file_rows)
    db.executemany("INSERT INTO file_identifiers VALUES (?, ?)", identifier_rows)
    db.executemany("INSERT INTO defs(rowid, file_id, name, kind, scope, signature, doc, "
                   "line, end_line) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", def_rows)
    db.executemany("INSERT INTO def_tokens(rowid, tokens) VALUES (?, ?)", token_rows)
    db.executemany("INSERT INTO imports VALUES (?, ?, ?, ?, ?, ?, ?)", import_rows)


def ranks_stale(db: sqlite3.Connection) -> None:
    """Files are being written whose ranks must be computed again."""
    db.execute("INSERT OR REPLACE INTO meta VALUES (?, '1')", (RANKS_STALE,))


def touch_file(db: sqlite3.Connection, path: str, state: FileState) -> None:
    """Record a new size and mtime for a file whose content did not change."""
    db.execute("UPDATE files SET size = ?, mtime_ns = ? WHERE path = ?",
               (state.size, state.mtime_ns, path))


def delete_file(db: sqlite3.Connection, path: str) -> None:
    """Forget a file."""
    row = db.execute("SELECT id FROM files WHERE path = ?", (path,)).fetchone()
    if row is not None:
        db.execute("DELETE FROM def_tokens WHERE rowid IN "
                   "(SELECT rowid FROM defs WHERE file_id = ?)", row)
        db.execute("DELETE FROM defs WHERE file_id = ?", row)
        db.execute("DELETE FROM imports WHERE file_id = ?", row)
        db.execute("DELETE FROM file_identifiers WHERE file_id = ?", row)
        db.execute("DELETE FROM files WHERE id = ?", row)
