"""Plumbing quality of inline completions: what reaches the editor, at cursors that mimic typing.

Real source files from this machine (the Python standard library, JavaScript and C shipped with
installed packages) are cut at cursor positions a typist pauses at, and each is completed with the
real CPU model (SmolLM2) through the assistant, exactly as the server would. Per kind of position:

- non-empty: the share of answers that show something;
- parses: of the non-empty answers, the share that leave the file with no more tree-sitter errors
  (ERROR and MISSING nodes) than the file with the hole had;
- repeats suffix: of the non-empty answers, the share whose end repeats what follows the cursor
  (the rest of the line, or the next line whole);
- mid-token: of the non-empty answers, the share that end inside a word: the model's own text
  went on with the same word, or the answer glues onto a word after the cursor;
- p50 / p95 latency of the whole completion (prompt, generation, post-processing).

A position is made as typing makes it: the rest of the cursor's line is not written yet (an opening
bracket has its closer auto-inserted, as editors do), the lines below are there.

    python benchmarks/completion_quality.py --count 90 [--context-tokens 512] [--json out.json]

`--preemption N` measures instead how long a completion takes alone and while an explanation is
being written (N of each): the engine serves the completion between two of the explanation's steps.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import random
import re
import statistics
import sys
import sysconfig
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import transformers

from osslsp.assistant import Assistant, AssistantError
from osslsp.completions import complete
from osslsp.languages import language_for_path, parser
from osslsp.prompts.completion_prompt import Cursor
from osslsp.prompts.harmony import final_channel
from osslsp.prompts.modeltext import Message
from osslsp.prompts.postprocess import syntax_error_count
from osslsp.settings import Settings

STDLIB = Path(sysconfig.get_paths()["stdlib"])
PURELIB = Path(sysconfig.get_paths()["purelib"])
FILES = [
    STDLIB / name for name in ("textwrap.py", "shlex.py", "fnmatch.py", "heapq.py", "bisect.py", "glob.py",
                               "colorsys.py", "graphlib.py", "statistics.py", "tabnanny.py", "netrc.py",
                               "json/encoder.py", "json/decoder.py", "csv.py", "dataclasses.py")
] + [
    PURELIB / "werkzeug/debug/shared/debugger.js",
    PURELIB / "docutils/writers/s5_html/themes/default/slides.js",
    Path("/usr/share/doc/zlib1g-dev/examples/zpipe.c"),
    Path("/usr/share/doc/zlib1g-dev/examples/gzjoin.c"),
]
KINDS = ("return_space", "return", "after_space", "mid_identifier", "after_paren", "empty_line")
CLOSERS = {"(": ")", "[": "]", "{": "}"}
WORD = re.compile(r"\w")


@dataclass(frozen=True)
class Position:
    """A document as typing left it, and the cursor in it."""

    kind: str
    path: Path
    language: str
    prefix: str
    suffix: str


def _lines_with_offsets(text: str) -> list[tuple[int, str]]:
    offsets, at = [], 0
    for line in text.split("\n"):
        offsets.append((at, line))
        at += len(line) + 1
    return offsets


def _typed(kind: str, path: Path, language: str, text: str, line_start: int, line: str, column: int) -> Position:
    """The document with the cursor's line typed up to `column`, an auto-closed bracket after it."""
    before = line[:column]
    closer = CLOSERS.get(before[-1:], "") if kind == "after_paren" else ""
    rest_of_file = text[line_start + len(line):]
    return Position(kind, path, language, text[:line_start] + before, closer + rest_of_file)


def literal_lines(text: str, language: str) -> set[int]:
    """Rows that hold any part of a string or comment: typing there is prose, not code."""
    rows: set[int] = set()
    stack = [parser(language).parse(text.encode("utf-8", "surrogatepass")).root_node]
    while stack:
        node = stack.pop()
        if "string" in node.type or "comment" in node.type:
            rows.update(range(node.start_point.row, node.end_point.row + 1))
        else:
            stack.extend(node.children)
    return rows


