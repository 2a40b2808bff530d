"""The audit log (issue 22): a CLI completion is recorded with its prompt and answer as returned."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

from tests.conftest import REPO

OSSLSP = [sys.executable, "-m", "osslsp"]


def run(*args: str, env: dict) -> subprocess.CompletedProcess:
    result = subprocess.run(OSSLSP + list(args), capture_output=True, text=True, cwd=REPO, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    return result


def test_a_cli_completion_is_in_the_audit_log(tiny_dir):
    env = {**os.environ}
    completed = json.loads(run("complete", "examples/add.py:3:5", "--model", "tiny", "--json", env=env).stdout)
    entries = [json.loads(line) for line in run("audit", "-n", "1", "--json", env=env).stdout.splitlines()]
    assert len(entries) == 1
    entry = entries[0]
    assert entry["kind"] == "completion" and entry["file"].endswith("examples/add.py")
    assert entry["range"][0] == [3, 5] and entry["model"] == "tiny"
    assert entry["answer"] == completed["raw"] and entry["shown"] == completed["completion"]
    assert entry["timings"]["prompt_tokens"] == completed["prompt_tokens"]
    assert "def add(" in entry["prompt"] and entry["prompt"].startswith("<|start|>system")
    path = os.path.join(os.environ["OSSLSP_CACHE_DIR"], "audit", "osslsp.jsonl")  # the run's cache
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    shown = run("audit", "-n", "1", env=env).stdout
    assert entry["prompt"] in shown and "--- answer" in shown


def test_the_log_rotates_by_size_and_reads_back_in_order(tmp_path, monkeypatch):
    from osslsp import audit

    monkeypatch.setattr(audit, "MAX_BYTES", 300)
    path = tmp_path / "audit" / "osslsp.jsonl"
    for number in range(12):
        audit.record(path, kind="chat", prompt=f"prompt {number}", answer="x" * 100)
    rotated = sorted(p.name for p in path.parent.iterdir() if not p.name.endswith(".lock"))
    assert rotated == ["osslsp.jsonl", "osslsp.jsonl.1", "osslsp.jsonl.2", "osslsp.jsonl.3"]
    assert all(p.stat().st_size <= 300 for p in path.parent.iterdir())
    prompts = [entry["prompt"] for entry in audit.read_records(path, 4)]
    assert prompts == [f"prompt {number}" for number in range(8, 12)]
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
