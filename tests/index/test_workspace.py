"""The workspace index: incremental refresh, buffers, retrieval across files, secrets."""

from __future__ import annotations

import sqlite3
import sys
import threading
from pathlib import Path

import pytest

from osslsp.index import WorkspaceIndex, is_secret_path, redact_secrets
from osslsp.index.files import unreadable_reason
from osslsp.index.hosting import worker_context
from osslsp.index.rank import pagerank_scores
from osslsp.index.refresh import BATCH_FILES, WRITE_FILES
from osslsp.index.store import FTS_AUTOMERGE
from osslsp.index.workspace import IndexClosed

FILES = {
    "app/__init__.py": "from .client import Client\n",
    "app/client.py": (
        "from .render import render\n\n"
        "class Client:\n"
        "    \"\"\"Talks to the server.\"\"\"\n\n"
        "    def __init__(self, base_url: str, timeout: float = 5.0) -> None:\n"
        "        self.base_url = base_url\n\n"
        "    def fetch_json(self, path: str) -> dict:\n"
        "        \"\"\"GET a path and decode the JSON body.\"\"\"\n"
        "        return {}\n"),
    "app/render.py": (
        "def render(template: str, *, escape: bool = True) -> str:\n"
        "    \"\"\"Fill a template.\"\"\"\n"
        "    return template\n"),
    "app/settings.py": 'AWS_KEY = "AKIAIOSFODNN7EXAMPLE"\nREGION = "eu-west-1"\n',
    "web/page.ts": ("import { layout } from './layout';\n"
                    "export function page(title: string): string { return layout(title); }\n"),
    "web/layout.ts": "export function layout(body: string, width = 80): string { return body; }\n",
    "ignored/secret_plan.py": "def hidden_plan(): ...\n",
    ".gitignore": "ignored/\n",
    ".env": "API_TOKEN=supersecretvalue123\n",
    "certs/server.pem": "-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----\n",
}


def _chars(text: str) -> int:
    return max(1, len(text) // 4)


@pytest.fixture()
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    for relative, text in FILES.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)
    return root


@pytest.fixture()
def index(workspace: Path, tmp_path: Path):
    built = WorkspaceIndex(workspace, cache_dir=tmp_path / "cache")
    built.refresh()
    yield built
    built.close()


def _context(index: WorkspaceIndex, path: Path, text: str, budget: int = 2000) -> str:
    snippets = index.context_for(path, text, len(text), budget, _chars)
    return "\n".join(f"{s.path}:{s.line} {s.reason}\n{s.text}" for s in snippets)


def test_refresh_indexes_sources_and_skips_ignored_and_secret_files(index: WorkspaceIndex) -> None:
    stats = index.stats()
    assert stats.languages == {"python": 4, "typescript": 2}
    assert index.definitions_named("hidden_plan") == []
    render = index.definitions_named("render")[0]
    assert (render.path, render.line) == ("app/render.py", 1)


def test_call_site_gets_callee_from_another_file(index: WorkspaceIndex, workspace: Path) -> None:
    text = "from app.render import render\n\nhtml = render("
    context = _context(index, workspace / "main.py", text)
    assert "app/render.py:1 definition of render" in context
    assert "def render(template: str, *, escape: bool = True) -> str:" in context


def test_class_call_brings_constructor_signature(index: WorkspaceIndex, workspace: Path) -> None:
    text = "from app import Client\n\nclient = Client("
    context = _context(index, workspace / "main.py", text)
    assert "class Client:" in context
    assert "def __init__(self, base_url: str, timeout: float = 5.0) -> None:" in context


def test_partial_member_name_finds_method(index: WorkspaceIndex, workspace: Path) -> None:
    text = "from app import Client\n\nclient = Client('x')\nclient.fetch_"
    assert "def fetch_json(self, path: str) -> dict:" in _context(index, workspace / "m.py", text)


def test_typescript_relative_import(index: WorkspaceIndex, workspace: Path) -> None:
    text = "import { layout } from './layout';\nconst html = layout("
    context = _context(index, workspace / "web" / "other.ts", text)
    assert "export function layout(body: string, width = 80): string" in context


