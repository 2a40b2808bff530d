"""The `osslsp` command line, run as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SAMPLE = ('"""Arithmetic helpers."""\n\nimport math\n\n\n'
          'def hypotenuse(a, b):\n    """The hypotenuse of a right triangle."""\n    return \n')


@pytest.fixture()
def workspace(tmp_path: Path) -> Path:
    """A workspace of one small file: `calc.py`, its cursor at the end of line 8 (`    return `)."""
    (tmp_path / "calc.py").write_text(SAMPLE)
    return tmp_path


def osslsp(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "osslsp", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300)


def test_complete_runs_the_tiny_model_and_says_its_text_is_meaningless(tiny_dir, workspace):
    result = osslsp("complete", "calc.py:8:12", "--model", "tiny", cwd=workspace)
    assert result.returncode == 0, result.stderr
    assert "meaningless" in result.stderr


def test_complete_json_reports_timings(tiny_dir, workspace):
    result = osslsp("complete", "calc.py:3:1", "--model", "tiny", "--json", cwd=workspace)
    answer = json.loads(result.stdout)
    assert answer["meaningless"] is True and answer["prompt_tokens"] > 0 and answer["ttft_ms"] > 0


def test_the_tiny_model_named_by_its_folder_is_meaningless_and_a_real_checkpoint_is_not(tiny_dir, tmp_path):
    from osslsp.models import resolve_model

    assert resolve_model(str(tiny_dir)).meaningless
    checkpoint = tmp_path / "checkpoint"
    checkpoint.mkdir()
    (checkpoint / "config.json").write_text((tiny_dir / "config.json").read_text())
    assert not resolve_model(str(checkpoint)).meaningless


def test_a_missing_model_says_where_it_looked_and_how_to_fix_it(workspace):
    missing = workspace / "no-such-checkpoint"
    result = osslsp("complete", "calc.py:8:12", "--model", str(missing), cwd=workspace)
    assert result.returncode != 0
    assert str(missing) in result.stderr and "Fix:" in result.stderr


def test_a_hub_id_not_in_the_cache_names_the_cache(workspace):
    result = osslsp("complete", "calc.py:1:1", "--model", "openai/gpt-oss-20b", cwd=workspace)
    assert result.returncode != 0 and "Hugging Face cache" in result.stderr


def test_prompt_json_has_one_object_per_target(tiny_dir, workspace):
    result = osslsp("prompt", "calc.py:3:1", "calc.py:8:12", "--model", "tiny", "--json", cwd=workspace)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["target"] for line in lines] == ["calc.py:3:1", "calc.py:8:12"]
    assert lines[1]["prompt"].rstrip().endswith("    return")
    for line in lines:
        assert line["prompt"].startswith("<|start|>system") and 0 < line["prompt_tokens"] <= 2048
        assert line["ms"] >= 0


def test_a_target_outside_the_file_is_a_clear_error(tiny_dir, workspace):
    result = osslsp("prompt", "calc.py:100000:1", "--model", "tiny", cwd=workspace)
    assert result.returncode != 0 and "not in the file" in result.stderr


def test_doctor_reports_grammars_and_the_model(tiny_dir, workspace):
    result = osslsp("doctor", "--model", "tiny", cwd=workspace)
    assert "tree-sitter grammar python" in result.stdout and "model 'tiny'" in result.stdout
    assert result.returncode == 0, result.stdout