def candidates(path: Path, language: str, text: str) -> dict[str, list[Position]]:
    """Every position of each kind in one file (the caller samples them), on lines of code only."""
    found: dict[str, list[Position]] = {kind: [] for kind in KINDS}
    prose = literal_lines(text, language)
    in_code = [(start, line) for row, (start, line) in enumerate(_lines_with_offsets(text))
               if line.strip() and row not in prose]
    for start, line in in_code:
        stripped = line.lstrip()
        indent = len(line) - len(stripped)
        if stripped.startswith("return ") and len(stripped) > len("return  "):
            found["return_space"].append(_typed("return_space", path, language, text, start, line, indent + 7))
            found["return"].append(_typed("return", path, language, text, start, line, indent + 6))
        for match in re.finditer(r"\S (?=\w)", line[indent:]):
            found["after_space"].append(_typed("after_space", path, language, text, start, line,
                                               indent + match.end()))
        for match in re.finditer(r"\b[A-Za-z_]\w{4,}", line[indent:]):
            column = indent + match.start() + len(match.group()) // 2
            found["mid_identifier"].append(_typed("mid_identifier", path, language, text, start, line, column))
        for match in re.finditer(r"\w\((?!\))", line[indent:]):
            found["after_paren"].append(_typed("after_paren", path, language, text, start, line,
                                               indent + match.end()))
        if indent and not stripped.startswith(("}", ")", "]")):
            found["empty_line"].append(_typed("empty_line", path, language, text, start, line, indent))
    return found


