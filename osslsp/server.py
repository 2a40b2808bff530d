"""The language server: state on a `LanguageServer` subclass; features register themselves.

Only this module and `osslsp.features` import pygls. Everything they do is delegated to the
`Assistant`, which knows nothing of LSP.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams
from pygls.io_ import run_async
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol
from pygls.uris import to_fs_path

from osslsp import __version__
from osslsp.assistant import Assistant
from osslsp.documents import PositionError, offset_at, window_around
from osslsp.index import WorkspaceIndex
from osslsp.settings import Settings, read_settings

log = logging.getLogger(__name__)

STATUS_NOTIFICATION = "osslsp/status"
# Settings that need a new model (or a new connection to one); the rest apply to the next request.
RELOAD_ON = ("model", "dtype", "device", "max_gpu_memory_gib", "experts", "engine", "engine_token",
             "context_tokens", "index_enabled")
_IGNORED = "$/osslsp/ignored"
MAX_PROMPT_DOCUMENT_CHARS = 2_000_000  # a larger document is read around the cursor only
FIRST_MESSAGE_SECONDS = 10.0  # a TCP client has this long to send `initialize` with its token
FIRST_MESSAGE_BYTES = 1 << 20
AUTH_HELP = ("authentication required: the first message must be initialize with "
             "initializationOptions.token set to the server's token (osslsp serve --tcp prints where it is)")


class OsslspProtocol(LanguageServerProtocol):
    """pygls's protocol, but every request gets an answer: InvalidParams when its params fail to
    deserialize, InvalidRequest for an id that is not a string or number and for any request after
    `shutdown` (pygls 2.1 logs these and never answers, so the client waits forever)."""

    def structure_message(self, data: dict[str, Any]):
        if "jsonrpc" not in data:  # a nested object: json.loads hands every one to this hook
            return data
        if "id" in data and "method" in data and not _valid_id(data["id"]):
            self._refuse(None, types.ErrorCodes.InvalidRequest, "a request id must be a string or a number")
            return super().structure_message({"jsonrpc": "2.0", "method": _IGNORED})
        if data.get("method") == types.TEXT_DOCUMENT_INLINE_COMPLETION:
            _range_from_array(data)
        try:
            return super().structure_message(data)
        except JsonRpcException as error:
            if "id" in data and "method" in data:
                self._refuse(data["id"], types.ErrorCodes.InvalidParams,
                             f"invalid params for {data['method']}: {error}")
            return super().structure_message({"jsonrpc": "2.0", "method": _IGNORED})

    def handle_message(self, message) -> None:
        method = getattr(message, "method", None)
        if self._shutdown and method not in (None, types.EXIT) and getattr(message, "id", None) is not None:
            self._refuse(message.id, types.ErrorCodes.InvalidRequest, f"{method}: the server is shut down")
            return
        super().handle_message(message)

    def _refuse(self, msg_id, code: types.ErrorCodes, message: str) -> None:
        log.warning("refused: %s", message)
        self._send_response(msg_id, error=types.ResponseError(code=code, message=message))

    def parse_error(self, error: Exception) -> None:
        """A message that is not JSON (or nested too deep to read) gets JSON-RPC's ParseError."""
        self._refuse(None, types.ErrorCodes.ParseError, f"the message is not JSON: {error}")


def _valid_id(msg_id: Any) -> bool:
    return isinstance(msg_id, (str, int)) and not isinstance(msg_id, bool)


def _range_from_array(data: dict[str, Any]) -> None:
    """vscode-languageclient 9.0.1 sends `selectedCompletionInfo.range` as `[start, end]`
    (microsoft/vscode-languageserver-node#1371): make it the Range the specification defines."""
    params = data.get("params")
    context = params.get("context") if isinstance(params, dict) else None
    info = context.get("selectedCompletionInfo") if isinstance(context, dict) else None
    if isinstance(info, dict) and isinstance(info.get("range"), list) and len(info["range"]) == 2:
        info["range"] = {"start": info["range"][0], "end": info["range"][1]}


def _frame(message: dict[str, Any]) -> bytes:
    body = json.dumps(message).encode()
    return f"Content-Length: {len(body)}\r\n\r\n".encode() + body


