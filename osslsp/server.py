"""The language server: state on a `LanguageServer` subclass; features register themselves.

Only this module and `osslsp.features` import pygls. Everything they do is delegated to the
`Assistant`, which knows nothing of LSP.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol
from pygls.uris import to_fs_path

from osslsp import __version__
from osslsp.assistant import Assistant
from osslsp.documents import PositionError, offset_at
from osslsp.index import WorkspaceIndex
from osslsp.settings import Settings, read_settings

log = logging.getLogger(__name__)

STATUS_NOTIFICATION = "osslsp/status"
# Settings that need a new model (or a new connection to one); the rest apply to the next request.
RELOAD_ON = ("model", "dtype", "device", "max_gpu_memory_gib", "experts", "engine", "engine_token",
             "context_tokens", "index_enabled")
_IGNORED = "$/osslsp/ignored"


class OsslspProtocol(LanguageServerProtocol):
    """pygls's protocol, but every request whose params fail to deserialize gets an answer.

    pygls 2.1 logs such a request and never answers it, so the client waits forever.
    """

    def structure_message(self, data: dict[str, Any]):
        try:
            return super().structure_message(data)
        except JsonRpcException as error:
            if "id" in data and "method" in data:
                self._send_response(
                    data["id"],
                    error=types.ResponseError(
                        code=types.ErrorCodes.InvalidParams,
                        message=f"invalid params for {data['method']}: {error}",
                    ),
                )
            return super().structure_message({"jsonrpc": "2.0", "method": _IGNORED})


class OsslspServer(LanguageServer):
    """The server's state: settings, the assistant, and how to tell the user things."""

    def __init__(self, settings: Settings):
        super().__init__("osslsp", __version__, protocol_cls=OsslspProtocol)
        self.settings = settings  # from the command line, then the client's
        self.assistant: Assistant | None = None
        self.root: Path | None = None
        self.state = ("idle", "")
        self.model_state = ("idle", "")  # the model's own state, shown again after indexing
        self.index: WorkspaceIndex | None = None  # outlives model reloads: it does not depend on the model
        self.index_task: asyncio.Task | None = None  # the background indexing, kept alive here
        self._starting = asyncio.Lock()  # one (re)start at a time
        self.completion_tickets: dict[str, int] = {}  # per document: the newest completion request
        self.explanation_notifications = False  # the client renders osslsp/explanation itself
        self._loop: asyncio.AbstractEventLoop | None = None
        self._told: set[str] = set()

    # --- talking to the user --------------------------------------------------------------

    def log(self, message: str, kind: types.MessageType = types.MessageType.Info) -> None:
        log.log(logging.ERROR if kind == types.MessageType.Error else logging.INFO, message)
        self.window_log_message(types.LogMessageParams(type=kind, message=message))

    def tell_once(self, message: str, kind: types.MessageType = types.MessageType.Error) -> None:
        """Show a message once per server life: a broken model should not pop up per keystroke."""
        self.log(message, kind)
        if message not in self._told:
            self._told.add(message)
            self.window_show_message(types.ShowMessageParams(type=kind, message=message))

    def set_state(self, state: str, message: str) -> None:
        """Report the assistant's state (callable from any thread)."""
        def send() -> None:
            self.state = (state, message)
            if state != "indexing":
                self.model_state = (state, message)
            self.protocol.notify(STATUS_NOTIFICATION, {"state": state, "message": message})
            if state == "error":
                self.tell_once(message)
            else:
                self.log(message)

        if self._loop is not None:
            self._loop.call_soon_threadsafe(send)

    # --- settings and the assistant -------------------------------------------------------

    def apply_settings(self, raw: Any) -> bool:
        """Merge client settings; True when the model must be reloaded."""
        settings, warnings = read_settings(raw, self.settings)
        for warning in warnings:
            self.log(warning, types.MessageType.Warning)
        reload = any(getattr(settings, name) != getattr(self.settings, name) for name in RELOAD_ON)
        self.settings = settings
        logging.getLogger("osslsp").setLevel(settings.log_level.upper())
        if self.assistant is not None and not reload:
            self.assistant.settings = settings
        return reload

    async def start_assistant(self) -> None:
        """(Re)start the assistant with the current settings; the model loads in the background.

        The old model is unloaded first: two copies of gpt-oss-20b do not fit one GPU.
        """
        async with self._starting:
            self._loop = asyncio.get_running_loop()
            old, self.assistant = self.assistant, None
            if old is not None:
                old.close()
                await asyncio.to_thread(old.wait_closed)
            if self.index is None and self.root is not None and self.settings.index_enabled:
                self.index = WorkspaceIndex(self.root)
            self.assistant = Assistant(
                self.settings, self.root, on_state=self.set_state,
                on_warning=lambda message: self.tell_once(message, types.MessageType.Warning),
                index=self.index if self.settings.index_enabled else None,
            )
            self.assistant.start()

    # --- documents ------------------------------------------------------------------------

    @property
    def position_encoding(self) -> str:
        """The column unit agreed with the client: "utf-16" unless it offered another first."""
        encoding = self.workspace.position_encoding
        return str(getattr(encoding, "value", encoding) or "utf-16")

    def document_at(self, uri: str, position: types.Position) -> tuple[Path, str, int, str | None]:
        """Path, text, offset and language of an open document at a position; InvalidParams if not."""
        document = self.workspace.text_documents.get(uri)
        if document is None:
            raise JsonRpcInvalidParams(f"{uri} is not open: send textDocument/didOpen first")
        text = document.source
        try:
            offset = offset_at(text, position.line, position.character, self.position_encoding)
        except PositionError as error:
            raise JsonRpcInvalidParams(f"{uri}: {error}") from error
        path = Path(to_fs_path(uri) or uri)
        return path, text, offset, document.language_id


def create_server(settings: Settings | None = None) -> OsslspServer:
    """A server with every feature registered."""
    from osslsp import features

    server = OsslspServer(settings or Settings())
    features.register(server)
    return server
