"""The `osslsp` command line, run as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import REPO


def osslsp(*args: str, cwd=REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "osslsp", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300)


def test_complete_prints_a_completion_from_the_tiny_model(tiny_dir):
    result = osslsp("complete", "osslsp/settings.py:60:5", "--model", "tiny")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()
    assert "meaningless" in result.stderr


def test_complete_json_reports_timings(tiny_dir):
    result = osslsp("complete", "osslsp/cli.py:10:1", "--model", "tiny", "--json")
    answer = json.loads(result.stdout)
    assert answer["meaningless"] is True and answer["prompt_tokens"] > 0 and answer["ttft_ms"] > 0


def test_a_missing_model_says_where_it_looked_and_how_to_fix_it(tmp_path):
    missing = tmp_path / "no-such-checkpoint"
    result = osslsp("complete", "osslsp/settings.py:60:5", "--model", str(missing))
    assert result.returncode != 0
    assert str(missing) in result.stderr and "Fix:" in result.stderr


def test_a_hub_id_not_in_the_cache_names_the_cache(tmp_path):
    result = osslsp("complete", "osslsp/settings.py:1:1", "--model", "openai/gpt-oss-20b")
    assert result.returncode != 0 and "Hugging Face cache" in result.stderr


def test_prompt_json_has_one_object_per_target(tiny_dir):
    result = osslsp("prompt", "osslsp/cli.py:10:1", "osslsp/settings.py:60:5", "--model", "tiny", "--json")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["target"] for line in lines] == ["osslsp/cli.py:10:1", "osslsp/settings.py:60:5"]
    for line in lines:
        assert line["prompt"].startswith("<|start|>system") and 0 < line["prompt_tokens"] <= 2048
        assert line["ms"] >= 0


def test_a_target_outside_the_file_is_a_clear_error(tiny_dir):
    result = osslsp("prompt", "osslsp/cli.py:100000:1", "--model", "tiny")
    assert result.returncode != 0 and "not in the file" in result.stderr


def test_doctor_reports_grammars_and_the_model(tiny_dir):
    result = osslsp("doctor", "--model", "tiny")
    assert "tree-sitter grammar python" in result.stdout and "model 'tiny'" in result.stdout
    assert result.returncode == 0, result.stdout
