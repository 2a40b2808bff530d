"""The workspace index: files on disk and open buffers, kept in SQLite, queried for a cursor.

Four steps, a module each: `extract` (a file's definitions, imports and identifiers), `store`
(SQLite), `rank` (which files and definitions matter), `fit` (what a prompt's budget holds);
`refresh` runs the first three over the workspace. What the process may do for it (workers,
threads, the collector) is the caller's `IndexPolicy`.
"""

from __future__ import annotations

import logging
import shutil
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from osslsp.index.extract import Definition, extract
from osslsp.index.files import MAX_FILE_BYTES, IgnoreRules, indexable, walked
from osslsp.index.fit import Snippet
from osslsp.index.names import Lookups
from osslsp.index.policy import IndexPolicy
from osslsp.index.refresh import Progress, Refresh, content_hash, extract_file, store_results
from osslsp.index.resolve import ModuleResolver
from osslsp.index.retrieval import Retriever
from osslsp.index.rows import FileState, delete_file, put_file
from osslsp.index.secrets import is_secret_path, redact_summary
from osslsp.index.store import IndexStore, default_db_path
from osslsp.languages import language_for_path

log = logging.getLogger(__name__)


class IndexClosed(RuntimeError):
    """A refresh was asked of an index that is closed."""


class IndexFull(RuntimeError):
    """The index's disk is full: told once, then writes are skipped until one succeeds."""


@dataclass(frozen=True)
class IndexStats:
    """What an index holds and how long its last refresh took."""

    files: int
    definitions: int
    languages: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    db_path: str = ""
    changed: int = 0  # files (re)extracted by the last refresh
    cancelled: bool = False
    usable_seconds: float = 0.0  # when all but test directories were searchable (last refresh)


