"""Retrieval across keystrokes (issue 23): what one keystroke's retrieval found is reused by the
next ones, and the reused answer is always the answer computed afresh; a write to the index is
seen at once."""

from __future__ import annotations

import random
import sys
import threading
from pathlib import Path

import pytest

from osslsp.index import WorkspaceIndex
from osslsp.index.retrieval import Retriever, Reuse
from osslsp.languages import language_for_path
from tests.conftest import REPO

TYPED_FILES = ["osslsp/assistant.py", "osslsp/server.py", "osslsp/index/retrieval.py", "osslsp/completions.py",
               "editors/vscode/src/extension.ts"]
CURSORS_PER_FILE = 4
MAX_TYPED = 30  # characters of a line typed back, one keystroke each


def _tokens(text: str) -> int:
    """A token count: retrieval takes any; reuse must not depend on which."""
    return max(1, len(text) // 4)


def _fresh(index: WorkspaceIndex, path: Path, text: str, offset: int, budget: int) -> list:
    """The retrieval computed with nothing remembered."""
    retriever = Retriever(index.store, index.resolver, index.related_cache, Reuse())
    return retriever.context_for(index.relative(path), language_for_path(path).name, text, offset, budget, _tokens)


def keystrokes(seed: int):
    """(file, text, offset) of each keystroke: at seeded lines of real files, the end of the line
    deleted and typed back a character at a time, as an editor asks while the user types."""
    rng = random.Random(seed)
    for name in TYPED_FILES:
        path = REPO / name
        lines = path.read_text().split("\n")
        code = [number for number, line in enumerate(lines) if len(line.strip()) >= 12]
        for number in sorted(rng.sample(code, CURSORS_PER_FILE)):
            line = lines[number]
            line_start = sum(len(before) + 1 for before in lines[:number])
            indent = len(line) - len(line.lstrip())
            for typed in range(max(indent, len(line) - MAX_TYPED), len(line) + 1):
                text = "\n".join(lines[:number] + [line[:typed]] + lines[number + 1:])
                yield path, text, line_start + typed


@pytest.fixture(scope="module")
def repo_index():
    index = WorkspaceIndex(REPO)
    index.refresh()
    yield index
    index.close()


class PrefixLookups:
    """Counts the store's lookups by the start of a name (the real ones run)."""

    def __init__(self, index: WorkspaceIndex, monkeypatch: pytest.MonkeyPatch):
        self.count = 0
        lookup = index.store.definitions_prefixed

        def counted(prefix: str, limit: int) -> list:
            self.count += 1
            return lookup(prefix, limit)

        monkeypatch.setattr(index.store, "definitions_prefixed", counted)


@pytest.mark.parametrize("budget", [200, 512, 4000])
def test_reused_retrieval_equals_a_fresh_one_while_typing(repo_index: WorkspaceIndex, budget: int,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    reused_fittings = 0
    previous: list = []
    count = 0
    lookups = PrefixLookups(repo_index, monkeypatch)
    reused_lookups = fresh_lookups = 0
    for path, text, offset in keystrokes(seed=budget):
        before = lookups.count
        snippets = repo_index.context_for(path, text, offset, budget, _tokens)
        reused_lookups += lookups.count - before
        before = lookups.count
        assert snippets == _fresh(repo_index, path, text, offset, budget), (path, offset)
        fresh_lookups += lookups.count - before
        # the same snippet objects as the keystroke before: the fitting was reused, not redone
        reused_fittings += bool(snippets) and len(snippets) == len(previous) and \
            all(a is b for a, b in zip(snippets, previous))
        previous = snippets
        count += 1
    assert count > 300
    assert reused_fittings > count // 10  # typing keeps most lookups: it is reused, not recomputed
    assert reused_lookups < fresh_lookups / 2  # a name typed on narrows the lookup of its start


def test_retrievals_in_two_files_at_once_each_get_their_own_answers(repo_index: WorkspaceIndex) -> None:
    """Two prompt threads (two editors' keystrokes) replace each other's scope all the time: a
    retrieval keeps filling the scope it started with, never another file's."""
    corpus = list(keystrokes(seed=7))
    halves = [[k for k in corpus if k[0].name == name] for name in ("assistant.py", "extension.ts")]
    answers: list[list] = [[], []]

    def type_in(half: int) -> None:
        for path, text, offset in halves[half]:
            answers[half].append(repo_index.context_for(path, text, offset, 512, _tokens))

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # the threads take turns inside retrievals, not between them
    try:
        threads = [threading.Thread(target=type_in, args=(half,)) for half in (0, 1)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    for half in (0, 1):
        assert len(answers[half]) == len(halves[half]) > 50
        for (path, text, offset), snippets in zip(halves[half], answers[half]):
            assert snippets == _fresh(repo_index, path, text, offset, 512), (path, offset)


def test_a_fresh_retrieval_does_not_touch_what_is_remembered(repo_index: WorkspaceIndex) -> None:
    path = REPO / "osslsp" / "assistant.py"
    text = path.read_text()
    shared = Reuse.of(repo_index.store)
    repo_index.context_for(path, text, len(text) // 2, 512, _tokens)
    remembered = shared.scoped((repo_index.relative(path), "python", repo_index.lookups.version, repo_index.resolver))
    assert remembered.resolved and remembered.fitted is not None
    _fresh(repo_index, REPO / "osslsp" / "server.py", text, 10, 512)
    assert shared.scoped(remembered.scope) is remembered


FILES = {
    "app/render.py": 'def render(template: str, *, escape: bool = True) -> str:\n    """Fill a template."""\n',
    "app/page.py": "from app.render import render\n\n\ndef page(title):\n    html = render(\n",
    "app/similar.py": "def layout(columns, gutter, margin):\n    return columns * gutter + margin\n",
}


@pytest.fixture()
def small_index(tmp_path: Path):
    root = tmp_path / "ws"
    for relative, text in FILES.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)
    index = WorkspaceIndex(root, cache_dir=tmp_path / "cache")
    index.refresh()
    yield index
    index.close()


def _context(index: WorkspaceIndex, text: str) -> str:
    path = index.root / "app" / "page.py"
    snippets = index.context_for(path, text, len(text), 2000, _tokens)
    assert snippets == _fresh(index, path, text, len(text), 2000)
    return "\n".join(f"{snippet.path}:{snippet.line} {snippet.reason}\n{snippet.text}" for snippet in snippets)


def test_an_edit_of_another_buffer_is_seen_at_the_next_keystroke(small_index: WorkspaceIndex) -> None:
    text = FILES["app/page.py"]
    assert "escape: bool" in _context(small_index, text)
    assert "escape: bool" in _context(small_index, text)  # remembered
    small_index.set_buffer(small_index.root / "app" / "render.py", "def render(page, theme): ...\n")
    context = _context(small_index, text)
    assert "def render(page, theme):" in context and "escape" not in context


def test_a_file_changed_on_disk_and_a_new_file_are_seen(small_index: WorkspaceIndex) -> None:
    text = FILES["app/page.py"] + "    width = columns * gutter + margin"
    assert "def layout(columns" in _context(small_index, text)  # similar code
    similar = small_index.root / "app" / "similar.py"
    similar.write_text("def spacing(columns, gutter, margin):\n    return columns * gutter + margin\n")
    small_index.reindex_path("app/similar.py")
    context = _context(small_index, text)
    assert "def spacing(columns" in context and "def layout(" not in context
    (small_index.root / "app" / "theme.py").write_text("def theme_colors(dark: bool) -> dict:\n    ...\n")
    small_index.reindex_path("app/theme.py")
    assert "def theme_colors(dark: bool)" in _context(small_index, text + "\n    colors = theme_col")


def test_a_full_refresh_is_seen(small_index: WorkspaceIndex) -> None:
    text = FILES["app/page.py"]
    assert "escape: bool" in _context(small_index, text)
    (small_index.root / "app" / "render.py").write_text("def render(document, strict=False):\n    ...\n")
    small_index.refresh()
    context = _context(small_index, text)
    assert "def render(document, strict=False):" in context and "escape" not in context
