"""`osslsp bench`'s own options, importable without torch (the CLI builds its parser from them)."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The bench's own options (the CLI adds --model, --dtype, --device, --max-gpu-memory, --json)."""
    parser.add_argument("--contexts", default=None,
                        help="prompt lengths for cold TTFT (default: 512,2048,8192 on a GPU, 512,2048 on the CPU)")
    parser.add_argument("--new-tokens", type=int, default=48, help="tokens of a completion")
    parser.add_argument("--repeats", type=int, default=5, help="runs per figure (median; p95 of completions)")
    parser.add_argument("--no-seed-recipe", action="store_true", help="skip the seed's eager-experts recipe")
