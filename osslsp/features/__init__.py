"""LSP features: one module per feature, each a thin adapter over the assistant."""

from __future__ import annotations

from osslsp.features import (code_actions, commands, completion_items, explain, inline_completion, lifecycle,
                             workspace_index)
from osslsp.server import OsslspServer
from osslsp.settings import Settings


def create_server(settings: Settings | None = None) -> OsslspServer:
    """A server with every feature's handlers registered."""
    server = OsslspServer(settings or Settings())
    for feature in (lifecycle, workspace_index, inline_completion, completion_items, commands, code_actions,
                    explain):
        feature.register(server)
    return server
