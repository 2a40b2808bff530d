"""The workspace index: files on disk and open buffers, kept in SQLite, queried for a cursor."""

from __future__ import annotations

import ctypes
import gc
import hashlib
import importlib
import logging
import multiprocessing
import os
import shutil
import signal
import sqlite3
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

from osslsp.index.extract import Definition, FileSummary, extract
from osslsp.index.files import MAX_FILE_BYTES, IgnoreRules, WorkspaceFile, indexable, \
    unreadable_reason, walked, workspace_files
from osslsp.index.resolve import ModuleResolver
from osslsp.index.retrieval import Retriever, Snippet
from osslsp.index.secrets import is_secret_path, redact_summary
from osslsp.index.store import RANKS_STALE, FileState, IndexStore, SummaryRows, \
    default_db_path, summary_rows
from osslsp.languages import language_for_path

log = logging.getLogger(__name__)
Progress = Callable[[int, int, str], None]
# A worker's task: files up to this many bytes together (a larger file alone), at most
# BATCH_FILES of them. Small tasks keep results flowing to the writer and the workers finishing
# together; the largest files come first, so the tasks at the end are the smallest.
BATCH_BYTES = 256 * 1024
BATCH_FILES = 16
# Files written per transaction: each commit flushes a segment of the bodies' full-text index
# (and many small ones cost merges). Written once extracted, so that the write lock is held only
# while writing (about 50 ms), never while workers extract.
WRITE_FILES = 128
WORKER_NICENESS = 2  # added to the workers' nice value (each gets 0.64 of this process's CPU share)
PARALLEL_MIN_FILES = 64  # below this, starting worker processes costs more than it saves
WORKERS = max(1, min(2, os.cpu_count() or 1))
PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
PAGERANK_ITERATIONS = 20  # at most
PAGERANK_TOLERANCE = 1e-4  # total change of the ranks (which sum to 1) small enough to stop at
PAGERANK_DAMPING = 0.85
COMMON_NAME_FILES = 8  # a name defined in more files than this says nothing about relations
SKIPPED = summary_rows(FileSummary("", (), (), ""))  # binary or generated: no content
# Test directories are indexed in a second pass: retrieval for the code being written rarely needs
# them, and in large repositories they hold most of the bytes (63% of CPython's parse time).
DEFERRED_DIRECTORIES = frozenset({"test", "tests", "testing", "__tests__"})


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


# What a worker sends back for one file, plain tuples to pickle cheaply: path, state, the rows
# to store (None: unchanged content, or not indexable) and why a file is not indexable (or None).
_Extracted = tuple[str, FileState, SummaryRows | None, str | None]


