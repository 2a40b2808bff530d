"""The audit log: one JSON line per generation request, kept on this machine.

Each line says when, for whom (this editor window's process, or an engine's client), where (file
and cursor), what kind (completion, generate, explain, chat), which model, the prompt exactly as
sent (credentials redacted), the answer, how long it took, and why an answer was withheld. The
language server and the CLI write `osslsp.jsonl` and an engine `engine.jsonl`, under
`cache_dir()/audit`; files are 0600 in a 0700 folder, appended to, and rotated by size (the newest
`KEEP_ROTATED` older files are kept). `osslsp audit` shows them.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import sys
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from osslsp.documents import position_at
from osslsp.index.secrets import redact_secrets
from osslsp.paths import cache_dir

MAX_BYTES = 16 * 2**20  # a file is rotated once it has grown past this
KEEP_ROTATED = 3
FOLLOW_POLL_SECONDS = 0.5
LANGUAGE_SERVER_LOG = "osslsp.jsonl"
ENGINE_LOG = "engine.jsonl"


def audit_file(setting: bool | str, name: str = LANGUAGE_SERVER_LOG) -> Path | None:
    """Where the log goes: None when the setting is false, a path when it names one."""
    if setting is False:
        return None
    if isinstance(setting, str):
        return Path(setting).expanduser()
    return cache_dir() / "audit" / name


def _rotate(path: Path) -> None:
    """path -> path.1 -> path.2 ...; the oldest beyond KEEP_ROTATED is dropped."""
    for number in range(KEEP_ROTATED, 0, -1):
        older = path.with_name(f"{path.name}.{number}")
        newer = path.with_name(f"{path.name}.{number - 1}") if number > 1 else path
        if newer.exists():
            newer.replace(older)


def record(path: Path | None, **fields: Any) -> None:
    """Append one request's record (with the time) to the log at `path` (nothing when None).
    The prompt and the answer are redacted again here, whatever built them. A log that cannot be
    written is reported on stderr and never fails the request."""
    if path is None:
        return
    entry = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **fields}
    for key in ("prompt", "answer", "shown"):
        if isinstance(entry.get(key), str):
            entry[key] = redact_secrets(entry[key])
    line = (json.dumps(entry, ensure_ascii=False) + "\n").encode()
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with open(os.open(path.with_name(path.name + ".lock"), os.O_WRONLY | os.O_CREAT, 0o600), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # windows and engines share a log: one writer at a time
            if path.exists() and path.stat().st_size + len(line) > MAX_BYTES:
                _rotate(path)
            descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(descriptor, line)
            finally:
                os.close(descriptor)
    except OSError as error:
        print(f"osslsp: cannot write the audit log {path}: {error}", file=sys.stderr)


def generation(settings, what: str, prompt: str, answer: str, shown: str | None, timings: dict[str, float],
               before: str | None = None, why: str = "") -> None:
    """Record a generation of this process. `what` is KIND:FILE (the assistant's request key:
    `explain:PATH`, `generate:PATH`, `completion:PATH`) or KIND; `shown` None: nothing was shown,
    for the reason `why`; `before`: the document's text before the cursor, for the record's line
    and column."""
    kind, _, file = what.partition(":")
    where = {}
    if before is not None:
        line, column = position_at(before, len(before), "utf-32")
        where["range"] = [[line + 1, column + 1]] * 2
    record(audit_file(settings.audit_log), kind=kind, client=f"osslsp pid {os.getpid()}", file=file, **where,
           model=settings.model, prompt=prompt, answer=answer, shown=shown, timings=timings,
           withheld=None if shown else why or "nothing left to show once the answer was cleaned")


def read_records(path: Path, count: int) -> list[dict[str, Any]]:
    """The last `count` records, oldest first, from the log and its rotated files."""
    newest_first = [path] + [path.with_name(f"{path.name}.{number}") for number in range(1, KEEP_ROTATED + 1)]
    records: deque[dict[str, Any]] = deque(maxlen=count)
    for file in reversed(newest_first):
        records.extend(_records(file))
    return list(records)


def _records(file: Path) -> Iterator[dict[str, Any]]:
    try:
        with file.open(encoding="utf-8", errors="replace") as lines:
            for line in lines:
                try:
                    yield json.loads(line)
                except ValueError:
                    continue  # a line cut by a full disk: the next ones are whole
    except FileNotFoundError:
        return


def describe(entry: dict[str, Any]) -> str:
    """A record for people: a heading, then the prompt and the answer as they were."""
    where = entry.get("file", "")
    if entry.get("range"):
        where += ":" + "-".join(f"{line}:{column}" for line, column in entry["range"])
    timings = ", ".join(f"{key} {value}" for key, value in (entry.get("timings") or {}).items())
    heading = " ".join(str(part) for part in (entry.get("time"), entry.get("kind"), where, entry.get("model"),
                                              entry.get("client"), timings) if part)
    withheld = f"\n--- withheld: {entry['withheld']}" if entry.get("withheld") else ""
    return (f"=== {heading}\n--- prompt\n{entry.get('prompt', '')}\n--- answer\n{entry.get('answer', '')}"
            f"{withheld}\n")


def audit_main(args: argparse.Namespace) -> int:
    """`osslsp audit`: show the last records, then new ones as they come with --follow."""
    from osslsp.settings import Settings

    path = args.file or audit_file(Settings().audit_log, ENGINE_LOG if args.engine else LANGUAGE_SERVER_LOG)

    def show(entry: dict[str, Any]) -> None:
        print(json.dumps(entry, ensure_ascii=False) if args.json else describe(entry), flush=True)

    for entry in read_records(path, args.n):
        show(entry)
    if not args.follow:
        return 0
    seen = path.stat().st_size if path.exists() else 0
    try:
        while True:  # until interrupted, as `tail -f`
            time.sleep(FOLLOW_POLL_SECONDS)
            size = path.stat().st_size if path.exists() else 0
            if size < seen:  # rotated
                seen = 0
            if size > seen:
                with path.open("rb") as log:
                    log.seek(seen)
                    fresh = log.read(size - seen)
                seen += fresh.rfind(b"\n") + 1
                for line in fresh[:fresh.rfind(b"\n") + 1].splitlines():
                    show(json.loads(line))
    except KeyboardInterrupt:
        return 0
