"""Hardening of the workspace index (issue 22): processes that share an index, die mid-index, or
find the disk closed or full. Real processes, real signals, real SQLite files."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import osslsp
from osslsp.index import WorkspaceIndex
from osslsp.index.workspace import IndexFull

# Children import the osslsp under test, wherever this process imported it from.
CHILD_ENV = {**os.environ, "PYTHONPATH": str(Path(osslsp.__file__).parents[1])}
FILES = 400  # enough for worker processes (PARALLEL_MIN_FILES) and a refresh of a second or more
# Run in a child process: index ROOT into CACHE once the parent writes a line to its stdin (so
# that two children start together), then print the index's files and definitions.
INDEXER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from osslsp.index import WorkspaceIndex
    from osslsp.index.cli import COMMAND_LINE_POLICY

    if __name__ == "__main__":
        index = WorkspaceIndex(Path(sys.argv[1]), cache_dir=Path(sys.argv[2]),
                               policy=COMMAND_LINE_POLICY)
        print("ready", flush=True)
        sys.stdin.readline()
        stats = index.refresh()
        print(stats.files, stats.definitions, flush=True)
        index.close()
""")
# Index ROOT into CACHE, telling the parent its pid when the first results come in (the workers
# are at work then); killed by the parent meanwhile.
KILLED_INDEXER = textwrap.dedent("""
    import os
    import sys
    from pathlib import Path
    from osslsp.index import WorkspaceIndex
    from osslsp.index.cli import COMMAND_LINE_POLICY

    def progress(done, total, path):
        if not progress.told:
            progress.told = True
            print("indexing", flush=True)

    progress.told = False
    if __name__ == "__main__":
        WorkspaceIndex(Path(sys.argv[1]), cache_dir=Path(sys.argv[2]),
                       policy=COMMAND_LINE_POLICY).refresh(progress)
""")
WORKERS_GONE_SECONDS = 5.0
# Index ROOT into CACHE and kill itself (-9) at a chosen point: "half" (half the files stored, in
# the middle of a cold index's bulk load) or "ranking" (every file stored, none ranked).
SELF_KILLED_INDEXER = textwrap.dedent("""
    import os
    import signal
    import sys
    from pathlib import Path
    from osslsp.index import WorkspaceIndex
    from osslsp.index.cli import COMMAND_LINE_POLICY
    from osslsp.index.store import IndexStore

    def die(*_):
        os.kill(os.getpid(), signal.SIGKILL)

    def progress(done, total, path):
        if sys.argv[3] == "half" and done >= total // 2:
            die()

    if __name__ == "__main__":
        if sys.argv[3] == "ranking":
            IndexStore.set_ranks = die
        WorkspaceIndex(Path(sys.argv[1]), cache_dir=Path(sys.argv[2]),
                       policy=COMMAND_LINE_POLICY).refresh(progress)
""")


def _workspace(root: Path) -> Path:
    for number in range(FILES):
        module = root / f"pkg{number % 7}" / f"module_{number}.py"
        module.parent.mkdir(parents=True, exist_ok=True)
        module.write_text("".join(
            f"def function_{number}_{each}(value: int) -> int:\n"
            f"    \"\"\"Step {each} of module {number}.\"\"\"\n"
            f"    return module_{(number + 1) % FILES}.function_{number}_{each}(value) + {each}\n\n"
            for each in range(30)) + f"class Model{number}:\n    size = {number}\n")
    return root


