"""The `osslsp` command: serve the editor, or run one job from the shell."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

from osslsp import __version__
from osslsp.cli.common import MEANINGLESS, add_model_options, fail, load_settings, refresh_index, run_job, tell_demo
from osslsp.models import GPT_OSS_20B, offline
from osslsp.settings import DEFAULT_MODEL


class Target:
    """`PATH:LINE:COL` (1-based line, 1-based column in characters), PATH relative to --root."""

    def __init__(self, spec: str, root: Path):
        path, _, rest = spec.rpartition(":")
        path2, _, line = path.rpartition(":")
        try:
            self.line, self.column = int(line), int(rest)
        except ValueError:
            raise SystemExit(f"osslsp: {spec!r} is not PATH:LINE:COL") from None
        self.spec = spec
        self.path = Path(path2) if Path(path2).is_absolute() else root / path2
        if not self.path.is_file():
            raise SystemExit(f"osslsp: {self.path} is not a file")
        self.text = self.path.read_text(errors="replace")

    def offset(self) -> int:
        """The string offset of the target; exits with a message when it is not in the file."""
        lines = self.text.split("\n")
        if not 1 <= self.line <= len(lines):
            raise SystemExit(f"osslsp: {self.spec}: line {self.line} is not in the file ({len(lines)} lines)")
        if not 1 <= self.column <= len(lines[self.line - 1]) + 1:
            raise SystemExit(f"osslsp: {self.spec}: column {self.column} is past the end of the line")
        return sum(len(line) + 1 for line in lines[: self.line - 1]) + self.column - 1


def _add_target_options(parser: argparse.ArgumentParser, many: bool) -> None:
    parser.add_argument("targets" if many else "target", nargs="+" if many else None,
                        metavar="PATH:LINE:COL", help="1-based line and column (in characters)")
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="workspace root (default: .)")
    parser.add_argument("--json", action="store_true", help="print JSON")


SERVE_ON_A_TERMINAL = """\
osslsp: the language server is waiting for an editor: it speaks LSP (JSON-RPC) on stdin and stdout.
Your editor starts `osslsp serve` itself (README.md, "Editor setup"). From a shell, try
`osslsp complete FILE:LINE:COL` or `osslsp doctor` instead. Ctrl-C stops it."""


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the language server on stdio (or TCP, where each connection must send a token first)."""
    if not args.tcp and sys.stdin.isatty():
        print(SERVE_ON_A_TERMINAL, file=sys.stderr, flush=True)
    from osslsp.features import create_server

    server = create_server(load_settings(args))
    if args.tcp:
        from osslsp.remote.places import ListenError, is_loopback, serve_token

        host, _, port = args.tcp.rpartition(":")
        host = host.strip("[]") or "127.0.0.1"
        if not port.isdigit():
            return fail(f"--tcp {args.tcp!r}: expected HOST:PORT, e.g. 127.0.0.1:2087")
        explicit = args.token_file is not None or bool(os.environ.get("OSSLSP_TOKEN"))
        if not is_loopback(host) and not explicit:
            return fail(f"listening on {host} lets other machines in: give --token-file FILE "
                        "(or set OSSLSP_TOKEN) and have each client send it")
        try:
            token, where = serve_token(args.token_file, int(port))
        except (ListenError, OSError) as error:
            return fail(f"no token: {error}")
        place = where or "$OSSLSP_TOKEN"
        server.serve_tcp(host, int(port), token, lambda address: print(
            f"osslsp serve: listening on {address}; a client's initialize must carry "
            f"initializationOptions.token: the token in {place}", file=sys.stderr, flush=True))
    else:
        server.start_io()
    return 0 if server.protocol._shutdown else 1  # `exit` without `shutdown` (or a lost client): 1


def cmd_complete(args: argparse.Namespace) -> int:
    """Print one completion at a target."""
    from osslsp.assistant import Assistant
    from osslsp.completions import complete

    target = Target(args.target, args.root)
    assistant = Assistant(load_settings(args), args.root.resolve())
    completion = run_job(assistant, complete(assistant, assistant.cursor_at(target.path, target.text, target.offset())))
    tell_demo(assistant)
    meaningless = assistant.meaningless
    if args.json:
        print(json.dumps({"target": args.target, "completion": completion.text, "raw": completion.raw,
                          "meaningless": meaningless, **completion.timings}))
    else:
        print(completion.text if completion.text is not None else "(no completion)")
        if meaningless:
            print(MEANINGLESS.format(model=args.model), file=sys.stderr)
    return 0


def cmd_prompt(args: argparse.Namespace) -> int:
    """Print the exact prompt for each target, without loading weights (gpt-oss-20b's unless
    --model names another model; its tokenizer is built offline when it is not on disk)."""
    from osslsp.assistant import Assistant, AssistantError

    assistant = Assistant(load_settings(args), args.root.resolve())
    try:
        assistant.load_text()
        tell_demo(assistant)
        refresh_index(assistant)
        for spec in args.targets:
            target = Target(spec, args.root)
            started = time.perf_counter()
            prompt = assistant.completion_prompt(assistant.cursor_at(target.path, target.text, target.offset()))
            elapsed = (time.perf_counter() - started) * 1000
            if args.json:
                print(json.dumps({"target": spec, "prompt": prompt.text, "prompt_tokens": len(prompt.ids),
                                  "ms": round(elapsed, 2), "sections": prompt.sections}))
            else:
                print(f"=== {spec}: {len(prompt.ids)} tokens, {elapsed:.1f} ms ===\n{prompt.text}")
    except AssistantError as error:
        return fail(str(error))
    finally:
        assistant.close()
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    """Check the set-up; print each problem with its fix."""
    from osslsp.doctor import run_doctor

    return run_doctor(args.model)


