"""The index on disk: one SQLite file per workspace, safe to read from several threads."""

from __future__ import annotations

import fcntl
import hashlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from osslsp import paths
from osslsp.index.extract import Definition, Import
from osslsp.index.rows import INDEXES, LOOKUP_INDEXES, RANKS_STALE, SCHEMA, SCHEMA_VERSION, \
    FileState, run_script

FTS_AUTOMERGE = 4  # segments of a level the bodies' index merges (FTS5's default)
_SET_BODY_AUTOMERGE = "INSERT INTO def_tokens(def_tokens, rank) VALUES('automerge', ?)"
CHECKPOINT_EVERY_WRITES = 16
# A checkpoint waits for writes to pause this long (typing, whose every change is a write: its
# disk flush would slow the next keystroke's write several times over), or at most the longest.
CHECKPOINT_IDLE_SECONDS = 1.0
CHECKPOINT_LONGEST_WAIT_SECONDS = 30.0
INLINE_CHECKPOINT_PAGES = 1000  # SQLite's default
BULK_CACHE_KIB = 64 * 1024  # page cache while an empty index is filled
DEFAULT_CACHE_KIB = 2000  # SQLite's default
MMAP_BYTES = 256 * 1024 * 1024  # address space, not memory: pages are the OS's file cache
# How often a process waiting for another's refresh of the same index looks again: `flock` cannot
# be interrupted, so the wait is a series of tries that can stop (a cancel, a close).
WRITER_POLL_SECONDS = 0.05
_DEF_COLUMNS = "d.name, d.kind, d.scope, d.signature, d.doc, d.line, d.end_line, f.path"


def default_db_path(root: Path, cache_dir: Path | None = None) -> Path:
    """Where a workspace's index lives: one file per workspace under the user's cache."""
    directory = cache_dir or paths.cache_dir() / "index"
    digest = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:16]
    return directory / f"{root.resolve().name or 'root'}-{digest}.sqlite3"


def _private(db_path: Path) -> None:
    """The index's folder 0700 and its database 0600 (SQLite gives its journal files the
    database's mode): an index holds the workspace's code, readable by its owner only."""
    db_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    db_path.parent.chmod(0o700)
    os.close(os.open(db_path, os.O_WRONLY | os.O_CREAT, 0o600))
    db_path.chmod(0o600)


