"""A refresh: the workspace's files compared with what the store holds, the new and changed ones
extracted (in worker processes when many and the caller's policy has them) and stored, test
directories last, the gone ones forgotten, then every file ranked again."""

from __future__ import annotations

import hashlib
import importlib
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, as_completed
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from osslsp.index.extract import FileSummary, extract
from osslsp.index.files import WorkspaceFile, unreadable_reason, workspace_files
from osslsp.index.policy import IndexPolicy
from osslsp.index.rank import file_ranks
from osslsp.index.rows import RANKS_STALE, FileState, SummaryRows, delete_file, put_files, \
    ranks_stale, summary_rows, touch_file
from osslsp.index.secrets import redact_summary
from osslsp.index.store import IndexStore

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
PARALLEL_MIN_FILES = 64  # below this, starting worker processes costs more than it saves
SKIPPED = summary_rows(FileSummary("", (), (), ""))  # binary or generated: no content
# Test directories are indexed in a second pass: retrieval for the code being written rarely needs
# them, and in large repositories they hold most of the bytes (63% of CPython's parse time).
DEFERRED_DIRECTORIES = frozenset({"test", "tests", "testing", "__tests__"})

# What a worker sends back for one file, plain tuples to pickle cheaply: path, state, the rows
# to store (None: unchanged content, or not indexable) and why a file is not indexable (or None).
Extracted = tuple[str, FileState, SummaryRows | None, str | None]
# A worker's task: files with the hash their content had when last indexed (None: new).
Batch = list[tuple[WorkspaceFile, str | None]]


