"""The keystroke path (issue 23): prompts from kept token counts are the prompts of a full encode.

The reference below builds a completion prompt the way it was built before the counts were kept:
every candidate text encoded from scratch by the tokenizer itself. On a corpus of real files and
cursors, with the real gpt-oss tokenizer and a real retrieval and style guide, the prompt built now
must hold the same text, the same ids and the same section sizes.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

import pytest

from osslsp.assistant import Assistant
from osslsp.index import Snippet
from osslsp.prompts.completion_prompt import (
    CONTEXT_SHARE, GUIDE_SHARE, SUFFIX_SHARE, Cursor, Prompt, _assemble, answer_start, build_completion_prompt,
)
from osslsp.prompts.gpt_oss_tokenizer import gpt_oss_text
from osslsp.prompts.modeltext import ModelText
from osslsp.prompts.tokencount import GPT2_CLEAN_CUT, O200K_CLEAN_CUT, TokenCounter
from osslsp.settings import Settings
from tests.conftest import REPO

CORPUS = ["osslsp/assistant.py", "osslsp/server.py", "osslsp/index/retrieval.py", "osslsp/prompts/completion_prompt.py",
          "editors/vscode/src/extension.ts", "tests/style/samples/go_good.go", "tests/style/samples/rust_good.rs",
          "tests/style/samples/java_good.java", "tests/style/samples/cpp_good.cc", "README.md", "pyproject.toml"]


def reference_prompt(text: ModelText, cursor: Cursor, budget: int, guide: str, snippets: Sequence[Snippet]) -> Prompt:
    """The completion prompt with every count an encode of the whole candidate."""
    def count(candidate: str) -> int:
        return len(text.tokenizer.encode(candidate, add_special_tokens=False).ids)

    def fit(candidate: str, share: int, from_end: bool) -> str:
        if share <= 0 or not candidate:
            return ""
        bound = share * 16
        if len(candidate) > bound:
            candidate = (candidate[-bound:].partition("\n")[2] if from_end
                         else candidate[:bound].rpartition("\n")[0] + "\n")
        lines = candidate.splitlines(keepends=True)

        def take(k: int) -> str:
            return "".join(lines[len(lines) - k:] if from_end else lines[:k])

        low, high = 0, len(lines)
        while low < high:
            middle = (low + high + 1) // 2
            low, high = (middle, high) if count(take(middle)) <= share else (low, middle - 1)
        return take(low)

    skeleton, _ = _assemble(text, cursor, "", "", "", "")
    free = budget - count(skeleton)
    parts, used = [], 0
    for snippet in snippets:
        part = f"# {snippet.path}:{snippet.line}\n{snippet.text.rstrip()}\n"
        if used + count(part) <= int(free * CONTEXT_SHARE):
            parts.append(part)
            used += count(part)
    guide_part, context_part = guide, "\n".join(parts)
    suffix_budget = int(free * SUFFIX_SHARE)
    suffix_part = fit(cursor.suffix, suffix_budget, False).rstrip("\n")
    before_line = cursor.prefix[: len(cursor.prefix) - len(answer_start(text, cursor))]
    prefix_budget = free - count(guide_part) - count(context_part) - count(suffix_part)
    prefix_part = fit(before_line, prefix_budget, True)
    prompt_text, prefill = _assemble(text, cursor, guide_part, context_part, suffix_part, prefix_part)
    ids = text.tokenizer.encode(prompt_text, add_special_tokens=False).ids
    while len(ids) > budget:  # over: the prefix gives back first, then the suffix, the context, the guide
        if prefix_part:
            prefix_budget -= len(ids) - budget
        elif suffix_part:
            suffix_budget -= len(ids) - budget
            suffix_part = fit(cursor.suffix, suffix_budget, False).rstrip("\n")
        elif context_part:
            context_part = ""
        elif guide_part:
            guide_part = ""
        else:
            raise ValueError("over budget with nothing left to give back")
        prefix_part = fit(before_line, prefix_budget, True)
        prompt_text, prefill = _assemble(text, cursor, guide_part, context_part, suffix_part, prefix_part)
        ids = text.tokenizer.encode(prompt_text, add_special_tokens=False).ids
    sections = {"guide": count(guide_part), "context": count(context_part), "suffix": count(suffix_part),
                "prefix": count(prefix_part), "total": len(ids)}
    return Prompt(prompt_text, ids, prefill, text.stop_ids, sections)


def corpus_cursors(per_file: int, seed: int) -> list[tuple[Path, int]]:
    """Offsets in real files: the file's two ends, then seeded places (line starts, mid-line, line ends)."""
    rng = random.Random(seed)
    cursors = []
    for name in CORPUS:
        path = REPO / name
        text = path.read_text()
        line_starts = [0] + [i + 1 for i, c in enumerate(text) if c == "\n"]
        cursors += [(path, 0), (path, len(text))]
        for _ in range(per_file):
            start = rng.choice(line_starts)
            end = text.find("\n", start)
            end = len(text) if end < 0 else end
            cursors.append((path, rng.choice([start, end, rng.randint(start, end)])))
    return cursors