def _content_hash(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def _extract_file(root: str, file: WorkspaceFile, known_hash: str | None) -> _Extracted:
    """Read, hash and extract one file (runs in worker processes)."""
    try:
        data = (Path(root) / file.path).read_bytes()
    except OSError as error:
        return file.path, FileState(file.size, file.mtime_ns, ""), None, str(error)
    state = FileState(len(data), file.mtime_ns, _content_hash(data))
    if state.hash == known_hash:
        return file.path, state, None, None
    reason = unreadable_reason(data)
    if reason is not None:
        return file.path, state, None, reason
    return file.path, state, summary_rows(redact_summary(extract(file.language, data), data)), None


def is_deferred(path: str) -> bool:
    """Whether a file lies in a test directory, indexed after everything else."""
    return not DEFERRED_DIRECTORIES.isdisjoint(path.split("/")[:-1])


def _worker_start() -> multiprocessing.context.BaseContext:
    """How extraction workers start: forked when this process runs a single thread (at once, with
    the extractor already imported: a spawned worker takes 0.3 s of CPU to get there), spawned
    otherwise (a fork copies locks that other threads hold, and the server's threads)."""
    if sys.platform == "linux" and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def _start_worker(parent: int) -> None:
    """A worker's start: it dies with the process that started it, and yields the CPU to it.

    A worker of a killed index lived on, blocked reading the task queue whose writing end its
    siblings hold open. On Linux the kernel kills it when its parent dies (PR_SET_PDEATHSIG);
    a parent already gone before that took effect is seen by the parent pid having changed.
    Yielding the CPU: the server answers the editor while workers extract, and the writer keeps
    up with them instead of storing a backlog after they finish.
    """
    if sys.platform == "linux":
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:
            os._exit(0)
    if hasattr(os, "nice"):
        os.nice(WORKER_NICENESS)


def _extract_batch(root: str, batch: list[tuple[WorkspaceFile, str | None]]) -> list[_Extracted]:
    return [_extract_file(root, file, known) for file, known in batch]


def _batches(work: list[tuple[WorkspaceFile, str | None]]
             ) -> list[list[tuple[WorkspaceFile, str | None]]]:
    """Work split into the tasks one worker extracts at a time."""
    batches: list[list[tuple[WorkspaceFile, str | None]]] = []
    size = BATCH_BYTES
    for item in work:
        if size + item[0].size > BATCH_BYTES or len(batches[-1]) == BATCH_FILES:
            batches.append([])
            size = 0
        batches[-1].append(item)
        size += item[0].size
    return batches


@contextmanager
def _collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off for a while. A refresh allocates what holds no cycles
    (the workers' rows: tuples of strings and numbers, the ranking's arrays), in such numbers
    that a cold index set off about 300 collections (0.1 s of this process's CPU)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _pagerank_scores(count: int, sources: Sequence[int], targets: Sequence[int],
                     weights: Sequence[float]) -> list[float]:
    """PageRank of nodes 0..count-1, given weighted links (parallel arrays; repeats add up).

    An iteration is two passes in C over all links (about 110,000 in CPython's standard library):
    each link's flow, then `bincount` summing the flows into their targets.
    """
    # Imported here, not with this module: numpy takes 0.2 s to import and starts BLAS threads,
    # which the extraction workers need not copy. A cold refresh imports it while they work.
    import numpy

    if not count:
        return []
    source = numpy.asarray(sources, dtype=numpy.intp)
    target = numpy.asarray(targets, dtype=numpy.intp)
    weight = numpy.asarray(weights, dtype=numpy.float64)
    totals = numpy.bincount(source, weight, minlength=count)
    share = PAGERANK_DAMPING * weight / totals[source]  # a node's shares sum to the damping
    dangling = totals == 0  # nodes linking nowhere give their rank to all
    rank = numpy.full(count, 1.0 / count)
    for _ in range(PAGERANK_ITERATIONS):
        base = (1.0 - PAGERANK_DAMPING + PAGERANK_DAMPING * rank[dangling].sum()) / count
        next_rank = base + numpy.bincount(target, rank[source] * share, minlength=count)
        change = numpy.abs(next_rank - rank).sum()
        rank = next_rank
        if change < PAGERANK_TOLERANCE:
            break
    return rank.tolist()


class WorkspaceIndex:
    """The index of one workspace. Refresh on one thread while others retrieve."""

    def __init__(self, root: Path, cache_dir: Path | None = None) -> None:
        self.root = Path(root).resolve()
        db_path = default_db_path(self.root, cache_dir)
        self._temporary: Path | None = None  # where the index lives when the cache cannot hold it
        try:
            self.store = IndexStore(db_path, self.root)
        except (OSError, sqlite3.Error) as error:
            # A cache folder that cannot be written (read-only, not a folder, another user's):
            # this session indexes into a private temporary folder, removed at close.
            self._temporary = Path(tempfile.mkdtemp(prefix="osslsp-index-"))
            log.warning("osslsp: the index cannot be kept in %s (%s); this session's index is "
                        "in %s", db_path.parent, error, self._temporary)
            self.store = IndexStore(default_db_path(self.root, self._temporary), self.root)
        self._full = False  # a write found the disk full, and said so
        self._buffers: set[str] = set()
        self._refresh_lock = threading.Lock()
        self._resolver_lock = threading.Lock()
        self._resolver: ModuleResolver | None = None
        self.related_cache: dict[str, list[Definition]] = {}  # per file, until the index changes
        self._watcher: threading.Thread | None = None
        self._stop_watching = threading.Event()
        self._closing = threading.Event()  # set by `close`: a refresh stops at its next batch

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
            with self.store.inline_checkpoints(), _collector_paused():
                stats = self._refresh_held(started, progress, cancel)
            changed = stats.changed
        if changed:
            # What this process holds now (the index's tables, the server's model) lives long:
            # frozen, it is no longer walked by the collector's full passes, which took 30-50 ms
            # and landed on whatever ran then, a keystroke's re-index or retrieval.
            gc.freeze()
        return stats

    def _refresh_held(self, started: float, progress: Progress | None,
                      cancel: threading.Event | None) -> IndexStats:
        """`refresh` once this process holds the index's writer lock."""
        known = self.store.file_states()
        current = [file for file in workspace_files(self.root) if file.path not in
                   self._buffers]
        present = {file.path for file in current} | self._buffers
        gone = [path for path in known if path not in present]
        touched = [file for file in current if file.path not in known or
                   (known[file.path].size, known[file.path].mtime_ns) !=
                   (file.size, file.mtime_ns)]
        with self.store.body_merges_deferred(len(touched) > WRITE_FILES):
            changed, cancelled, usable_at = self._extract_all(touched, known, progress,
                                                              cancel)
        if gone:
            with self.store.transaction() as db:
                IndexStore.ranks_stale(db)
                for path in gone:
                    IndexStore.delete_file(db, path)
        # Ranks stale without changes: an earlier refresh stored files but was killed (or
        # cancelled) before ranking them.
        if changed or gone or self.store.meta(RANKS_STALE):
            self._paths_changed()
            self.related_cache.clear()
            if not cancelled:  # ranked while the bodies' index is merged
                self.store.set_ranks(self._pagerank())
            self.store.names_changed()
        self.store.merges_done()
        self.store.set_meta("refresh_seconds", f"{time.perf_counter() - started:.3f}")
        self.store.set_meta("usable_seconds", f"{usable_at - started:.3f}")
        return self._stats(changed, cancelled)  # before `close` may take the lock

    def _extract_all(self, touched: list[WorkspaceFile], known: dict[str, FileState],
                     progress: Progress | None,
                     cancel: threading.Event | None) -> tuple[int, bool, float]:
        """Extract touched files (in worker processes when many) and store what changed.

        Two passes: everything but test directories, then those. Returns the files changed,
        whether it was cancelled, and when (perf_counter) the first pass was searchable.
        """
        # Largest files first: the last tasks are small, so that the workers finish together.
        work = [(file, known[file.path].hash if file.path in known else None)
                for file in sorted(touched, key=lambda file: file.size, reverse=True)]
        first = [item for item in work if not is_deferred(item[0].path)]
        deferred = [item for item in work if is_deferred(item[0].path)]
        executor = None
        if len(work) >= PARALLEL_MIN_FILES and WORKERS > 1:
            executor = ProcessPoolExecutor(WORKERS, mp_context=_worker_start(),
                                           initializer=_start_worker, initargs=(os.getpid(),))
        counts = [0, 0]  # files done, files changed
        cancelled = False
        try:
            # Both passes are queued at once, so that workers go on with test directories while
            # this process stores the first pass and builds its lookup indexes.
            first_results = self._results(executor, _batches(first))
            deferred_results = self._results(executor, _batches(deferred))
            if executor is not None:  # the workers have started: they do not inherit the thread
                threading.Thread(target=importlib.import_module, args=("numpy",),
                                 name="osslsp-index-import", daemon=True).start()
            if known and not self.store.lookup_indexes_missing():
                cancelled = self._store_pass(first_results, counts, len(work),
                                             progress, cancel)
            else:  # lookup indexes built once after the first pass's rows (again, when a
                # process filling the index this way was killed)
                with self.store.bulk_load():
                    cancelled = self._store_pass(first_results, counts, len(work),
                                                 progress, cancel)
            usable_at = time.perf_counter()
            if deferred and not cancelled:
                self._paths_changed()
                self.store.names_changed()
                cancelled = self._store_pass(deferred_results, counts, len(work),
                                             progress, cancel)
        finally:
            if executor is not None:
                executor.shutdown(wait=not cancelled, cancel_futures=True)
        return counts[1], cancelled, usable_at

    def _store_pass(self, results: Iterator[list[_Extracted]], counts: list[int], total: int, progress: Progress | None,
                    cancel: threading.Event | None) -> bool:
        """Store one pass's extracted batches, counting into `counts`; True when cancelled."""
        pending: list[_Extracted] = []
        cancelled = False
        for batch_results in results:
            pending.extend(batch_results)
            counts[0] += len(batch_results)
            if progress is not None:
                progress(counts[0], total, batch_results[-1][0])
            cancelled = self._closing.is_set() or (cancel is not None and cancel.is_set())
            if cancelled:
                break
            if len(pending) >= WRITE_FILES:
                counts[1] += self._store_results(pending)
                pending = []
        counts[1] += self._store_results(pending)
        return cancelled

    def _store_results(self, results: list[_Extracted]) -> int:
        """Store extraction results in one transaction; how many changed the index."""
        stored: list[tuple[str, FileState, SummaryRows]] = []
        if results:
            with self.store.transaction() as db:
                for path, state, rows, reason in results:
                    if rows is None and reason is None:  # same content
                        IndexStore.touch_file(db, path, state)
                    else:  # one not indexable is remembered without content, so not read again
                        stored.append((path, state, rows or SKIPPED))
                if stored:
                    IndexStore.ranks_stale(db)
                IndexStore.put_files(db, stored)
        return len(stored)

    def _results(self, executor: ProcessPoolExecutor | None,
                 batches: list[list[tuple[WorkspaceFile, str | None]]]
                 ) -> Iterator[list[_Extracted]]:
        """Extracted batches as they finish, submitted to the workers now; extracted in this
        process when workers are absent or broken."""
        root = str(self.root)
        submitted: dict[Future[list[_Extracted]], list[tuple[WorkspaceFile, str | None]]] = {}
        left: list[list[tuple[WorkspaceFile, str | None]]] = []
        for batch in batches:
            if executor is None:
                left.append(batch)
                continue
            try:
                submitted[executor.submit(_extract_batch, root, batch)] = batch
            except BrokenProcessPool:  # an earlier pass found that workers cannot run
                left.append(batch)
        return self._extracted_as_done(root, submitted, left)

    @staticmethod
    def _extracted_as_done(root: str,
                           submitted: dict[Future[list[_Extracted]],
                                           list[tuple[WorkspaceFile, str | None]]],
                           left: list[list[tuple[WorkspaceFile, str | None]]]
                           ) -> Iterator[list[_Extracted]]:
        """The workers' results in the order they finish (the writer never waits on one large
        task while others are done), then this process's extraction of the batches they left."""
        for future in as_completed(submitted):
            try:
                yield future.result()
            except BrokenProcessPool:  # a worker could not start (no `__main__` guard) or died
                left.append(submitted[future])
        for batch in left:
            yield _extract_batch(root, batch)

    def _pagerank(self) -> dict[int, float]:
        """Each file's PageRank (by file id) in the graph of files naming what others define."""
        import numpy  # see `_pagerank_scores`

        defined, identifier_rows = self.store.reference_graph_inputs()
        file_ids = [file_id for file_id, _ in identifier_rows]
        number = {file_id: node for node, file_id in enumerate(file_ids)}
        # Only names defined in few files tell of relations; each gets a number, and its files
        # lie at definers[first[n]:first[n] + count[n]].
        telling = {name: index for index, name in enumerate(
            name for name, files in defined.items() if len(files) <= COMMON_NAME_FILES)}
        definer_lists = [[number[file_id] for file_id in defined[name]] for name in telling]
        count = numpy.array([len(files) for files in definer_lists], dtype=numpy.intp)
        first = numpy.cumsum(count) - count
        definers = numpy.array([node for files in definer_lists for node in files],
                               dtype=numpy.intp)
        # The names each file mentions (a set intersection in C per file), then every
        # (file, name) pair expanded to a link to each file defining the name, weighted by how
        # many do; a file's links to itself dropped.
        named: list[int] = []
        named_per_file: list[int] = []
        for _, identifiers in identifier_rows:
            found = telling.keys() & identifiers.split()
            named.extend(map(telling.__getitem__, found))
            named_per_file.append(len(found))
        name = numpy.array(named, dtype=numpy.intp)
        mentioner = numpy.repeat(numpy.arange(len(file_ids)), named_per_file)
        links = count[name]
        ends = numpy.cumsum(links)
        within = numpy.arange(ends[-1] if len(ends) else 0) - numpy.repeat(ends - links, links)
        sources = numpy.repeat(mentioner, links)
        targets = definers[numpy.repeat(first[name], links) + within]
        weights = numpy.repeat(1.0 / count[name], links)
        elsewhere = sources != targets
        return dict(zip(file_ids, _pagerank_scores(len(file_ids), sources[elsewhere],
                                                   targets[elsewhere], weights[elsewhere])))

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
        summary = redact_summary(extract(language.name, data), data)
        with self._space_checked(), self.store.transaction() as db:
            new = db.execute("SELECT 1 FROM files WHERE path = ?", (relative,)).fetchone() is None
            IndexStore.put_file(db, relative, FileState(len(data), -1, _content_hash(data)),
                                summary)
        if self._full:  # not stored
            return
        self._buffers.add(relative)
        self.store.names_changed([relative])
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
                    IndexStore.delete_file(db, relative)
            else:
                self._store_results([_extract_file(str(self.root), file, None)])
        if self._full:
            return
        self.store.names_changed([relative])
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