def content_hash(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def extract_file(root: str, file: WorkspaceFile, known_hash: str | None,
                 fold_python: bool) -> Extracted:
    """Read, hash and extract one file (runs in worker processes)."""
    try:
        data = (Path(root) / file.path).read_bytes()
    except OSError as error:
        return file.path, FileState(file.size, file.mtime_ns, ""), None, str(error)
    state = FileState(len(data), file.mtime_ns, content_hash(data))
    if state.hash == known_hash:
        return file.path, state, None, None
    reason = unreadable_reason(data)
    if reason is not None:
        return file.path, state, None, reason
    summary = extract(file.language, data, fold_python=fold_python)
    return file.path, state, summary_rows(redact_summary(summary, data)), None


def _extract_batch(root: str, batch: Batch, fold_python: bool) -> list[Extracted]:
    return [extract_file(root, file, known, fold_python) for file, known in batch]


def is_deferred(path: str) -> bool:
    """Whether a file lies in a test directory, indexed after everything else."""
    return not DEFERRED_DIRECTORIES.isdisjoint(path.split("/")[:-1])


def _batches(work: Batch) -> list[Batch]:
    """Work split into the tasks one worker extracts at a time."""
    batches: list[Batch] = []
    size = BATCH_BYTES
    for item in work:
        if size + item[0].size > BATCH_BYTES or len(batches[-1]) == BATCH_FILES:
            batches.append([])
            size = 0
        batches[-1].append(item)
        size += item[0].size
    return batches


def store_results(store: IndexStore, results: list[Extracted]) -> int:
    """Store extraction results in one transaction; how many changed the index."""
    stored: list[tuple[str, FileState, SummaryRows]] = []
    if results:
        with store.transaction() as db:
            for path, state, summary, reason in results:
                if summary is None and reason is None:  # same content
                    touch_file(db, path, state)
                else:  # one not indexable is remembered without content, so not read again
                    stored.append((path, state, summary or SKIPPED))
            if stored:
                ranks_stale(db)
            put_files(db, stored)
    return len(stored)


class Refresh:
    """One refresh of a store from the files under a root, once its writer lock is held."""

    def __init__(self, root: Path, store: IndexStore, policy: IndexPolicy, fold_python: bool,
                 forget: Callable[[], None]) -> None:
        self.root = root
        self.store = store
        self.policy = policy
        self.fold_python = fold_python
        # drops what the index's readers derived from the files (paths, names, related code)
        self.forget = forget

    def run(self, buffers: set[str], progress: Progress | None,
            stopped: Callable[[], bool]) -> tuple[int, bool, float]:
        """Bring the store up to date, leaving `buffers` (open in the editor) as they are.
        Returns the files changed, whether it stopped early, and when (perf_counter) all but
        test directories were searchable."""
        known = self.store.file_states()
        current = [file for file in workspace_files(self.root) if file.path not in buffers]
        present = {file.path for file in current} | buffers
        gone = [path for path in known if path not in present]
        touched = [file for file in current if file.path not in known or
                   (known[file.path].size, known[file.path].mtime_ns) !=
                   (file.size, file.mtime_ns)]
        with self.store.body_merges_deferred(len(touched) > WRITE_FILES):
            changed, cancelled, usable_at = self._extract_all(touched, known, progress, stopped)
        if gone:
            with self.store.transaction() as db:
                ranks_stale(db)
                for path in gone:
                    delete_file(db, path)
        # Ranks stale without changes: an earlier refresh stored files but was killed (or
        # cancelled) before ranking them.
        if changed or gone or self.store.meta(RANKS_STALE):
            if not cancelled:  # ranked while the bodies' index is merged
                self.store.set_ranks(file_ranks(self.store.db))
            self.forget()
        self.store.merges_done()
        return changed, cancelled, usable_at

    def _extract_all(self, touched: list[WorkspaceFile], known: dict[str, FileState],
                     progress: Progress | None,
                     stopped: Callable[[], bool]) -> tuple[int, bool, float]:
        """Extract touched files and store what changed, in two passes: everything but test
        directories, then those."""
        # Largest files first: the last tasks are small, so that the workers finish together.
        work = [(file, known[file.path].hash if file.path in known else None)
                for file in sorted(touched, key=lambda file: file.size, reverse=True)]
        first = [item for item in work if not is_deferred(item[0].path)]
        deferred = [item for item in work if is_deferred(item[0].path)]
        executor = None
        if len(work) >= PARALLEL_MIN_FILES and self.policy.worker_pool is not None:
            executor = self.policy.worker_pool()
        counts = [0, 0]  # files done, files changed
        cancelled = False
        try:
            # Both passes are queued at once, so that workers go on with test directories while
            # this process stores the first pass and builds its lookup indexes.
            first_results = self._results(executor, _batches(first))
            deferred_results = self._results(executor, _batches(deferred))
            if executor is not None and self.policy.run_aside is not None:
                # the workers have started: they do not inherit the import
                self.policy.run_aside(lambda: importlib.import_module("numpy"),
                                      "osslsp-index-import")
            if known and not self.store.lookup_indexes_missing():
                cancelled = self._store_pass(first_results, counts, len(work), progress, stopped)
            else:  # lookup indexes built once after the first pass's rows (again, when a
                # process filling the index this way was killed)
                with self.store.bulk_load():
                    cancelled = self._store_pass(first_results, counts, len(work), progress,
                                                 stopped)
            usable_at = time.perf_counter()
            if deferred and not cancelled:
                self.forget()
                cancelled = self._store_pass(deferred_results, counts, len(work), progress,
                                             stopped)
        finally:
            if executor is not None:
                executor.shutdown(wait=not cancelled, cancel_futures=True)
        return counts[1], cancelled, usable_at

    def _store_pass(self, results: Iterator[list[Extracted]], counts: list[int], total: int,
                    progress: Progress | None, stopped: Callable[[], bool]) -> bool:
        """Store one pass's extracted batches, counting into `counts`; True when stopped."""
        pending: list[Extracted] = []
        cancelled = False
        for batch_results in results:
            pending.extend(batch_results)
            counts[0] += len(batch_results)
            if progress is not None:
                progress(counts[0], total, batch_results[-1][0])
            cancelled = stopped()
            if cancelled:
                break
            if len(pending) >= WRITE_FILES:
                counts[1] += store_results(self.store, pending)
                pending = []
        counts[1] += store_results(self.store, pending)
        return cancelled

    def _results(self, executor: Executor | None, batches: list[Batch]
                 ) -> Iterator[list[Extracted]]:
        """Extracted batches as they finish, submitted to the workers now; extracted in this
        process when workers are absent or broken."""
        root = str(self.root)
        submitted: dict[Future[list[Extracted]], Batch] = {}
        left: list[Batch] = []
        for batch in batches:
            if executor is None:
                left.append(batch)
                continue
            try:
                submitted[executor.submit(_extract_batch, root, batch, self.fold_python)] = batch
            except BrokenProcessPool:  # an earlier pass found that workers cannot run
                left.append(batch)
        return self._extracted_as_done(root, submitted, left)

    def _extracted_as_done(self, root: str, submitted: dict[Future[list[Extracted]], Batch],
                           left: list[Batch]) -> Iterator[list[Extracted]]:
        """The workers' results in the order they finish (the writer never waits on one large
        task while others are done), then this process's extraction of the batches they left."""
        for future in as_completed(submitted):
            try:
                yield future.result()
            except BrokenProcessPool:  # a worker could not start (no `__main__` guard) or died
                left.append(submitted[future])
        for batch in left:
            yield _extract_batch(root, batch, self.fold_python)
