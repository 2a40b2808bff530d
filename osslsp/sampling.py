"""How tokens are picked: the one sampling record the language server's backends, the engine and the
engine server's API all use (each adds only what is its own). No torch here."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Sampling:
    """How many tokens and how freely. Temperature 0 is greedy, and then results are reproducible."""

    max_new_tokens: int = 64
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 0
