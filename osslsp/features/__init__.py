"""LSP features: one module per feature, each a thin adapter over the assistant."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from osslsp.server import OsslspServer


def register(server: OsslspServer) -> None:
    """Register every feature's handlers on a server."""
    from osslsp.features import (code_actions, commands, completion_items, explain, inline_completion, lifecycle,
                                 workspace_index)

    for feature in (lifecycle, workspace_index, inline_completion, completion_items, commands, code_actions,
                    explain):
        feature.register(server)