def cmd_index(args: argparse.Namespace) -> int:
    """Build or refresh the workspace index (or show its statistics)."""
    from osslsp.index import index_main

    return index_main(args.root, args.stats)


def cmd_style_check(args: argparse.Namespace) -> int:
    """Check files against the applicable style guide."""
    from osslsp.style import style_main

    return style_main(args.paths, args.guide)


def cmd_style_list(args: argparse.Namespace) -> int:
    """Show the bundled guides and what the workspace resolves to."""
    from osslsp.style import list_main

    return list_main(args.root)


def cmd_audit(args: argparse.Namespace) -> int:
    """Show the audit log: every generation request with its prompt as sent and its answer."""
    from osslsp.audit import audit_main

    return audit_main(args)


def cmd_bench(args: argparse.Namespace) -> int:
    """Measure stock Transformers and our engine on the same weights, in one process."""
    from osslsp.engine.bench import bench_main

    return bench_main(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="osslsp", description=__doc__)
    parser.add_argument("--version", action="version", version=f"osslsp {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the language server", description=cmd_serve.__doc__)
    add_model_options(serve)
    serve.add_argument("--tcp", metavar="HOST:PORT", help="listen on TCP instead of stdio")
    serve.add_argument("--token-file", type=Path, metavar="FILE",
                       help="with --tcp: the token clients send as initializationOptions.token "
                            "(default: $OSSLSP_TOKEN, else one made and written to a private file)")
    serve.add_argument("--log-file", type=Path, help="write the log here (default: stderr)")
    serve.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    serve.set_defaults(func=cmd_serve)

    complete = commands.add_parser("complete", help="print one completion", description=cmd_complete.__doc__)
    add_model_options(complete)
    _add_target_options(complete, many=False)
    complete.set_defaults(func=cmd_complete)

    prompt = commands.add_parser("prompt", help="print the prompt for targets", description=cmd_prompt.__doc__)
    add_model_options(prompt, default_model=GPT_OSS_20B)  # the prompt gpt-oss-20b gets, on any machine
    _add_target_options(prompt, many=True)
    prompt.set_defaults(func=cmd_prompt)

    doctor = commands.add_parser("doctor", help="check the set-up", description=cmd_doctor.__doc__)
    doctor.add_argument("--model", default=DEFAULT_MODEL)
    doctor.set_defaults(func=cmd_doctor)

    index = commands.add_parser("index", help="build or refresh the workspace index", description=cmd_index.__doc__)
    index.add_argument("root", nargs="?", type=Path, default=Path.cwd(), help="workspace root (default: .)")
    index.add_argument("--stats", action="store_true", help="only show the statistics of the existing index")
    index.set_defaults(func=cmd_index)

    style = commands.add_parser("style", help="team style guides").add_subparsers(dest="style_command", required=True)
    check = style.add_parser("check", help="check files against the style guide", description=cmd_style_check.__doc__)
    check.add_argument("paths", nargs="+", type=Path)
    check.add_argument("--guide", default="", help="a bundled guide name or a TOML file (default: the workspace's)")
    check.set_defaults(func=cmd_style_check)
    listing = style.add_parser("list", help="show bundled guides and the workspace's", description=cmd_style_list.__doc__)
    listing.add_argument("--root", type=Path, default=Path.cwd())
    listing.set_defaults(func=cmd_style_list)

    audit = commands.add_parser("audit", help="show the audit log of generation requests",
                                description=cmd_audit.__doc__)
    audit.add_argument("-n", type=int, default=10, metavar="N", help="the last N records (default: %(default)s)")
    audit.add_argument("--json", action="store_true", help="one JSON object a line, as stored")
    audit.add_argument("--follow", action="store_true", help="then show new records as they come")
    audit.add_argument("--engine", action="store_true", help="the engine's log (its remote clients' requests)")
    audit.add_argument("--file", type=Path, help="a log elsewhere (the auditLog setting's path)")
    audit.set_defaults(func=cmd_audit)

    from osslsp.cli.actions import add_commands as add_action_commands
    from osslsp.cli.engine import add_commands as add_engine_commands

    add_action_commands(commands)
    add_engine_commands(commands)

    from osslsp.engine.bench_options import add_arguments as add_bench_arguments

    bench = commands.add_parser("bench", help="benchmark stock Transformers against our engine",
                                description=cmd_bench.__doc__)
    add_model_options(bench)
    bench.add_argument("--json", action="store_true", help="print JSON")
    add_bench_arguments(bench)
    bench.set_defaults(func=cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    offline()
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if getattr(args, "verbose", False) else logging.WARNING,
        filename=getattr(args, "log_file", None),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return args.func(args)
    except BrokenPipeError:  # `osslsp ... | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