class WorkspaceIndex:
    """The index of one workspace. Refresh on one thread while others retrieve."""

    def __init__(self, root: Path, cache_dir: Path | None = None,
                 policy: IndexPolicy = IndexPolicy(), fold_python: bool = True) -> None:
        """`fold_python`: Python files are folded before parsing (see `bodies`), 2.5-3 times
        faster on a cold index, with the differences from a whole parse that
        tests/index/folding_differences.json lists."""
        self.root = Path(root).resolve()
        self.policy = policy
        self.fold_python = fold_python
        db_path = default_db_path(self.root, cache_dir)
        self._temporary: Path | None = None  # where the index lives when the cache cannot hold it
        try:
            self.store = IndexStore(db_path, self.root, policy.run_aside)
        except (OSError, sqlite3.Error) as error:
            # A cache folder that cannot be written (read-only, not a folder, another user's):
            # this session indexes into a private temporary folder, removed at close.
            self._temporary = Path(tempfile.mkdtemp(prefix="osslsp-index-"))
            log.warning("osslsp: the index cannot be kept in %s (%s); this session's index is "
                        "in %s", db_path.parent, error, self._temporary)
            self.store = IndexStore(default_db_path(self.root, self._temporary), self.root,
                                    policy.run_aside)
        self.lookups = Lookups.of(self.store)
        self._full = False  # a write found the disk full, and said so
        self._buffers: set[str] = set()
        self._refresh_lock = threading.Lock()
        self._resolver_lock = threading.Lock()
        self._resolver: ModuleResolver | None = None
        self.related_cache: dict[str, list[Definition]] = {}  # per file, until the index changes
        self._watcher: threading.Thread | None = None
        self._stop_watching = threading.Event()
        self._closing = threading.Event()  # set by `close`: a refresh stops at its next batch

    def use_policy(self, policy: IndexPolicy) -> None:
        """Follow the policy of the caller that runs this index from now on."""
        self.policy = policy
        self.store.run_aside = policy.run_aside

    # paths
    def relative(self, path: Path | str) -> str | None:
        """The workspace-relative posix path of a file, None when it lies outside."""
        try:
            return Path(path).resolve().relative_to(self.root).as_posix()
        except ValueError:
            return None

    @property
    def resolver(self) -> ModuleResolver:
        with self._resolver_lock:
            if self._resolver is None:
                self._resolver = ModuleResolver(self.store.paths())
            return self._resolver

    def _paths_changed(self) -> None:
        with self._resolver_lock:
            self._resolver = None

    def _forget(self) -> None:
        """Many files were written: what was derived from them is made again when asked."""
        self._paths_changed()
        self.related_cache.clear()
        self.lookups.changed()

    # building
    def refresh(self, progress: Progress | None = None,
                cancel: threading.Event | None = None) -> IndexStats:
        """Bring the index up to date with the workspace on disk: new, changed, gone files."""
        started = time.perf_counter()

        def stopped() -> bool:
            return self._closing.is_set() or (cancel is not None and cancel.is_set())

        with self._refresh_lock, self._store_open(), self.store.writer_lock(stopped) as writer:
            if not writer:  # stopped while another process refreshed this index
                return self._stats(0, True)
            with self.store.inline_checkpoints(), self.policy.during_refresh():
                refresh = Refresh(self.root, self.store, self.policy, self.fold_python,
                                  self._forget)
                changed, cancelled, usable_at = refresh.run(self._buffers, progress, stopped)
                self.store.set_meta("refresh_seconds", f"{time.perf_counter() - started:.3f}")
                self.store.set_meta("usable_seconds", f"{usable_at - started:.3f}")
            stats = self._stats(changed, cancelled)  # before `close` may take the lock
        if changed:
            self.policy.after_change()
        return stats

    # editor buffers and outside changes
    def set_buffer(self, path: Path, text: str) -> None:
        """An open editor buffer is the truth for its file until dropped."""
        relative = self.relative(path)
        language = language_for_path(path)
        if relative is None or language is None or is_secret_path(relative):
            return
        data = text.encode()
        if len(data) > MAX_FILE_BYTES:  # skipped as on disk (data or generated): parsing takes minutes
            return
        summary = redact_summary(extract(language.name, data, fold_python=self.fold_python), data)
        with self._space_checked(), self.store.transaction() as db:
            new = db.execute("SELECT 1 FROM files WHERE path = ?", (relative,)).fetchone() is None
            put_file(db, relative, FileState(len(data), -1, content_hash(data)), summary)
        if self._full:  # not stored
            return
        self._buffers.add(relative)
        self.lookups.changed([relative])
        for cached in [path for path in self.related_cache if path != relative]:
            del self.related_cache[cached]
        if new:
            self._paths_changed()

    def drop_buffer(self, path: Path) -> None:
        """A buffer was closed: read the file from disk again."""
        relative = self.relative(path)
        if relative is None:
            return
        self._buffers.discard(relative)
        self.reindex_path(relative)

    def reindex_path(self, relative: str) -> None:
        """Re-read one file from disk (or forget it when gone or no longer indexable)."""
        if relative in self._buffers:
            return
        full = self.root / relative
        try:
            stat = full.stat() if not full.is_symlink() else None
        except OSError:
            stat = None
        rules = IgnoreRules(self.root)
        file = indexable(relative, stat, rules) if stat is not None and \
            walked(relative, rules) else None
        with self._space_checked():
            if file is None:
                with self.store.transaction() as db:
                    delete_file(db, relative)
            else:
                store_results(self.store, [extract_file(str(self.root), file, None,
                                                        self.fold_python)])
        if self._full:
            return
        self.lookups.changed([relative])
        self._paths_changed()

    @contextmanager
    def _space_checked(self) -> Iterator[None]:
        """A write of one file (a keystroke's, the watcher's) on a disk that may be full: the
        first failure raises IndexFull, later ones are skipped quietly (the index keeps what it
        holds) until a write succeeds again."""
        try:
            yield
        except sqlite3.OperationalError as error:
            if "full" not in str(error):
                raise
            if not self._full:
                self._full = True
                raise IndexFull(f"the index {self.store.db_path} cannot grow ({error}): it keeps "
                                "what it holds until space is freed") from None
            return
        self._full = False

    def start_watching(self) -> None:
        """Pick up files changed outside the editor, on a daemon thread."""
        if self._watcher is not None:
            return
        self._stop_watching.clear()
        self._watcher = threading.Thread(target=self._watch, name="osslsp-index-watch",
                                         daemon=True)
        self._watcher.start()

    def _watch(self) -> None:
        import watchfiles

        for changes in watchfiles.watch(self.root, stop_event=self._stop_watching,
                                        rust_timeout=500, yield_on_timeout=False):
            for _, changed_path in changes:
                relative = self.relative(changed_path)
                if relative is not None and language_for_path(relative) is not None and \
                        not relative.startswith(".git/"):
                    try:
                        self.reindex_path(relative)
                    except IndexFull as error:  # the watcher goes on
                        log.warning("osslsp: %s", error)

    def stop_watching(self) -> None:
        if self._watcher is not None:
            self._stop_watching.set()
            self._watcher.join(timeout=5)
            self._watcher = None

    # queries
    def context_for(self, path: Path, text: str, offset: int, budget_tokens: int,
                    count_tokens: Callable[[str], int]) -> list[Snippet]:
        """Snippets for a prompt at a cursor, most relevant first, within the token budget."""
        relative = self.relative(path) or Path(path).name
        language = language_for_path(path)
        if language is None or budget_tokens <= 0:
            return []
        retriever = Retriever(self.store, self.resolver, self.related_cache)
        return retriever.context_for(relative, language.name, text, offset, budget_tokens,
                                     count_tokens)

    def definitions_named(self, name: str) -> list[Definition]:
        """Every definition of a name in the workspace."""
        return self.store.definitions_named(name)

    def stats(self) -> IndexStats:
        return self._stats(0, False)

    def _stats(self, changed: int, cancelled: bool) -> IndexStats:
        languages = self.store.language_counts()
        return IndexStats(files=sum(languages.values()), definitions=self.store.definition_count(),
                          languages=languages, seconds=float(self.store.meta("refresh_seconds") or 0),
                          db_path=str(self.store.db_path), changed=changed, cancelled=cancelled,
                          usable_seconds=float(self.store.meta("usable_seconds") or 0))

    @contextmanager
    def _store_open(self) -> Iterator[None]:
        """Inside the refresh lock: a refresh that comes after `close` ends before it starts."""
        if self._closing.is_set():
            raise IndexClosed(f"the index of {self.root} is closed")
        yield

    def close(self) -> None:
        """Stop watching and any refresh (at its next batch), then close the store: closing the
        connection another thread is using crashed the process."""
        self._closing.set()
        self.stop_watching()
        with self._refresh_lock:
            self.store.close()
        if self._temporary is not None:
            shutil.rmtree(self._temporary, ignore_errors=True)
