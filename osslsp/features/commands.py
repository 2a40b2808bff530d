"""Commands for our editor plugins: the prompt at the cursor, and the server's status."""

from __future__ import annotations

from typing import Any

from pygls.exceptions import JsonRpcInvalidParams

from osslsp.assistant import AssistantError
from osslsp.features.command_support import position_argument, uri_argument
from osslsp.server import OsslspServer

SHOW_PROMPT = "osslsp.showPrompt"
STATUS = "osslsp.status"


def register(server: OsslspServer) -> None:
    @server.command(SHOW_PROMPT)
    def show_prompt(ls: OsslspServer, *arguments: Any) -> dict[str, Any]:
        """The exact prompt the model would read for a completion at [uri, position]."""
        uri = uri_argument(arguments, SHOW_PROMPT, "position")
        path, text, offset, language_id = ls.document_at(uri, position_argument(arguments[1]))
        assistant = ls.assistant
        if assistant is None:
            raise JsonRpcInvalidParams("the server is not initialized yet")
        try:
            prompt = assistant.completion_prompt(assistant.cursor_at(path, text, offset, language_id))
        except AssistantError as error:
            raise JsonRpcInvalidParams(str(error)) from error
        return {"prompt": prompt.text, "promptTokens": len(prompt.ids), "sections": prompt.sections}

    @server.command(STATUS)
    def status(ls: OsslspServer, *arguments: Any) -> dict[str, Any]:
        """State, model, device and memory, for status lines and `:OsslspStatus`."""
        state, message = ls.state
        details = ls.assistant.describe() if ls.assistant else {}
        return {"state": state, "message": message, "model": ls.settings.model, **details}