def positions(count: int, seed: int, kinds: tuple[str, ...] = KINDS) -> list[Position]:
    """`count` positions, the same share of each kind, drawn evenly from the files that exist."""
    pools: dict[str, list[Position]] = {kind: [] for kind in KINDS}
    for path in FILES:
        language = language_for_path(path)
        if not path.is_file() or language is None:
            continue
        for kind, found in candidates(path, language.name, path.read_text(errors="replace")).items():
            pools[kind].extend(found)
    chooser = random.Random(seed)
    chosen = []
    for kind in kinds:
        chosen.extend(chooser.sample(pools[kind], min(count // len(kinds), len(pools[kind]))))
    return chosen


def repeats_suffix(answer: str, suffix: str) -> bool:
    """The answer's end repeats what follows the cursor: the rest of the line, or the next line."""
    line_rest = suffix.split("\n", 1)[0].strip()
    if line_rest and answer.rstrip().endswith(line_rest):
        return True
    next_line = next((line.strip() for line in suffix.split("\n")[1:] if line.strip()), "")
    last_line = answer.rstrip().rsplit("\n", 1)[-1].strip()
    return bool(next_line) and "\n" in answer and last_line == next_line


def ends_mid_token(answer: str, model_text: str, suffix: str) -> bool:
    """The answer stops inside a word: the model's text went on with it, the generation stopped
    there mid-line, or it glues onto a word that follows the cursor."""
    if not WORD.match(answer[-1:]):
        return False
    if WORD.match(suffix[:1]):
        return True
    at = model_text.find(answer)
    if at < 0:
        return False
    following = model_text[at + len(answer):]
    return bool(WORD.match(following[:1])) or following == ""


async def measure(assistant: Assistant, position: Position) -> dict:
    cursor = Cursor(path=position.path.name, language=position.language, prefix=position.prefix,
                    suffix=position.suffix, absolute=position.path)
    started = time.perf_counter()
    try:
        completion = await complete(assistant, cursor)
    except AssistantError as error:  # a line longer than the budget: not a completion to count
        return {"kind": position.kind, "file": position.path.name, "error": str(error)}
    latency_ms = (time.perf_counter() - started) * 1000
    answer = completion.text or ""
    model_text = final_channel(completion.raw)
    model_text = model_text[len(completion.prompt.prefill):] if model_text.startswith(completion.prompt.prefill) \
        else model_text
    model_text = model_text.split("```", 1)[0]
    row = {"kind": position.kind, "file": position.path.name, "line": position.prefix.count("\n") + 1,
           "line_prefix": cursor.line_prefix, "answer": answer, "latency_ms": round(latency_ms, 1)}
    if answer:
        # An answer may replace the editor's closers after the cursor (its range covers them).
        suffix = position.suffix[getattr(completion, "replaced", 0):]
        before = syntax_error_count(position.prefix + position.suffix, position.language)
        after = syntax_error_count(position.prefix + answer + suffix, position.language)
        row.update(parses=after <= before, repeats_suffix=repeats_suffix(answer, suffix),
                   mid_token=ends_mid_token(answer, model_text, suffix))
    return row


def _share(rows: list[dict], key: str) -> str:
    shown = [row for row in rows if row["answer"]]
    return f"{sum(row[key] for row in shown)}/{len(shown)}" if shown else "-"


def summary(rows: list[dict]) -> list[str]:
    skipped = [row for row in rows if "error" in row]
    rows = [row for row in rows if "error" not in row]
    lines = [f"{len(skipped)} positions skipped: {skipped[0]['error']}"] if skipped else []
    lines += ["| kind | n | non-empty | parses | repeats suffix | mid-token | p50 ms | p95 ms |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for kind in (*KINDS, "all"):
        subset = [row for row in rows if kind in ("all", row["kind"])]
        if not subset:
            continue
        latencies = sorted(row["latency_ms"] for row in subset)
        p95 = latencies[min(len(latencies) - 1, int(round(0.95 * (len(latencies) - 1))))]
        non_empty = sum(1 for row in subset if row["answer"])
        lines.append(f"| {kind} | {len(subset)} | {non_empty}/{len(subset)} | {_share(subset, 'parses')} | "
                     f"{_share(subset, 'repeats_suffix')} | {_share(subset, 'mid_token')} | "
                     f"{statistics.median(latencies):.0f} | {p95:.0f} |")
    return lines


async def run(count: int, seed: int, kinds: tuple[str, ...], model: str, context_tokens: int,
              progress: bool) -> list[dict]:
    assistant = Assistant(Settings(model=model, index_enabled=False, context_tokens=context_tokens))
    await assistant.wait_ready()
    rows = []
    try:
        for number, position in enumerate(positions(count, seed, kinds), 1):
            rows.append(await measure(assistant, position))
            if progress and "error" not in rows[-1]:
                row = rows[-1]
                print(f"{number:4d} {row['kind']:14s} {row['latency_ms']:7.0f} ms "
                      f"{row['line_prefix'][-30:]!r} -> {row['answer'][:40]!r}", file=sys.stderr)
    finally:
        assistant.close()
        assistant.wait_closed()
    return rows


EXPLAINED = ("def mean(values):\n    total = 0\n    for value in values:\n        total += value\n"
             "    return total / len(values)\n")
TYPED = ['def add(a, b):\n    """Return the sum of a and b."""\n    return ',
         'def area(width, height):\n    """The area of a rectangle."""\n    return ',
         'def square(x):\n    """x times x."""\n    return ']


async def preemption(model: str, repeats: int) -> dict[str, float]:
    """Completion latency alone and while an explanation is being written (the explanation's
    prompt fills the model's cache in both cases, so the completion never reuses its own)."""
    assistant = Assistant(Settings(model=model, index_enabled=False, context_tokens=512))
    await assistant.wait_ready()
    explain = [Message("user", f"Explain this code in detail:\n```python\n{EXPLAINED}```")]
    alone, during, answered_first = [], [], 0
    try:
        for number in range(repeats):
            cursor = Cursor("typed.py", "python", TYPED[number % len(TYPED)], "\n")
            async for _ in assistant.chat(explain, max_new_tokens=1):
                pass
            started = time.perf_counter()
            await complete(assistant, cursor)
            alone.append((time.perf_counter() - started) * 1000)
            explanation = asyncio.ensure_future(_drain(assistant.chat(explain, max_new_tokens=1024, key="explain")))
            await asyncio.sleep(1.0)  # the explanation is past its prefill, writing
            started = time.perf_counter()
            await complete(assistant, cursor)
            during.append((time.perf_counter() - started) * 1000)
            answered_first += not explanation.done()
            explanation.cancel()
            await asyncio.gather(explanation, return_exceptions=True)
    finally:
        assistant.close()
        assistant.wait_closed()
    return {"alone_p50_ms": round(statistics.median(alone)), "during_p50_ms": round(statistics.median(during)),
            "ratio": round(statistics.median(during) / statistics.median(alone), 2),
            "answered_while_the_explanation_ran": f"{answered_first}/{repeats}"}


async def _drain(stream) -> None:
    async for _ in stream:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=90, help="cursor positions in all (split evenly by kind)")
    parser.add_argument("--seed", type=int, default=20)
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS), help="only these kinds")
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--context-tokens", type=int, default=512,
                        help="the prompt budget (the server's default 2048 costs ~4x the CPU time a position)")
    parser.add_argument("--json", type=Path, help="write every answer here")
    parser.add_argument("--quiet", action="store_true", help="no line per position on stderr")
    parser.add_argument("--preemption", type=int, metavar="N",
                        help="instead: N completions alone and N while an explanation runs (latency ratio)")
    args = parser.parse_args()
    if args.preemption:
        print(json.dumps(asyncio.run(preemption(args.model, args.preemption))))
        return
    started = time.time()
    rows = asyncio.run(run(args.count, args.seed, tuple(args.kinds), args.model, args.context_tokens,
                           not args.quiet))
    print(f"{args.model} on {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}, transformers {transformers.__version__}, "
          f"{time.strftime('%Y-%m-%d')}, context {args.context_tokens} tokens, {len(rows)} positions in "
          f"{time.time() - started:.0f} s, seed {args.seed}")
    print("\n".join(summary(rows)))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