def _indexer(root: Path, cache: Path, script: Path) -> subprocess.Popen:
    child = subprocess.Popen([sys.executable, str(script), str(root), str(cache)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=CHILD_ENV)
    assert child.stdout.readline() == "ready\n", child.stderr.read()
    return child


def _contents(root: Path, cache: Path) -> tuple[dict, list, list]:
    """Files (path, size, hash, rank), definitions and lookup indexes of an index on disk, read
    back in this process."""
    index = WorkspaceIndex(root, cache_dir=cache)
    try:
        db = index.store.db
        files = {path: (size, digest, round(rank, 9)) for path, size, digest, rank in
                 db.execute("SELECT path, size, hash, rank FROM files")}
        definitions = sorted(db.execute(
            "SELECT f.path, d.name, d.kind, d.scope, d.line, d.end_line, d.signature, d.doc "
            "FROM defs d JOIN files f ON f.id = d.file_id"))
        indexes = sorted(db.execute("SELECT name FROM sqlite_master WHERE type = 'index'"))
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        return files, definitions, indexes
    finally:
        index.close()


@pytest.fixture()
def script(tmp_path: Path) -> Path:
    path = tmp_path / "indexer.py"
    path.write_text(INDEXER)
    return path


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> tuple[Path, tuple[dict, list]]:
    """A workspace and what one process alone indexes of it."""
    base = tmp_path_factory.mktemp("clean")
    root = _workspace(base / "ws")
    index = WorkspaceIndex(root, cache_dir=base / "cache")
    index.refresh()
    index.close()
    return root, _contents(root, base / "cache")


def test_two_cold_indexes_of_one_workspace_both_finish(clean, script: Path, tmp_path: Path) -> None:
    root, expected = clean
    cache = tmp_path / "cache"
    children = [_indexer(root, cache, script) for _ in range(2)]
    for child in children:
        child.stdin.write("go\n")
        child.stdin.flush()
    for child in children:
        out, err = child.communicate(timeout=240)
        assert child.returncode == 0, err
        assert out.split() == [str(len(expected[0])), str(len(expected[1]))], err
    assert _contents(root, cache) == expected


def _children(parent: int) -> list[int]:
    """Processes whose parent is `parent` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2:].split()[1]) == parent:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    """Running (a zombie, dead but not yet reaped by init, is not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def _start_killed_indexer(root: Path, cache: Path, script: Path) -> subprocess.Popen:
    script.write_text(KILLED_INDEXER)
    child = subprocess.Popen([sys.executable, str(script), str(root), str(cache)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=CHILD_ENV)
    assert child.stdout.readline() == "indexing\n", child.stderr.read()
    return child


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
def test_index_workers_die_with_a_killed_parent(clean, script: Path, tmp_path: Path) -> None:
    root, _ = clean
    child = _start_killed_indexer(root, tmp_path / "cache", script)
    workers = _children(child.pid)
    assert workers, "the index ran without worker processes"
    child.kill()
    child.wait()
    deadline = time.monotonic() + WORKERS_GONE_SECONDS
    while (alive := [pid for pid in workers if _alive(pid)]) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in alive:  # left behind by a failure: not left running
        os.kill(pid, 9)
    assert not alive, f"index workers {alive} outlived their killed parent"


def test_an_index_killed_at_random_points_then_run_again_equals_a_clean_run(
        clean, script: Path, tmp_path: Path) -> None:
    root, expected = clean
    script.write_text(KILLED_INDEXER)
    kill_points = random.Random(22)
    for run in range(5):
        cache = tmp_path / f"cache{run}"
        # Two kills, the second landing on what the first left, each at a random moment of a
        # cold index (about a second: starting, creating the database, walking, extracting,
        # storing, ranking, merging); one that finished first is a clean run.
        for _ in range(2):
            child = subprocess.Popen([sys.executable, str(script), str(root), str(cache)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env=CHILD_ENV)
            try:
                child.wait(timeout=kill_points.uniform(0.2, 1.5))  # the kill point
            except subprocess.TimeoutExpired:
                child.kill()
            _, err = child.communicate()
            assert child.returncode in (0, -9), err
        index = WorkspaceIndex(root, cache_dir=cache)
        index.refresh()
        index.close()
        assert _contents(root, cache) == expected, f"run {run}"


@pytest.mark.parametrize("point", ["half", "ranking"])
def test_an_index_killed_at_a_chosen_point_then_run_again_equals_a_clean_run(
        clean, script: Path, tmp_path: Path, point: str) -> None:
    root, expected = clean
    script.write_text(SELF_KILLED_INDEXER)
    cache = tmp_path / "cache"
    child = subprocess.run([sys.executable, str(script), str(root), str(cache), point],
                           capture_output=True, text=True, env=CHILD_ENV, timeout=240)
    assert child.returncode == -9, child.stderr
    index = WorkspaceIndex(root, cache_dir=cache)
    index.refresh()
    index.close()
    assert _contents(root, cache) == expected


def test_an_unwritable_cache_dir_gives_one_line_and_an_index_elsewhere(
        tmp_path: Path, caplog) -> None:
    root = tmp_path / "ws"
    (root / "app").mkdir(parents=True)
    (root / "app" / "render.py").write_text("def render(template: str) -> str:\n    return ''\n")
    blocked = tmp_path / "cache-is-a-file"
    blocked.write_text("")
    with caplog.at_level("WARNING"):
        index = WorkspaceIndex(root, cache_dir=blocked / "index")
    try:
        told = [record.getMessage() for record in caplog.records]
        assert len(told) == 1 and "\n" not in told[0] and str(blocked) in told[0], told
        assert index.refresh().files == 1
        assert index.definitions_named("render")[0].path == "app/render.py"
        kept_in = index.store.db_path.parent
        assert not kept_in.is_relative_to(blocked)
    finally:
        index.close()
    assert not kept_in.exists()


def test_a_full_disk_is_told_once_and_the_index_keeps_serving(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "kept.py").write_text("def kept_function():\n    return 1\n")
    index = WorkspaceIndex(root, cache_dir=tmp_path / "cache")
    try:
        index.refresh()
        db = index.store.db  # this thread's connection, which `set_buffer` writes with
        # A disk with no room left: the database may not grow past its size now.
        db.execute(f"PRAGMA max_page_count = {db.execute('PRAGMA page_count').fetchone()[0]}")
        large = "".join(f"def typed_{n}(value):\n    return value * {n}\n" for n in range(3000))
        with pytest.raises(IndexFull) as told:
            index.set_buffer(root / "typing.py", large)
        assert "full" in str(told.value) and "cannot rollback" not in str(told.value)
        for keystroke in range(5):  # told once: the next keystrokes are skipped quietly
            index.set_buffer(root / "typing.py", large + f"x = {keystroke}\n")
        assert index.definitions_named("kept_function")[0].path == "kept.py"
        assert index.definitions_named("typed_7") == []
        db.execute("PRAGMA max_page_count = 1073741823")  # space freed
        index.set_buffer(root / "typing.py", large)
        assert index.definitions_named("typed_7")[0].path == "typing.py"
    finally:
        index.close()


def test_the_watcher_skips_the_directories_the_walk_skips(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    (root / "src").mkdir(parents=True)
    (root / ".gitignore").write_text("generated_here/\n")
    index = WorkspaceIndex(root, cache_dir=tmp_path / "cache")

    def indexed_soon(name: str, file: Path) -> bool:
        """Write `file` defining `name` (again) until the watcher indexes it, or give up."""
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            file.write_text(f"def {name}():\n    return 1\n")
            if index.definitions_named(name):
                return True
            time.sleep(0.2)
        return False

    try:
        index.refresh()
        index.start_watching()
        assert indexed_soon("watcher_is_running", root / "src" / "first.py")
        skipped = [".hidden", "build", "venv", "node_modules/pkg", "generated_here", "src/.cache"]
        for number, directory in enumerate(skipped):
            (root / directory).mkdir(parents=True)
            (root / directory / "module.py").write_text(f"def skipped_{number}():\n    pass\n")
        # Changes come in order: once this one is indexed, the watcher has seen those.
        assert indexed_soon("after_the_skipped", root / "src" / "last.py")
        assert [number for number in range(len(skipped))
                if index.definitions_named(f"skipped_{number}")] == []
        assert sorted(index.store.paths()) == ["src/first.py", "src/last.py"]
    finally:
        index.close()