async def _read_frame(reader: asyncio.StreamReader) -> bytes:
    """One message's body; ValueError for a missing or absurd Content-Length."""
    length = None
    while (line := await reader.readline()) not in (b"\r\n", b"\n"):
        if not line:
            raise ConnectionError("closed")
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length is None or not 0 < length <= FIRST_MESSAGE_BYTES:
        raise ValueError(f"Content-Length {length}")
    return await reader.readexactly(length)


def _authenticated(body: bytes, token: str) -> tuple[dict[str, Any] | None, Any, str]:
    """The first message with its token taken out (None when refused), its id, and why it is
    refused."""
    try:
        message = json.loads(body)
    except (ValueError, RecursionError):
        return None, None, "the first message is not JSON"
    if not isinstance(message, dict):
        return None, None, AUTH_HELP
    msg_id = message.get("id") if _valid_id(message.get("id")) else None
    params = message.get("params")
    options = params.get("initializationOptions") if isinstance(params, dict) else None
    given = options.pop("token", None) if isinstance(options, dict) else None
    if message.get("method") != types.INITIALIZE or not isinstance(given, str) \
            or not hmac.compare_digest(given.encode(), token.encode()):
        return None, msg_id, AUTH_HELP
    return message, msg_id, ""


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
        self._windowed: set[str] = set()  # documents too large to prompt from whole (logged once)

    # --- connections ----------------------------------------------------------------------

    def report_server_error(self, error: Exception, source) -> None:
        """A message that is not JSON is answered with ParseError, not a popup."""
        if isinstance(error, (json.JSONDecodeError, UnicodeDecodeError, RecursionError)):
            self.protocol.parse_error(error)
        else:
            super().report_server_error(error, source)

    def serve_tcp(self, host: str, port: int, token: str, announce: Callable[[str], None]) -> None:
        """Serve one client on TCP. Its first message must be `initialize` carrying
        `initializationOptions.token`; any other first message, a wrong token, a second client
        or silence for FIRST_MESSAGE_SECONDS gets the connection refused and closed."""
        self._stop_event = stop_event = threading.Event()
        connected = False

        async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal connected
            try:
                body = await asyncio.wait_for(_read_frame(reader), FIRST_MESSAGE_SECONDS)
            except (TimeoutError, ValueError, ConnectionError, asyncio.IncompleteReadError) as error:
                log.warning("TCP connection closed before it authenticated: %s", error or "timeout")
                writer.close()
                return
            message, msg_id, refusal = _authenticated(body, token)
            if message is not None and connected:
                message, refusal = None, "another client is connected: this server serves one"
            if message is None:
                log.warning("TCP connection refused: %s", refusal)
                writer.write(_frame({"jsonrpc": "2.0", "id": msg_id, "error": {
                    "code": types.ErrorCodes.InvalidRequest, "message": refusal}}))
                await writer.drain()
                writer.close()
                return
            connected = True
            self.protocol.set_writer(writer)
            self.protocol.handle_message(json.loads(json.dumps(message), object_hook=self.protocol.structure_message))
            await run_async(stop_event=stop_event, reader=reader, protocol=self.protocol, logger=log,
                            error_handler=self.report_server_error)
            self.shutdown()  # as pygls's TCP server: the session ends with its connection

        async def listen() -> None:
            self._server = await asyncio.start_server(connection, host, port)
            announce(", ".join(str(sock.getsockname()[:2]) for sock in self._server.sockets))
            async with self._server:
                await self._server.serve_forever()

        try:
            asyncio.run(listen())
        except asyncio.CancelledError:
            pass

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
        if len(text) > MAX_PROMPT_DOCUMENT_CHARS:
            if uri not in self._windowed:
                self._windowed.add(uri)
                self.log(f"{uri} has {len(text)} characters: prompts read the "
                         f"{MAX_PROMPT_DOCUMENT_CHARS} around the cursor", types.MessageType.Warning)
            text, offset = window_around(text, offset, MAX_PROMPT_DOCUMENT_CHARS)
        path = Path(to_fs_path(uri) or uri)
        return path, text, offset, document.language_id

