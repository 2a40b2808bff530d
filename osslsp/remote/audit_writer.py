"""The engine's audit records, written by a thread of their own, a moment after each answer.

A record decodes the request's whole prompt (2,000 tokens for a completion), looks for secrets
in it and appends it to the log under a file lock: about a millisecond of Python (holding the
GIL) each. On the server's event loop that work queues up whenever answers end together, and
every client's next request waits behind it (at 16 typing clients on an H200, ~22 ms a request).
Written the moment an answer ends, a record competes instead with the same client's next
keystroke, which arrives just then (on the H200 the keystroke's wait for the engine thread went
from 0.13 to 0.58 ms). So the thread waits SETTLE_SECONDS after a record arrives, then writes all
records queued by then: the keystroke is in the batch by that time. Records keep their order;
closing writes those queued, so none is lost.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from osslsp import audit

log = logging.getLogger(__name__)
SETTLE_SECONDS = 0.02  # after an answer, the client's next request reaches the engine first


class AuditWriter:
    """Appends records to the audit log at `path` (None: keeps none) on its own thread; a record's
    prompt comes as token ids and is decoded (`decode`) there too."""

    def __init__(self, path: Path | None, decode: Callable[[list[int]], str]):
        self.path = path
        self._decode = decode
        self._records: queue.SimpleQueue[tuple[list[int], dict[str, Any]] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="osslsp-audit", daemon=True) if path else None
        if self._thread is not None:
            self._thread.start()

    def record(self, prompt_ids: list[int], **fields: Any) -> None:
        """Queue a record (returns at once)."""
        if self._thread is not None:
            self._records.put((prompt_ids, fields))

    def _run(self) -> None:
        while (first := self._records.get()) is not None:
            time.sleep(SETTLE_SECONDS)
            batch = [first]
            while not self._records.empty():
                batch.append(self._records.get())
            for item in batch:
                if item is None:  # closed: what came before it is written, then the thread ends
                    return
                prompt_ids, fields = item
                try:
                    audit.record(self.path, prompt=self._decode(prompt_ids), **fields)
                except Exception:  # a bug: that record is lost, the next ones are still written
                    log.exception("an audit record could not be written")

    def close(self) -> None:
        """Write what is queued, then stop the thread."""
        if self._thread is not None:
            self._records.put(None)
            self._thread.join()
