"""The shared engine runs only osslsp's own code and loads only the model it was asked for, whatever
the editor's working directory holds (issue 22, item 2)."""

from __future__ import annotations

import time

import pytest

from osslsp.models import ModelNotFound, resolve_model
from osslsp.backends.shared import SharedEngine

PLANTED = "import pathlib; pathlib.Path({marker!r}).write_text('ran')\n"


def test_a_hub_id_never_names_a_folder_of_the_working_directory(tmp_path, monkeypatch):
    planted = tmp_path / "openai" / "gpt-oss-20b"
    planted.mkdir(parents=True)
    (planted / "config.json").write_text("{}")
    monkeypatch.chdir(tmp_path)
    try:
        source = resolve_model("openai/gpt-oss-20b")
    except ModelNotFound as error:
        assert "./openai/gpt-oss-20b" in str(error), "the message says how to name the folder"
    else:
        assert tmp_path not in source.weights.resolve().parents
    assert resolve_model("./openai/gpt-oss-20b").weights.resolve() == planted


def test_the_shared_engine_ignores_a_package_planted_in_the_working_directory(tmp_path, monkeypatch, tiny_dir):
    workspace, marker = tmp_path / "workspace", tmp_path / "marker"
    for package in ("osslsp", "osslsp/remote"):
        (workspace / package).mkdir(parents=True)
        (workspace / package / "__init__.py").write_text(PLANTED.format(marker=str(marker)))
    (workspace / "osslsp" / "remote" / "cli.py").write_text(PLANTED.format(marker=str(marker)))
    monkeypatch.chdir(workspace)
    # float32 on the CPU: a socket of its own, apart from the other tests' shared engines
    engine = SharedEngine(resolve_model("tiny"), "float32", "cpu", 0.0, 1024)
    engine.launch()
    try:
        deadline = time.monotonic() + 120
        while not engine.socket.exists() and engine.process.poll() is None:
            assert time.monotonic() < deadline, "the shared engine never listened"
            time.sleep(0.05)
        assert not marker.exists(), "code from the working directory ran"
        assert engine.socket.exists(), engine.failure()
    finally:
        engine.process.terminate()
        engine.process.wait(timeout=30)


def test_a_runtime_directory_that_is_a_symlink_is_refused(tmp_path, monkeypatch):
    from osslsp.remote.places import ListenError, runtime_dir

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o755)
    (tmp_path / "planted").symlink_to(elsewhere)
    monkeypatch.setenv("OSSLSP_RUNTIME_DIR", str(tmp_path / "planted"))
    with pytest.raises(ListenError, match="link"):
        runtime_dir()
    assert elsewhere.stat().st_mode & 0o777 == 0o755, "nothing was chmod-ed through the link"


def test_the_engine_reads_its_token_from_a_file(tmp_path):
    import asyncio

    from tests.remote.conftest import EngineProcess

    token_file = tmp_path / "token"
    token_file.write_text("file-token-0123456789\n")
    engine = EngineProcess("--listen", "127.0.0.1:0", "--token-file", str(token_file))

    async def statuses() -> tuple[int, int]:
        async with engine.session() as stranger, engine.session("file-token-0123456789") as owner:
            async with stranger.get(engine.url + "/v1/models") as refused, owner.get(engine.url + "/v1/models") as served:
                return refused.status, served.status

    try:
        assert asyncio.run(statuses()) == (401, 200)
    finally:
        engine.stop()
