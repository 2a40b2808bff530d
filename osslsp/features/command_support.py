"""What the command handlers share: their arguments read (a bad one is InvalidParams), messages to
the user, and a document's version."""

from __future__ import annotations

from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams

from osslsp.server import OsslspServer


def position_argument(value: Any) -> types.Position:
    """A command's `{line, character}` argument; InvalidParams when it is not one."""
    try:
        return types.Position(line=int(value["line"]), character=int(value["character"]))
    except (KeyError, TypeError, ValueError) as error:
        raise JsonRpcInvalidParams(f"expected a position {{line, character}}, got {value!r}") from error


def range_argument(value: Any) -> types.Range:
    """A command's `{start, end}` argument; InvalidParams when it is not one."""
    try:
        return types.Range(start=position_argument(value["start"]), end=position_argument(value["end"]))
    except (KeyError, TypeError) as error:
        raise JsonRpcInvalidParams(f"expected a range {{start, end}}, got {value!r}") from error


def uri_argument(arguments: tuple[Any, ...], command: str, second: str) -> str:
    """The document of a command's `[uri, second]` arguments; InvalidParams for any other shape."""
    if len(arguments) != 2 or not isinstance(arguments[0], str):
        raise JsonRpcInvalidParams(f"{command} takes [uri, {second}]")
    return arguments[0]


def tell(ls: OsslspServer, message: str, kind: types.MessageType = types.MessageType.Warning) -> None:
    """Show a message for an action the user asked for (each time: they asked)."""
    ls.log(message, kind)
    ls.window_show_message(types.ShowMessageParams(type=kind, message=message))


def document_version(ls: OsslspServer, uri: str) -> int | None:
    """The version of an open document (None when it is not open)."""
    document = ls.workspace.text_documents.get(uri)
    return document.version if document is not None else None