@pytest.fixture(scope="module")
def assistant():
    """The real assistant on this repository: gpt-oss-20b's tokenizer, index and style guides."""
    helper = Assistant(Settings(model="openai/gpt-oss-20b"), REPO)
    helper.load_text()
    helper.index.refresh()
    yield helper
    helper.close()


def _inputs(assistant: Assistant, path: Path, offset: int, budget: int,
            text: str | None = None) -> tuple[Cursor, str, list[Snippet]]:
    """The cursor, guide and snippets of a place in a file (as on disk, or as `text`)."""
    text = path.read_text() if text is None else text
    cursor = assistant.cursor_at(path, text, offset)
    snippets = assistant.context_for(path, text, offset, int(budget * CONTEXT_SHARE))
    return cursor, assistant.guide_text(cursor.language, int(budget * GUIDE_SHARE)), snippets


@pytest.mark.parametrize("budget", [1024, 2048, 8192])
def test_prompts_equal_the_reference_on_real_files(assistant, budget):
    text = assistant.load_text()
    assert text.is_harmony and text.counter.clean_cut is O200K_CLEAN_CUT
    for path, offset in corpus_cursors(per_file=4, seed=budget):
        cursor, guide, snippets = _inputs(assistant, path, offset, budget)
        prompt = build_completion_prompt(text, cursor, budget, guide, snippets)
        expected = reference_prompt(text, cursor, budget, guide, snippets)
        where = f"{path.name}:{offset}"
        assert prompt.text == expected.text, where
        assert prompt.ids == expected.ids == text.encode(prompt.text), where  # one encode of the text
        assert prompt.sections == expected.sections and prompt.prefill == expected.prefill, where


def test_prompts_equal_the_reference_with_gpt2s_pattern(assistant, tiny_text):
    """The tiny model's byte-level BPE (GPT-2's pattern, as SmolLM2's) cuts before top-level lines only."""
    assert tiny_text.counter.clean_cut is GPT2_CLEAN_CUT
    for path, offset in corpus_cursors(per_file=2, seed=1)[:24]:
        cursor, guide, snippets = _inputs(assistant, path, offset, 2048)
        prompt = build_completion_prompt(tiny_text, cursor, 2048, guide, snippets)
        expected = reference_prompt(tiny_text, cursor, 2048, guide, snippets)
        assert (prompt.text, prompt.ids, prompt.sections) == (expected.text, expected.ids, expected.sections)


