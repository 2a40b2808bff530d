"""What the `osslsp` subcommands share: the model options, settings from them, failing with a
message, and running one assistant job to its end."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable
from typing import TypeVar

from osslsp.settings import DEFAULT_MODEL, DEVICES, DTYPES, Settings

T = TypeVar("T")
MEANINGLESS = "note: the {model} model has random weights; its text is meaningless (it checks the set-up)"


def load_settings(args: argparse.Namespace) -> Settings:
    """The settings the model options of `add_model_options` give."""
    return Settings(model=args.model, dtype=args.dtype, device=args.device,
                    max_gpu_memory_gib=args.max_gpu_memory, experts=args.experts)


def add_model_options(parser: argparse.ArgumentParser, default_model: str = DEFAULT_MODEL) -> None:
    """Add --model, --dtype, --device, --max-gpu-memory and --experts to a subcommand."""
    parser.add_argument("--model", default=default_model,
                        help="checkpoint directory, hub id in the local cache, .gguf file, "
                             "'smollm2', 'tiny' or random:CONFIG_DIR (default: %(default)s)")
    parser.add_argument("--dtype", choices=DTYPES, default="float16", help="default: %(default)s")
    parser.add_argument("--device", choices=DEVICES, default="auto", help="default: %(default)s")
    parser.add_argument("--max-gpu-memory", type=float, default=0.0, metavar="GIB",
                        help="cap per GPU, to split the model across GPUs (default: no cap)")
    parser.add_argument("--experts", default="auto",
                        help="a released MXFP4 checkpoint's experts on the GPU: auto (FP16 when they fit), fp16 "
                             "or mxfp4; bench takes a comma-separated list (default: %(default)s)")


def fail(message: str, code: int = 2, command: str = "osslsp") -> int:
    """Print `command: message` on stderr; return the exit status `code`."""
    print(f"{command}: {message}", file=sys.stderr)
    return code


def tell_demo(assistant) -> None:
    """Say on stderr why `auto` chose the demo model, if it did."""
    if assistant.source is not None and assistant.source.note:
        print(f"osslsp: {assistant.source.note}", file=sys.stderr)


def refresh_index(assistant) -> None:
    """Bring the workspace index up to date before a one-shot command reads it, with the
    command line's process policy (extraction workers; the process is the command's own)."""
    from osslsp.index.cli import COMMAND_LINE_POLICY

    if assistant.index is not None:
        assistant.index.use_policy(COMMAND_LINE_POLICY)
        assistant.index.refresh()


def run_job(assistant, job: Awaitable[T]) -> T:
    """Run one assistant job to its end, then stop the assistant; exit 2 with the reason on failure."""
    from osslsp.assistant import AssistantError

    try:
        return asyncio.run(job)
    except AssistantError as error:
        raise SystemExit(fail(str(error))) from None
    finally:
        assistant.close()
        assistant.wait_closed()  # the engine thread ends before the interpreter tears down torch
