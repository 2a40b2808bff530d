"""The language server's own LSP tests, with generation moved to an engine over HTTP.

The server runs `osslsp serve` on the tiny model with `engine = "http://127.0.0.1:PORT"` and the engine's
token; the tests imported from tests/test_server.py run against it unchanged.
"""

from __future__ import annotations

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from tests.conftest import REPO
from tests.remote.conftest import SERVE_TINY_FOLDER, TOKEN
from tests.test_server import (  # noqa: F401  (collected here: the same tests, through the engine)
    test_bad_setting_warns_and_keeps_serving,
    test_cancelled_request_gets_request_cancelled_and_server_keeps_serving,
    test_classic_completion_falls_back_to_the_same_text,
    test_empty_document_gets_a_list,
    test_inline_completion_returns_an_item_at_the_cursor,
    test_position_past_the_end_is_a_clear_error,
    test_show_prompt_command_returns_the_prompt,
    test_unknown_document_is_a_clear_error,
    wait_until_ready,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")
STATUS = {}


def initialize_params(engine_url: str, token: str) -> types.InitializeParams:
    return types.InitializeParams(
        capabilities=client_capabilities("visual-studio-code"),
        root_uri=REPO.as_uri(),
        initialization_options={"maxNewTokens": 24, "contextTokens": 1024,
                                "engine": engine_url, "engineToken": token},
    )


@pytest_lsp.fixture(scope="module", config=ClientServerConfig(server_command=SERVE_TINY_FOLDER))
async def client(lsp_client: LanguageClient, engine, tiny_dir):
    await lsp_client.initialize_session(initialize_params(engine.url, TOKEN))
    STATUS["ready"] = await wait_until_ready(lsp_client)
    yield
    await lsp_client.shutdown_session()


async def test_the_server_generates_on_the_engine(client: LanguageClient, engine):
    assert STATUS["ready"].state == "ready", STATUS["ready"]
    assert engine.url in STATUS["ready"].message


async def test_a_wrong_token_is_a_clear_error(engine, tiny_dir):
    other = await ClientServerConfig(server_command=SERVE_TINY_FOLDER).start()
    try:
        await other.initialize_session(initialize_params(engine.url, "wrong-token"))
        status = await wait_until_ready(other)
    finally:
        await other.shutdown_session()
    assert status.state == "error"
    assert "refused the token" in status.message and "engineToken" in status.message
