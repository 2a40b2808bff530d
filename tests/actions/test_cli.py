"""`osslsp generate` and `osslsp explain` with the tiny model, in this process."""

from __future__ import annotations

import argparse
import json

import pytest

from osslsp.cli.actions import add_commands
from tests.actions.samples import STUBS


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="osslsp")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_generate_json_names_the_body_range_and_the_outcome(tmp_path, tiny_dir, capsys):
    _, text = STUBS["python"]
    (tmp_path / "sums.py").write_text(text)
    code = run(["generate", "sums.py:1", "--root", str(tmp_path), "--model", "tiny", "--max-new-tokens", "8",
                "--json"])
    result = json.loads(capsys.readouterr().out)
    assert result["function"] == "add"
    assert result["range"] == {"start": {"line": 1, "character": len('    """Return the sum; MARK."""')},
                               "end": {"line": 2, "character": len("    pass")}}
    # The tiny model writes random text: no body passes, after both attempts, and the exit code says so.
    assert (code, result["newText"], result["attempts"]) == (1, None, 2) and result["problems"]
    assert len(result["rejected"]) == 2 and all(isinstance(answer, str) for answer in result["rejected"])


def test_explain_streams_to_stdout(tmp_path, tiny_dir, capsys):
    (tmp_path / "calc.py").write_text("def twice(x):\n    return 2 * x\n")
    code = run(["explain", "calc.py:2", "--root", str(tmp_path), "--model", "tiny", "--effort", "low",
                "--max-new-tokens", "4"])
    captured = capsys.readouterr()
    assert code == 0 and captured.out.strip()
    assert "random weights" in captured.err


def test_bad_targets_are_clear_messages(tmp_path, capsys):
    (tmp_path / "calc.py").write_text("def twice(x):\n    return 2 * x\n")
    with pytest.raises(SystemExit, match="not in the file"):
        run(["explain", "calc.py:7-9", "--root", str(tmp_path), "--model", "tiny"])
    assert run(["generate", "calc.py:1", "--root", str(tmp_path), "--model", "tiny"]) == 2
    assert "no documented function" in capsys.readouterr().err