def test_budget_is_respected(index: WorkspaceIndex, workspace: Path) -> None:
    text = "from app import Client\nfrom app.render import render\nrender(Client("
    snippets = index.context_for(workspace / "main.py", text, len(text), 30, _chars)
    assert snippets and sum(_chars(s.text) for s in snippets) <= 30
    assert index.context_for(workspace / "main.py", text, len(text), 0, _chars) == []


def test_secrets_never_reach_a_prompt(index: WorkspaceIndex, workspace: Path) -> None:
    text = "from app.settings import AWS_KEY, REGION\nimport os\nx = (AWS_KEY, REGION, API_TOKEN"
    context = _context(index, workspace / "main.py", text, budget=10_000)
    assert "AKIAIOSFODNN7EXAMPLE" not in context and "supersecretvalue" not in context
    assert "REGION" in context  # the file is used, only the credential line is cut
    assert "hidden_plan" not in _context(index, workspace / "main.py", "hidden_plan(", 10_000)
    assert is_secret_path(".env") and is_secret_path("certs/server.pem")
    assert not is_secret_path("app/client.py")
    assert "AKIA" not in redact_secrets('key = "AKIAIOSFODNN7EXAMPLE"\n')


def test_own_region_around_cursor_is_left_out(index: WorkspaceIndex, workspace: Path) -> None:
    path = workspace / "app" / "render.py"
    text = path.read_text() + "\nrender("
    assert all(s.path != "app/render.py" for s in index.context_for(
        path, text, len(text), 2000, _chars))


def test_incremental_refresh_and_deletion(index: WorkspaceIndex, workspace: Path) -> None:
    assert index.refresh().changed == 0
    (workspace / "app" / "render.py").write_text("def render_page(name: str) -> str: ...\n")
    (workspace / "web" / "layout.ts").unlink()
    stats = index.refresh()
    assert stats.changed == 1
    assert index.definitions_named("render") == []
    assert index.definitions_named("render_page")[0].path == "app/render.py"
    assert index.definitions_named("layout") == []


def test_buffer_overrides_disk_until_dropped(index: WorkspaceIndex, workspace: Path) -> None:
    path = workspace / "app" / "render.py"
    index.set_buffer(path, "def render_unsaved(x): ...\n")
    assert index.definitions_named("render") == []
    index.refresh()  # the open buffer stays the truth
    assert index.definitions_named("render_unsaved")
    index.drop_buffer(path)
    assert index.definitions_named("render") and not index.definitions_named("render_unsaved")


def test_warm_start_reuses_the_index(workspace: Path, tmp_path: Path, index) -> None:
    again = WorkspaceIndex(workspace, cache_dir=tmp_path / "cache")
    try:
        assert again.refresh().changed == 0
        assert again.stats().files == 6
    finally:
        again.close()


def test_damaged_or_foreign_index_is_rebuilt(workspace: Path, tmp_path: Path) -> None:
    first = WorkspaceIndex(workspace, cache_dir=tmp_path / "cache")
    db_path = first.store.db_path
    first.close()
    db_path.write_bytes(b"this is not a database" * 100)
    damaged = WorkspaceIndex(workspace, cache_dir=tmp_path / "cache")
    assert damaged.refresh().files == 6
    damaged.close()
    with sqlite3.connect(db_path) as db:
        db.execute("UPDATE meta SET value = '/elsewhere' WHERE key = 'root'")
    db.close()
    foreign = WorkspaceIndex(workspace, cache_dir=tmp_path / "cache")
    assert foreign.stats().files == 0  # not trusted: emptied, then rebuilt by refresh
    assert foreign.refresh().files == 6
    foreign.close()


def test_refresh_can_be_cancelled(workspace: Path, tmp_path: Path) -> None:
    cancel = threading.Event()
    cancel.set()
    index = WorkspaceIndex(workspace, cache_dir=tmp_path / "cache")
    seen: list[tuple[int, int]] = []
    stats = index.refresh(progress=lambda done, total, _: seen.append((done, total)),
                          cancel=cancel)
    assert stats.cancelled and seen
    index.close()