class IndexStore:
    """SQLite storage of file summaries. Reads from any thread; writes are serialised."""

    def __init__(self, db_path: Path, root: Path,
                 run_aside: Callable[[Callable[[], None], str], None] | None = None) -> None:
        self.db_path = db_path
        # where checkpoints and merges run (see `IndexPolicy.run_aside`); None: where they are due
        self.run_aside = run_aside
        self.root_key = str(root.resolve())
        self._local = threading.local()
        self._write_lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        self._writes_since_checkpoint = 0
        self._last_write = 0.0  # time.monotonic() of the last write transaction
        self._checkpointing = threading.Event()
        self._merged: threading.Event | None = None  # see `body_merges_deferred`
        if not self._usable():
            # Another process (another editor window) may be making it at this moment: the one
            # holding the writer's lock does, the others wait until it is usable.
            with self.writer_lock(self._usable) as mine:
                if mine and not self._usable():
                    self._recreate()

    def _connect(self) -> sqlite3.Connection:
        _private(self.db_path)
        connection = sqlite3.connect(self.db_path, check_same_thread=False, timeout=30)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        # Checkpoints are the store's to time (see `_after_write`): aside, one never runs inside
        # a keystroke's write, where it copied about a thousand pages (20-30 ms).
        connection.execute("PRAGMA wal_autocheckpoint=0")
        # Retrieval reads rows all over the file: mapped pages skip a read() call per page.
        connection.execute(f"PRAGMA mmap_size={MMAP_BYTES}")
        self._connections.append(connection)
        return connection

    @property
    def db(self) -> sqlite3.Connection:
        """This thread's connection."""
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._local.connection = self._connect()
        return connection

    def _usable(self) -> bool:
        """Whether the file on disk is an intact index of this workspace in this schema."""
        self.close()  # opened anew: another process may have replaced the file
        if not self.db_path.exists():
            return False
        try:
            meta = dict(self.db.execute("SELECT key, value FROM meta"))
        except sqlite3.DatabaseError:
            return False
        return meta.get("schema") == SCHEMA_VERSION and meta.get("root") == self.root_key

    def _recreate(self) -> None:
        """Throw a damaged, foreign or missing index away and start an empty one."""
        self.close()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.db_path}{suffix}").unlink(missing_ok=True)
        with self.transaction() as db:
            run_script(db, SCHEMA + INDEXES)
            db.executemany("INSERT INTO meta VALUES (?, ?)",
                           [("schema", SCHEMA_VERSION), ("root", self.root_key)])

    @contextmanager
    def writer_lock(self, stopped: Callable[[], bool]) -> Iterator[bool]:
        """The right to build or refresh this index, exclusive among the processes sharing it
        (two editor windows on one workspace): a `flock` on a file next to the database, which
        the kernel releases when its holder dies. Yields True once held, False when `stopped()`
        said to give up waiting first."""
        _private(self.db_path)
        lock = os.open(f"{self.db_path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            while True:
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if stopped():
                        yield False
                        return
                    time.sleep(WRITER_POLL_SECONDS)
            yield True
        finally:
            os.close(lock)  # releases the lock

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (one writer at a time, among processes too)."""
        with self._write_lock:
            db = self.db
            try:
                # IMMEDIATE: the write lock is taken (waiting on another process's transaction)
                # before the first read. A transaction that read first and then wrote after
                # another process's commit failed at once with "database is locked".
                db.execute("BEGIN IMMEDIATE")
                yield db
                db.execute("COMMIT")
            except BaseException:
                # SQLite has rolled back already after some errors (a full disk): a ROLLBACK
                # then failed with "cannot rollback", which hid the error that mattered.
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
            self._after_write()

    @contextmanager
    def inline_checkpoints(self) -> Iterator[None]:
        """Checkpoint inside this thread's writes for a while: a refresh's many writes are off
        the keystroke path, and a checkpoint thread racing them slows them down."""
        self.db.execute(f"PRAGMA wal_autocheckpoint={INLINE_CHECKPOINT_PAGES}")
        try:
            yield
        finally:
            self.db.execute("PRAGMA wal_autocheckpoint=0")

    def _after_write(self) -> None:
        """Every CHECKPOINT_EVERY_WRITES transactions, fold the log into the database file, so
        that it stays short: aside (with a connection of its own) once writes pause, or at once
        on this connection when nothing runs aside."""
        if self.db.execute("PRAGMA wal_autocheckpoint").fetchone()[0]:
            return  # inside `inline_checkpoints`
        self._writes_since_checkpoint += 1
        self._last_write = time.monotonic()
        if self._writes_since_checkpoint < CHECKPOINT_EVERY_WRITES or self._checkpointing.is_set():
            return
        self._writes_since_checkpoint = 0
        if self.run_aside is None:
            self.db.execute("PRAGMA wal_checkpoint(PASSIVE)")
            return
        self._checkpointing.set()
        self.run_aside(self._checkpoint, "osslsp-index-checkpoint")

    def _checkpoint(self) -> None:
        """Once writes pause, fold the log into the database file."""
        latest = time.monotonic() + CHECKPOINT_LONGEST_WAIT_SECONDS
        while (wait := min(self._last_write + CHECKPOINT_IDLE_SECONDS, latest) -
               time.monotonic()) > 0:
            time.sleep(wait)
        try:
            connection = self._helper_connection()
            try:
                connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
            finally:
                connection.close()
        except sqlite3.Error:
            pass  # busy or gone: the next checkpoint folds in what this one left
        finally:
            self._checkpointing.clear()

    def _helper_connection(self) -> sqlite3.Connection:
        """A connection for a helper thread to close when done (this thread's would stay open
        until `close`). mode=rw: an index deleted meanwhile (closed, say) is not created again,
        empty."""
        return sqlite3.connect(f"{self.db_path.resolve().as_uri()}?mode=rw", uri=True,
                               timeout=30)

    def close(self) -> None:
        """Close every connection this store opened, once no write is under way."""
        with self._write_lock:
            for connection in self._connections:
                connection.close()
            self._connections.clear()
            self._local = threading.local()

    @contextmanager
    def bulk_load(self) -> Iterator[None]:
        """Fill an empty index faster: lookup indexes are built once, after the rows, and commits
        do not wait for the disk (the index is a cache: a crash meanwhile costs a rebuild)."""
        with self.transaction() as db:
            for name in LOOKUP_INDEXES:
                db.execute(f"DROP INDEX IF EXISTS {name}")
        self.db.execute("PRAGMA synchronous=OFF")
        self.db.execute(f"PRAGMA cache_size=-{BULK_CACHE_KIB}")
        try:
            yield
        finally:
            with self.transaction() as db:
                run_script(db, INDEXES)
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute(f"PRAGMA cache_size=-{DEFAULT_CACHE_KIB}")

    def lookup_indexes_missing(self) -> bool:
        """Whether the lookup indexes are gone: a `bulk_load` did not finish (killed)."""
        marks = ",".join("?" * len(LOOKUP_INDEXES))
        return self.db.execute(f"SELECT count(*) FROM sqlite_master WHERE type = 'index' AND "
                               f"name IN ({marks})", LOOKUP_INDEXES
                               ).fetchone()[0] < len(LOOKUP_INDEXES)

    @contextmanager
    def body_merges_deferred(self, defer: bool) -> Iterator[None]:
        """Write many files without merging the bodies' full-text index as it grows, then merge
        it into one segment. Each write transaction adds a segment, which FTS5 merges in fours as
        more come: the merges of a cold index cost as much as merging all at once, and the large
        segments they leave were merged again on the fifth keystroke's re-index (20-50 ms).

        Run aside, the final merge runs inside SQLite, which lets go of the GIL: the caller ranks
        the files meanwhile (each alone would leave a core idle), and waits for it with
        `merges_done`."""
        if not defer:
            # merges back on if a refresh that deferred them never finished
            if self.db.execute("SELECT v FROM def_tokens_config WHERE k = 'automerge'"
                               ).fetchone() == (0,):
                self._set_body_automerge(FTS_AUTOMERGE)
            yield
            return
        self._set_body_automerge(0)
        try:
            yield
        finally:
            if self.run_aside is None:
                self._merge_bodies()
            else:
                merged = self._merged = threading.Event()

                def merge() -> None:
                    try:
                        self._merge_bodies()
                    finally:
                        merged.set()

                self.run_aside(merge, "osslsp-index-merge")

    def _merge_bodies(self) -> None:
        """Merge the bodies' index into one segment, then turn merges back on."""
        with self._write_lock:
            try:
                connection = self._helper_connection()
                try:
                    with connection:  # one transaction
                        connection.execute(
                            "INSERT INTO def_tokens(def_tokens) VALUES('optimize')")
                        connection.execute(_SET_BODY_AUTOMERGE, (FTS_AUTOMERGE,))
                finally:
                    connection.close()
            except sqlite3.Error:
                pass  # gone or full: the next refresh turns merges back on

    def merges_done(self) -> None:
        """Wait for the merge `body_merges_deferred` started, if any."""
        if self._merged is not None:
            self._merged.wait()
            self._merged = None

    def _set_body_automerge(self, segments: int) -> None:
        with self.transaction() as db:
            db.execute(_SET_BODY_AUTOMERGE, (segments,))

    def set_ranks(self, ranks: dict[int, float]) -> None:
        """Store each file's importance in the reference graph, by file id."""
        with self.transaction() as db:
            db.executemany("UPDATE files SET rank = ? WHERE id = ?",
                           [(rank, file_id) for file_id, rank in ranks.items()])
            db.execute("DELETE FROM meta WHERE key = ?", (RANKS_STALE,))

    def set_meta(self, key: str, value: str) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    # reads
    def meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def file_states(self) -> dict[str, FileState]:
        """Every indexed file and what it looked like when indexed."""
        return {path: FileState(size, mtime, digest) for path, size, mtime, digest in
                self.db.execute("SELECT path, size, mtime_ns, hash FROM files")}

    def paths(self) -> list[str]:
        return [path for (path,) in self.db.execute("SELECT path FROM files WHERE language != ''")]

    def definitions_named(self, name: str) -> list[Definition]:
        return self._definitions(f"SELECT {_DEF_COLUMNS} FROM defs d JOIN files f "
                                 "ON f.id = d.file_id WHERE d.name = ?", (name,))

    def definitions_prefixed(self, prefix: str, limit: int) -> list[Definition]:
        return self._definitions(
            f"SELECT {_DEF_COLUMNS} FROM defs d JOIN files f ON f.id = d.file_id "
            "WHERE d.name >= ? AND d.name < ? LIMIT ?", (prefix, prefix + "\uffff", limit))

    def members_of(self, path: str, scope: str) -> list[Definition]:
        return self._definitions(f"SELECT {_DEF_COLUMNS} FROM defs d JOIN files f "
                                 "ON f.id = d.file_id WHERE f.path = ? AND d.scope = ? "
                                 "ORDER BY d.line", (path, scope))

    def _definitions(self, sql: str, parameters: tuple) -> list[Definition]:
        return [Definition(name, kind, scope, signature, doc, line, end_line, path)
                for name, kind, scope, signature, doc, line, end_line, path in
                self.db.execute(sql, parameters)]

    def definitions_by_rowid(self, rowids: list[int]) -> list[Definition]:
        """Definitions by row id, in the order asked."""
        if not rowids:
            return []
        marks = ",".join("?" * len(rowids))
        rows = {row[0]: row[1:] for row in self.db.execute(
            f"SELECT d.rowid, {_DEF_COLUMNS} FROM defs d JOIN files f ON f.id = d.file_id "
            f"WHERE d.rowid IN ({marks})", rowids)}
        return [Definition(*rows[rowid]) for rowid in rowids if rowid in rows]

    def bodies_matching(self, weighted_terms: list[tuple[float, str]], limit: int) -> list[int]:
        """Row ids of the definitions whose bodies hold the most weight of the given (weight,
        identifier) pairs, best first: one statement, each term's bodies summed in SQLite."""
        if not weighted_terms:
            return []
        each_term = " UNION ALL ".join(
            ["SELECT ? AS weight, rowid FROM def_tokens WHERE def_tokens MATCH ?"] *
            len(weighted_terms))
        parameters = [value for weight, term in weighted_terms for value in (weight, f'"{term}"')]
        return [rowid for (rowid,) in self.db.execute(
            f"SELECT rowid FROM ({each_term}) GROUP BY rowid ORDER BY sum(weight) DESC, rowid "
            "LIMIT ?", (*parameters, limit))]

    def imports_of(self, path: str) -> list[Import]:
        return [Import(module, name, bound, level, line, bool(wildcard))
                for module, name, bound, level, line, wildcard in self.db.execute(
                    "SELECT i.module, i.name, i.bound, i.level, i.line, i.wildcard FROM imports i "
                    "JOIN files f ON f.id = i.file_id WHERE f.path = ?", (path,))]

    def language_counts(self) -> dict[str, int]:
        return dict(self.db.execute("SELECT language, COUNT(*) FROM files WHERE language != '' "
                         "GROUP BY language"))

    def definition_count(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM defs").fetchone()[0]

    def body_term_counts(self) -> dict[str, int]:
        """How many bodies hold each identifier (folded to lower case)."""
        return dict(self.db.execute("SELECT term, doc FROM def_token_counts"))
