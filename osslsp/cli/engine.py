"""`osslsp engine`: host one model for every editor window (and any OpenAI-compatible client).

`add_commands(subparsers)` adds the command to the `osslsp` parser; `python -P -m osslsp.cli.engine
engine ...` runs the same command (that is how a language server starts the shared engine).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

from osslsp.cli.common import add_model_options, fail
from osslsp.models import ModelNotFound, offline, resolve_model
from osslsp.remote.places import Listen, ListenError, claim_socket, parse_listen, shared_socket

TOKEN_VARIABLE = "OSSLSP_ENGINE_TOKEN"


def _fail(message: str, code: int = 2) -> int:
    """`fail`, the message naming the subcommand (`osslsp engine: ...`)."""
    return fail(message, code, command="osslsp engine")


def cmd_engine(args: argparse.Namespace) -> int:
    """Host the model once and serve the OpenAI-compatible API (/v1/completions, /v1/chat/completions,
    /v1/models, /health, /metrics). By default on a private Unix socket that `engine = "shared"`
    finds; TCP on a non-loopback address needs a bearer token."""
    try:
        source = resolve_model(args.model)
        listen = parse_listen(args.listen) if args.listen else Listen(
            path=shared_socket(source, args.dtype, args.device))
    except (ModelNotFound, ListenError) as error:
        return _fail(str(error))
    try:
        token = args.token or (args.token_file.read_text().strip() if args.token_file else "") \
            or os.environ.get(TOKEN_VARIABLE, "")
    except OSError as error:
        return _fail(f"--token-file: {error}")
    if args.max_batch < 0 or args.max_waiting < 0:
        return _fail("--max-batch and --max-waiting: give 1 or more (or 0, the default)")
    if not listen.is_loopback and not token:
        return _fail(f"listening on {listen.host} lets other machines in: give --token TOKEN "
                     f"(or set {TOKEN_VARIABLE}); clients then send it as a bearer token")
    if not listen.is_unix and not token:
        print(f"osslsp engine: warning: no token, so every user of this machine can use {listen}",
              file=sys.stderr)
    try:
        lock = claim_socket(listen.path) if listen.is_unix else None
    except ListenError as error:
        return _fail(str(error), code=3)
    try:
        asyncio.run(_serve(source, args, listen, token))
    except OSError as error:  # the address is taken or not ours
        return _fail(f"cannot listen on {listen}: {error}")
    finally:
        if lock is not None:
            lock.close()
    return 0


async def _serve(source, args: argparse.Namespace, listen: Listen, token: str) -> None:
    from osslsp.remote.server import EngineServer
    from osslsp.remote.serving import serve

    from osslsp.audit import ENGINE_LOG, audit_file

    audit_path = None if args.audit_log == "off" else audit_file(args.audit_log or True, ENGINE_LOG)
    server = EngineServer(source, args.dtype, args.device, args.max_gpu_memory, args.max_context, token=token,
                          experts=args.experts, idle_timeout=args.idle_timeout,
                          served_name=args.served_model_name, audit_path=audit_path, max_batch=args.max_batch,
                          max_waiting=args.max_waiting, trace=args.trace)
    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signal_number, server.stopping.set)

    def announce(address: str) -> None:
        print(f"osslsp engine: serving {server.model_name} on {address}", flush=True)

    await serve(server, listen, announce)


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add `engine` to the `osslsp` command's subparsers."""
    engine = subparsers.add_parser("engine", help="host the model once for many editors (OpenAI API)",
                                   description=cmd_engine.__doc__)
    add_model_options(engine)
    engine.add_argument("--listen", metavar="unix:PATH|HOST:PORT",
                        help="where to serve (default: the shared engine's socket in the user's runtime directory)")
    engine.add_argument("--token", default="",
                        help=f"require this bearer token (default: ${TOKEN_VARIABLE}; required off loopback; "
                             "visible to other users in `ps`: prefer --token-file or the variable)")
    engine.add_argument("--token-file", type=Path, metavar="FILE", help="read the bearer token from this file")
    engine.add_argument("--max-context", type=int, default=8192, metavar="TOKENS",
                        help="KV cache length: the longest prompt plus answer (default: %(default)s)")
    engine.add_argument("--max-batch", type=int, default=0, metavar="N",
                        help="generations run together (1: one at a time; default: 32 on a GPU, 1 on a CPU)")
    engine.add_argument("--max-waiting", type=int, default=0, metavar="N",
                        help="requests that may wait; past them a request gets 429 with Retry-After "
                             "(default: 8 for each place in the batch, at least 64)")
    engine.add_argument("--idle-timeout", type=float, default=0.0, metavar="SECONDS",
                        help="exit after this long with no client attached and no request (default: never)")
    engine.add_argument("--served-model-name", default="", metavar="NAME",
                        help="the model's name in the API (default: the --model value)")
    engine.add_argument("--audit-log", default="", metavar="PATH|off",
                        help="the JSON-lines audit log of every request (default: engine.jsonl under "
                             "the cache directory's audit folder; `osslsp audit --engine` shows it)")
    engine.add_argument("--trace", action="store_true",
                        help="time each request's way and each batched step's parts; GET /osslsp/trace "
                             "shows where the time went (benchmarks/load.py --trace)")
    engine.add_argument("--log-file", help="write the log here (default: stderr)")
    engine.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    engine.set_defaults(func=cmd_engine)


def main(argv: list[str] | None = None) -> int:
    offline()
    parser = argparse.ArgumentParser(prog="osslsp")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, filename=args.log_file,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
