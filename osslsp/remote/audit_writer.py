"""The engine's audit records, written by a thread of their own.

A record decodes the request's whole prompt (2,000 tokens for a completion), looks for secrets
in it and appends it to the log under a file lock: about a millisecond each on an H200 host. On
the server's event loop that work queued up whenever answers ended together, and every client's
next request waited behind it (at 16 typing clients, ~22 ms a request). Records keep their order
(one writer); closing waits for those not written yet, so none is lost at shutdown.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from osslsp import audit


class AuditWriter:
    """Appends records to the audit log at `path` (None: keeps none) on its own thread; a record's
    prompt comes as token ids and is decoded (`decode`) there too."""

    def __init__(self, path: Path | None, decode: Callable[[list[int]], str]):
        self.path = path
        self._decode = decode
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="osslsp-audit") if path else None

    def record(self, prompt_ids: list[int], **fields: Any) -> None:
        """Queue a record (returns at once)."""
        if self._thread is not None:
            self._thread.submit(self._write, prompt_ids, fields)

    def _write(self, prompt_ids: list[int], fields: dict[str, Any]) -> None:
        audit.record(self.path, prompt=self._decode(prompt_ids), **fields)

    def close(self) -> None:
        """Write what is queued, then stop the thread."""
        if self._thread is not None:
            self._thread.shutdown(wait=True)
