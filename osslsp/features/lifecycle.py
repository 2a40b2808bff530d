"""Start-up, settings and shutdown: settings from initializationOptions, workspace configuration
and didChangeConfiguration; the model starts loading once the client is initialized, with
`$/progress` while it loads."""

from __future__ import annotations

import asyncio
from pathlib import Path

from lsprotocol import types
from pygls.uris import to_fs_path

from osslsp.assistant import AssistantError
from osslsp.features.progress import Progress
from osslsp.features.workspace_index import index_workspace
from osslsp.server import OsslspServer


def _workspace_root(params: types.InitializeParams) -> Path | None:
    if params.workspace_folders:
        return Path(to_fs_path(params.workspace_folders[0].uri))
    if params.root_uri:
        return Path(to_fs_path(params.root_uri))
    return Path(params.root_path) if params.root_path else None


async def _pull_configuration(server: OsslspServer) -> bool:
    """Ask the client for section "osslsp", if it can answer; True when the model must reload.
    Shielded, as pygls 2.1 crashes when a task is cancelled while it awaits a client request."""
    workspace = server.client_capabilities.workspace
    if not (workspace and workspace.configuration):
        return False
    request = types.ConfigurationParams(items=[types.ConfigurationItem(section="osslsp")])
    try:
        result = await asyncio.shield(server.workspace_configuration_async(request))
    except Exception as error:  # a client that fails this request still gets completions
        server.log(f"workspace/configuration failed: {error}", types.MessageType.Warning)
        return False
    return bool(result and result[0] is not None and server.apply_settings(result[0]))


def _loading_title(server: OsslspServer) -> str:
    """What is loading: the model `auto` chose rather than "auto"."""
    source = server.assistant.source if server.assistant is not None else None
    return f"osslsp: loading {source.spec if source is not None else server.settings.model}"


async def _start_with_progress(server: OsslspServer) -> None:
    """Start the assistant; `$/progress` until its model is ready. When `auto` chose the demo
    model, the log says why and so does the ready status."""
    await server.start_assistant()
    assistant = server.assistant
    note = assistant.source.note if assistant.source is not None else ""
    if note:
        server.log(note, types.MessageType.Warning)
    progress = Progress(server, _loading_title(server), cancellable=False)
    await progress.begin()
    if server.index_task is None and server.index is not None:
        server.index_task = asyncio.create_task(index_workspace(server))
    try:
        await assistant.wait_ready()
    except AssistantError:
        pass  # the state says why; set_state already told the user
    state, message = server.model_state
    if note and state == "ready" and assistant is server.assistant:
        message = f"{message}; {note}"
        if server.state[0] == "indexing":
            server.model_state = (state, message)  # shown when indexing ends
        else:
            server.set_state(state, message)
    progress.end(message or state)


def register(server: OsslspServer) -> None:
    @server.feature(types.INITIALIZE)
    def initialize(ls: OsslspServer, params: types.InitializeParams) -> None:
        """Read the workspace root and the settings sent as initializationOptions."""
        ls.root = _workspace_root(params)
        options = params.initialization_options
        if isinstance(options, dict):
            ls.explanation_notifications = bool(options.pop("explanationNotifications", False))
        ls.apply_settings(options)

    @server.feature(types.INITIALIZED)
    async def initialized(ls: OsslspServer, params: types.InitializedParams) -> None:
        """Merge the workspace configuration, then load the model in the background."""
        await _pull_configuration(ls)
        await _start_with_progress(ls)

    @server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    async def did_change_configuration(ls: OsslspServer, params: types.DidChangeConfigurationParams) -> None:
        """New settings take effect at once; a new model, dtype or device reloads the model.
        Before the first start (`initialized` still pulling) they only update the settings."""
        if params.settings:
            reload = ls.apply_settings(params.settings)
        else:
            reload = await _pull_configuration(ls)
        if reload and ls.assistant is not None:
            await _start_with_progress(ls)

    @server.feature(types.SHUTDOWN)
    def shutdown(ls: OsslspServer, params: None) -> None:
        """Stop the engine thread and the index's watcher."""
        if ls.assistant is not None:
            ls.assistant.close()
        if ls.index is not None:
            ls.index.close()
