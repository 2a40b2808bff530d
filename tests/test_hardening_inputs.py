"""Unbounded inputs stay bounded in cost (issue 22, item 5): a huge document, a huge file's close."""

from __future__ import annotations

import sqlite3
import time

from osslsp.documents import offset_at, window_around
from osslsp.index.names import DefinitionRef, NameTable
from tests.test_hardening_lsp import INITIALIZE, StdioServer


def test_forgetting_a_file_with_a_million_definitions_of_one_name_is_linear():
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE files(id INTEGER PRIMARY KEY, path TEXT, rank REAL)")
    db.execute("CREATE TABLE defs(file_id INTEGER, name TEXT, scope TEXT, kind TEXT)")
    table = NameTable()
    for rowid in range(1_000_000):
        table._add("x", DefinitionRef(rowid, "generated.py", "", "variable"))
    table._add("x", DefinitionRef(-1, "kept.py", "", "variable"))
    started = time.perf_counter()
    table.replace_file(db, "generated.py")
    assert time.perf_counter() - started < 10  # one at a time: hours
    assert [ref.path for ref in table.named("x")] == ["kept.py"]


def test_a_huge_document_is_read_around_the_cursor():
    text = "x = 1\n" * 1_000_000 + "def f():\n    return"
    offset = offset_at(text, 1_000_001, 10)
    assert text[offset - 6:offset] == "return"
    window, inside = window_around(text, offset, 2_000_000)
    assert len(window) <= 2_000_000 and window[inside - 6:inside] == "return"
    assert window.startswith("x = 1\n")  # cut at a line start


def test_a_20_mb_did_open_does_not_block_the_server(tmp_path):
    server = StdioServer()
    try:
        server.request(1, "initialize", {**INITIALIZE, "rootUri": tmp_path.as_uri()})
        server.send({"jsonrpc": "2.0", "method": "initialized", "params": {}})
        uri = (tmp_path / "generated.py").as_uri()
        server.send({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": {
            "uri": uri, "languageId": "python", "version": 1, "text": "x = 1\n" * 3_500_000}}})
        started = time.monotonic()
        server.send({"jsonrpc": "2.0", "method": "textDocument/didClose", "params": {"textDocument": {"uri": uri}}})
        assert "result" in server.request(2, "shutdown")
        assert time.monotonic() - started < 20  # before: a minute or more, gigabytes
    finally:
        server.close()
