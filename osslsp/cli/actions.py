"""`osslsp generate PATH:LINE` and `osslsp explain PATH:START[-END]`: the actions from a shell.

`add_commands(subparsers)` adds both to the `osslsp` command's subparsers.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from osslsp.actions.explain import explain_stream, selection_in
from osslsp.actions.generate import generate_body
from osslsp.actions.stubs import find_stub, supports
from osslsp.assistant import Assistant, AssistantError
from osslsp.cli.common import MEANINGLESS, add_model_options, fail, load_settings, refresh_index, run_job
from osslsp.documents import position_at
from osslsp.languages import language_for_path
from osslsp.settings import REASONING_EFFORTS, Settings


def _lines(spec: str, root: Path) -> tuple[Path, str, int, int]:
    """PATH:START[-END] as the file, its text and the 1-based first and last lines."""
    path_text, _, lines = spec.rpartition(":")
    first, _, last = lines.partition("-")
    try:
        start, end = int(first), int(last or first)
    except ValueError:
        raise SystemExit(f"osslsp: {spec!r} is not PATH:LINE or PATH:START-END") from None
    path = Path(path_text) if Path(path_text).is_absolute() else root / path_text
    if not path.is_file():
        raise SystemExit(f"osslsp: {path} is not a file")
    text = path.read_text(errors="replace")
    count = text.count("\n") + (0 if text.endswith("\n") else 1)
    if not 1 <= start <= end <= max(count, 1):
        raise SystemExit(f"osslsp: {spec}: lines {start}-{end} are not in the file ({count} lines)")
    return path, text, start, end


def _line_offset(text: str, line: int) -> int:
    """The offset of a 1-based line's first character."""
    return sum(len(row) + 1 for row in text.split("\n")[:line - 1])


def _assistant(args: argparse.Namespace, **settings) -> Assistant:
    assistant = Assistant(dataclasses.replace(load_settings(args), **settings), args.root.resolve())
    refresh_index(assistant)
    return assistant


def cmd_generate(args: argparse.Namespace) -> int:
    """Print the body osslsp would insert into the documented stub at PATH:LINE."""
    path, text, line, _ = _lines(args.target, args.root)
    language = language_for_path(path)
    if language is None or not supports(language.name):
        return fail(f"{path.name}: osslsp cannot generate functions in this language")
    row = text.split("\n")[line - 1]
    offset = _line_offset(text, line) + len(row) - len(row.lstrip())  # on the line's first word
    stub = find_stub(text, language.name, offset)
    if stub is None:
        return fail(f"{args.target}: no documented function with an empty or placeholder body here")
    assistant = _assistant(args, reasoning_effort_generate=args.effort, max_new_tokens=args.max_new_tokens)
    generated = run_job(assistant, generate_body(assistant, path, text, stub))
    meaningless = assistant.meaningless
    if args.json:
        start, end = position_at(text, stub.body_start), position_at(text, stub.body_end)
        print(json.dumps({"target": args.target, "function": stub.name, "newText": generated.new_text,
                          "range": {"start": {"line": start[0], "character": start[1]},
                                    "end": {"line": end[0], "character": end[1]}},
                          "message": generated.message, "attempts": generated.attempts,
                          "problems": generated.problems, "meaningless": meaningless,
                          # The model's own text for each answer that failed the checks, in order.
                          "rejected": generated.answers[:-1] if generated.new_text is not None
                          else generated.answers}))
    elif generated.new_text is not None:
        print(generated.new_text.strip("\n").rstrip())
    if meaningless and not args.json:
        print(MEANINGLESS.format(model=args.model), file=sys.stderr)
    if generated.new_text is None:
        return 1 if args.json else fail(generated.message, 1)
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    """Stream an explanation of lines START to END of a file to stdout."""
    path, text, first, last = _lines(args.target, args.root)
    start, end = _line_offset(text, first), min(_line_offset(text, last + 1), len(text))
    try:
        selection = selection_in(path, text, start, end)
    except AssistantError as error:
        return fail(str(error))
    assistant = _assistant(args, reasoning_effort_explain=args.effort, max_new_tokens=args.max_new_tokens)
    run_job(assistant, _print_stream(assistant, selection))
    if assistant.meaningless:
        print(MEANINGLESS.format(model=args.model), file=sys.stderr)
    return 0


async def _print_stream(assistant: Assistant, selection) -> None:
    shown = ""
    async for markdown in explain_stream(assistant, selection):
        sys.stdout.write(markdown[len(shown):])
        sys.stdout.flush()
        shown = markdown
    print()


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add `generate` and `explain` to the `osslsp` command."""
    for name, function, metavar, effort in (("generate", cmd_generate, "PATH:LINE", "low"),
                                            ("explain", cmd_explain, "PATH:START[-END]", "medium")):
        parser = subparsers.add_parser(name, help=function.__doc__.split(".")[0].lower(),
                                       description=function.__doc__)
        add_model_options(parser)
        parser.add_argument("target", metavar=metavar, help="1-based line numbers")
        parser.add_argument("--root", type=Path, default=Path.cwd(), help="workspace root (default: .)")
        parser.add_argument("--effort", choices=REASONING_EFFORTS, default=effort,
                            help="reasoning effort (default: %(default)s)")
        parser.add_argument("--max-new-tokens", type=int, default=Settings.max_new_tokens,
                            help="the completion budget: generate may take 8 times it, explain 16 times "
                                 "(default: %(default)s)")
        if name == "generate":
            parser.add_argument("--json", action="store_true", help="print JSON")
        parser.set_defaults(func=function)
