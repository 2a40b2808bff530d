"""`osslsp style check` and `osslsp style list`, through their functions."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from osslsp.style import list_main, style_main

SAMPLES = Path(__file__).parent / "samples"


def test_check_prints_findings_and_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    shutil.copy(SAMPLES / "go_bad.go", tmp_path / "bad.go")
    shutil.copy(SAMPLES / "go_good.go", tmp_path / "good.go")
    assert style_main([tmp_path / "good.go"], "") == 0
    assert style_main([tmp_path], "") == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"{tmp_path / 'bad.go'}:3:8: import-wildcard: wildcard import '. \"fmt\"'"
    assert len(lines) == 11 and all(line.startswith(str(tmp_path / "bad.go")) for line in lines)


def test_check_with_a_named_guide(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "m.py"
    path.write_text("def join(first, second):\n    \"\"\"Join.\"\"\"\n    return first + second\n")
    assert style_main([path], "python-pep8") == 0
    assert style_main([path], "python-google") == 1
    assert "annotations-required" in capsys.readouterr().out


def test_bad_arguments_give_messages(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert style_main([tmp_path / "x.py"], "no-such-guide") == 2
    assert "neither a bundled guide" in capsys.readouterr().err
    assert style_main([tmp_path / "missing.py"], "") == 2
    assert "missing.py: cannot read" in capsys.readouterr().err
    (tmp_path / "notes.txt").write_text("x")
    assert style_main([tmp_path / "notes.txt"], "") == 2


def test_list_shows_bundled_guides_and_the_workspace(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / ".osslsp").mkdir()
    (tmp_path / ".osslsp" / "styleguide.toml").write_text('[python]\nextends = "python-google"\n[go]\nextends = 3\n')
    assert list_main(tmp_path) == 0
    out = capsys.readouterr().out
    for name in ("python-pep8", "python-google", "typescript", "go", "rust", "java-google", "cpp"):
        assert f"  {name} " in out
    assert "python-google+team" in out
    assert "warning:" in out and "extends 3: no such bundled guide" in out