class RecordingTokenizer:
    """The real tokenizer, with a record of every text it encodes."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.encoded: list[str] = []

    def encode(self, text: str, add_special_tokens: bool = True):
        self.encoded.append(text)
        return self.tokenizer.encode(text, add_special_tokens=add_special_tokens)

    def __getattr__(self, name: str):
        return getattr(self.tokenizer, name)


def test_typing_re_encodes_only_the_current_line(assistant):
    text = gpt_oss_text()  # a text side of its own, whose counter records
    recorder = RecordingTokenizer(text.tokenizer)
    text.counter = TokenCounter(recorder)
    path = REPO / "osslsp/prompts/completion_prompt.py"
    source = path.read_text()
    line_start = source.index("    skeleton, _ = _assemble(")
    line = source[line_start:source.index("\n", line_start)]
    _, guide, snippets = _inputs(assistant, path, line_start + 4, 2048)  # retrieval is not under test
    for typed in range(4, len(line)):
        document = source[:line_start] + line[:typed] + source[line_start + len(line):]
        cursor = assistant.cursor_at(path, document, line_start + typed)
        recorder.encoded.clear()
        prompt = build_completion_prompt(text, cursor, 2048, guide, snippets)
        assert prompt.ids == text.encode(prompt.text)
        if typed > 4:  # every keystroke after the first at this cursor
            assert recorder.encoded, "the current line changed: something must be encoded"
            assert all(piece in "```python\n" + line[:typed] for piece in recorder.encoded), recorder.encoded


ODD_PIECES = ["\n", "\r\n", "\r", " ", "  ", "\t", "\x0c", "\u2028", "\u00a0", "\u3000", "/", "//", "#", "x",
              "Foo", "it's", "'s", "123", "4567", "(", ")", "):", ".", "<|end|>", "<|start|>", "é", "日本",
              "\U0001F600", "\x1c", "\x85", " /", "*/", "/*", "--", "\\", "    ", "def", "'t", "\n\n"]


@pytest.mark.parametrize("tokenizer_of", ["gpt-oss", "tiny"])
def test_counts_of_odd_texts_equal_a_full_encode(tokenizer_of, tiny_text):
    """Blank lines, slashes, carriage returns, Unicode spaces, specials: the cuts' edge cases."""
    tokenizer = (gpt_oss_text() if tokenizer_of == "gpt-oss" else tiny_text).tokenizer
    counter = TokenCounter(tokenizer)
    assert counter.clean_cut is not None
    rng = random.Random(19)
    for _ in range(3000):
        sample = "".join(rng.choice(ODD_PIECES) for _ in range(rng.randint(1, 40)))
        assert counter.encode(sample) == tokenizer.encode(sample, add_special_tokens=False).ids, repr(sample)
        cut = rng.randrange(len(sample) + 1)
        for start, end, from_end in ((cut, len(sample), True), (0, cut, False)):
            assert_fits_exactly(counter.spans(sample, from_end), start, end, tokenizer)


@pytest.mark.parametrize("tokenizer_of", ["gpt-oss", "tiny"])
def test_stretches_of_real_files_fit_as_a_full_encode_says(tokenizer_of, tiny_text):
    text = gpt_oss_text() if tokenizer_of == "gpt-oss" else tiny_text
    counter = TokenCounter(text.tokenizer)
    rng = random.Random(23)
    for name in CORPUS:
        source = (REPO / name).read_text()
        for from_end in (True, False):
            spans = counter.spans(source, from_end)
            for cut in rng.sample(spans.line_starts, 15):
                assert_fits_exactly(spans, *((cut, len(source)) if from_end else (0, cut)), text.tokenizer)


def assert_fits_exactly(spans, start: int, end: int, tokenizer) -> None:
    """The stretch fits a budget exactly when a full encode of it does (at and around its count)."""
    tokens = len(tokenizer.encode(spans.text[start:end], add_special_tokens=False).ids)
    for budget in (tokens - 1, tokens, tokens + 1, tokens // 2):
        assert spans.fits(start, end, budget) == (tokens <= budget), (repr(spans.text[start:end][:60]), budget)
