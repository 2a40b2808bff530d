"""Edited buffers reach the index off the event loop, newest text only."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from osslsp.features.workspace_index import BufferUpdates
from osslsp.index import WorkspaceIndex


class _Server:
    """What BufferUpdates reads of the language server: its index and its log."""

    def __init__(self, index: WorkspaceIndex):
        self.index = index
        self.logged: list[str] = []

    def log(self, message: str, kind=None) -> None:
        self.logged.append(message)


def _indexed(tmp_path: Path, name: str) -> tuple[Path, WorkspaceIndex]:
    """A workspace of one file defining `original`, indexed."""
    root = tmp_path / "ws"
    root.mkdir()
    (root / name).write_text("def original():\n    pass\n")
    index = WorkspaceIndex(root, cache_dir=tmp_path / "cache")
    index.refresh()
    return root, index


async def test_a_burst_of_edits_is_indexed_off_the_loop_with_the_last_text(tmp_path: Path) -> None:
    root, index = _indexed(tmp_path, "calc.py")
    threads: list[int] = []
    texts: list[str] = []
    set_buffer = index.set_buffer

    def recording_set_buffer(path: Path, text: str) -> None:
        threads.append(threading.get_ident())
        texts.append(text)
        set_buffer(path, text)

    index.set_buffer = recording_set_buffer
    server = _Server(index)
    updates = BufferUpdates(server)
    try:
        for name in ("alpha", "beta", "gamma", "delta"):
            updates.push(root / "calc.py", f"def {name}():\n    pass\n")
        await updates.idle()
        assert threading.get_ident() not in threads
        assert texts[-1].startswith("def delta") and len(texts) <= 2  # the first may already run
        assert [d.name for d in index.definitions_named("delta")] == ["delta"]
        assert not index.definitions_named("gamma") and not index.definitions_named("original")
        updates.push(root / "calc.py", "def epsilon():\n    pass\n")
        updates.push(root / "calc.py", None)  # closed right after an edit: the disk wins
        await updates.idle()
        assert [d.name for d in index.definitions_named("original")] == ["original"]
        assert not index.definitions_named("epsilon") and not server.logged
    finally:
        index.close()


async def test_typing_is_indexed_once_the_edits_pause(tmp_path: Path) -> None:
    root, index = _indexed(tmp_path, "typing.py")
    loop = asyncio.get_running_loop()
    indexed: list[tuple[float, str]] = []
    set_buffer = index.set_buffer

    def recording_set_buffer(path: Path, text: str) -> None:
        indexed.append((loop.time(), text))
        set_buffer(path, text)

    index.set_buffer = recording_set_buffer
    updates = BufferUpdates(_Server(index), settle_s=0.5)
    try:
        for typed in range(1, 6):  # a typist's keys, 10 ms apart
            last_key = loop.time()
            updates.push(root / "typing.py", f"def typed_{typed}():\n    pass\n", settle=True)
            await asyncio.sleep(0.01)
        await updates.idle()
        assert [text for _, text in indexed] == ["def typed_5():\n    pass\n"]
        assert indexed[0][0] >= last_key + 0.5
        assert [d.name for d in index.definitions_named("typed_5")] == ["typed_5"]
    finally:
        index.close()