def test_symlinks_out_of_the_workspace_are_not_followed(workspace: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "leak.py").write_text("def leaked(): ...\n")
    (workspace / "link").symlink_to(outside)
    index = WorkspaceIndex(workspace, cache_dir=tmp_path / "cache2")
    index.refresh()
    assert index.definitions_named("leaked") == []
    index.close()


def test_watcher_picks_up_outside_changes(index: WorkspaceIndex, workspace: Path) -> None:
    index.start_watching()
    try:
        import time

        time.sleep(0.3)
        (workspace / "app" / "new_module.py").write_text("def brand_new(): ...\n")
        deadline = time.monotonic() + 10
        while not index.definitions_named("brand_new") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert index.definitions_named("brand_new")
    finally:
        index.stop_watching()


def test_similar_code_fills_what_the_budget_leaves(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    (root / "billing").mkdir(parents=True)
    (root / "billing" / "ledger.py").write_text(
        "def settle_invoice(invoice, ledger):\n"
        "    amount = invoice.quantity * invoice.unit_price\n"
        "    ledger.debit(invoice.customer_account, amount)\n"
        "    return amount\n")
    (root / "billing" / "other.py").write_text("def unrelated(x):\n    return x + 1\n")
    index = WorkspaceIndex(root, cache_dir=tmp_path / "cache")
    index.refresh()
    text = ("def refund_invoice(invoice, ledger):\n"
            "    amount = invoice.quantity * invoice.unit_price\n"
            "    ledger.credit(invoice.customer_account, ")
    snippets = index.context_for(root / "billing" / "refunds.py", text, len(text), 2000, _chars)
    similar = [s for s in snippets if s.reason == "similar code"]
    assert [(s.path, s.line) for s in similar] == [("billing/ledger.py", 1)]
    assert "ledger.debit(invoice.customer_account, amount)" in similar[0].text
    assert snippets[-1].reason == "similar code"  # fitted last
    tight = index.context_for(root / "billing" / "refunds.py", text, len(text), 10, _chars)
    assert all(s.reason != "similar code" for s in tight)
    index.close()


def test_test_directories_come_in_a_second_pass(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    for relative in [f"pkg/mod{n}.py" for n in range(40)] + \
            [f"tests/test_mod{n}.py" for n in range(40)]:
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(f"def {Path(relative).stem}_function(): ...\n")
    index = WorkspaceIndex(root, cache_dir=tmp_path / "cache")
    order: list[str] = []
    stats = index.refresh(progress=lambda done, total, path: order.append(path))
    assert stats.files == 80 and 0 < stats.usable_seconds <= stats.seconds
    assert order[-1].startswith("tests/") and not order[len(order) // 2 - 1].startswith("tests/")
    assert index.definitions_named("test_mod3_function")[0].path == "tests/test_mod3.py"
    # The cold build's bulk load wrote without syncing; later writes are durable again.
    assert index.store.db.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    index.close()


def test_retrieval_follows_buffer_edits(index: WorkspaceIndex, workspace: Path) -> None:
    text = "from app.render import render\n\nhtml = render("
    assert "render" in _context(index, workspace / "main.py", text)  # name table now loaded
    index.set_buffer(workspace / "app" / "render.py", "def render(page, theme): ...\n")
    context = _context(index, workspace / "main.py", text)
    assert "def render(page, theme):" in context and "escape" not in context


def test_similar_code_matches_whole_snake_and_camel_case_identifiers(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "audit.py").write_text(
        "def record(item):\n    return AuditTrail.append_reconciled_batch(item)\n")
    (root / "noise.py").write_text(
        "def batch(item):\n    return append(reconciled, trail, audit, item)\n")
    index = WorkspaceIndex(root, cache_dir=tmp_path / "cache")
    index.refresh()
    # Only the whole identifiers tie the cursor's code to audit.py: their parts are in noise.py.
    text = "def replay(entries):\n    for entry in entries:\n        AuditTrail.append_reconciled_batch("
    snippets = index.context_for(root / "replay.py", text, len(text), 2000, _chars)
    assert [s.path for s in snippets if s.reason == "similar code"] == ["audit.py"]
    index.close()


def test_pagerank_favours_the_file_everyone_names() -> None:
    # 0 is named by 1, 2 and 3; 3 is named by nobody; 1 and 2 also name each other.
    ranks = pagerank_scores(4, [1, 2, 3, 1, 2], [0, 0, 0, 2, 1], [1.0, 1.0, 1.0, 1.0, 1.0])
    assert ranks[0] == max(ranks) and ranks[3] == min(ranks)
    assert ranks[1] == pytest.approx(ranks[2]) and sum(ranks) == pytest.approx(1.0)
    assert pagerank_scores(0, [], [], []) == []


@pytest.mark.parametrize(("head", "reason"), [
    (b'""" Codec cp1252 generated from \'VENDORS/CP1252.TXT\' with gencodec.py.\n"""\n', "generated"),
    (b"// Code generated by protoc-gen-go. DO NOT EDIT.\npackage pb\n", "generated"),
    (b"# @generated by tools/regen.py\nTABLE = {}\n", "generated"),
    (b'"""The table below is generated from the settings at start-up."""\nTABLE = {}\n', None),
    (b"def f():\n    return 1\n", None),
    (b"\x00\x01ELF binary", "binary"),
])
def test_generated_and_binary_files_are_told_by_their_head(head: bytes, reason: str | None) -> None:
    assert unreadable_reason(head) == reason


@pytest.mark.skipif(sys.platform != "linux", reason="workers are always spawned elsewhere")
def test_workers_are_forked_only_when_this_process_runs_one_thread() -> None:
    release = threading.Event()
    other = threading.Thread(target=release.wait)
    other.start()
    try:
        assert worker_context().get_start_method() == "spawn"
    finally:
        release.set()
        other.join()
    if threading.active_count() == 1:  # pytest plugins may run threads of their own
        assert worker_context().get_start_method() == "fork"


def _automerge(index: WorkspaceIndex) -> tuple[int] | None:
    return index.store.db.execute(
        "SELECT v FROM def_tokens_config WHERE k = 'automerge'").fetchone()


def test_bodies_index_merges_are_deferred_only_while_many_files_are_written(
        tmp_path: Path) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    for number in range(WRITE_FILES + 1):
        (root / f"module_{number}.py").write_text(
            f"def scaled_{number}(value):\n    return value * {number}\n")
    index = WorkspaceIndex(root, cache_dir=tmp_path / "cache")
    assert index.refresh().changed == WRITE_FILES + 1
    assert _automerge(index) == (FTS_AUTOMERGE,)
    # A refresh that deferred merges and never finished (the process was killed, say): the next
    # one, however small, turns them back on.
    with index.store.transaction() as db:
        db.execute("INSERT INTO def_tokens(def_tokens, rank) VALUES('automerge', 0)")
    (root / "module_0.py").write_text("def scaled_0(value):\n    return -value\n")
    assert index.refresh().changed == 1
    assert _automerge(index) == (FTS_AUTOMERGE,)
    assert [d.name for d in index.definitions_named("scaled_0")] == ["scaled_0"]
    index.close()


def test_close_stops_a_running_refresh_before_closing_the_store(tmp_path: Path) -> None:
    # The server closes the index at shutdown while it may be indexing: closing the connection
    # the refresh was writing with crashed the process.
    root = tmp_path / "ws"
    root.mkdir()
    for number in range(4 * BATCH_FILES):
        (root / f"module_{number}.py").write_text(f"def scaled_{number}(value):\n    return 1\n")
    index = WorkspaceIndex(root, cache_dir=tmp_path / "cache")
    closer = threading.Thread(target=index.close)

    def close_once(done: int, total: int, path: str) -> None:
        if not closer.is_alive() and done < total:
            closer.start()
            while not index._closing.is_set():  # close has begun: the refresh goes on, then stops
                closer.join(0.001)

    stats = index.refresh(progress=close_once)
    closer.join(10)
    assert stats.cancelled and 0 < stats.changed < 4 * BATCH_FILES and not closer.is_alive()
    with pytest.raises(IndexClosed):
        index.refresh()


def test_index_lives_under_the_cache_dir_setting(workspace: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("OSSLSP_CACHE_DIR", str(tmp_path / "chosen"))
    built = WorkspaceIndex(workspace)
    try:
        assert built.store.db_path.is_relative_to(tmp_path / "chosen" / "index")
    finally:
        built.close()
