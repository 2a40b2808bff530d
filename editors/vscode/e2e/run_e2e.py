"""The VS Code extension end to end, inside a real VS Code (code-server in Debian's Chromium,
driven by Playwright) with the real osslsp server on SmolLM2.

It installs code-server once (install-code-server.sh, cached), builds and installs the .vsix,
opens a scratch workspace, waits for the status bar's ready state, types in a Python file until
ghost text appears, accepts it with Tab, explains a selection, generates a function from its
docstring, and checks the files' new content. Screenshots go to --shots: always of the ghost
text and of the generated function, and of the page whenever a step fails.

    python3 editors/vscode/e2e/run_e2e.py --shots /tmp/shots

Needs Node 20 + npm, Chromium at /usr/bin/chromium, PyPI playwright (never `playwright install`:
the browser is Debian's) and `osslsp` with SmolLM2 installed. Exit status 0 when every step passed.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Page, expect, sync_playwright

EXTENSION = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("OSSLSP_E2E_CACHE", Path.home() / ".cache" / "osslsp-e2e"))
CHROMIUM = os.environ.get("OSSLSP_E2E_CHROMIUM", "/usr/bin/chromium")
STEP_WAIT_MS = 30_000  # for each thing the page should show; the machine may be busy
MODEL_WAIT_MS = 300_000  # the first SmolLM2 run converts its GGUF: up to a minute or more on 2 cores
GHOST_WAIT_MS = 120_000
ADD_HEADER = 'def add(a, b):\n    """Return the sum of a and b."""\n'
STUB = 'def multiply(a, b):\n    """Return the product of a and b."""\n    pass\n'


def log(message: str) -> None:
    print(f"e2e: {message}", file=sys.stderr, flush=True)


def run(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    """Run a set-up command; its output goes into the error when it fails."""
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        raise SystemExit(f"e2e: {' '.join(command)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result.stdout


def build_vsix(out_dir: Path) -> Path:
    """npm ci, compile and package the extension as it is in this checkout."""
    vsix = out_dir / "osslsp.vsix"
    run(["npm", "ci", "--no-audit", "--no-fund"], EXTENSION)
    run(["npm", "run", "compile"], EXTENSION)
    run(["npx", "--no-install", "vsce", "package", "--allow-missing-repository", "-o", str(vsix)], EXTENSION)
    return vsix


def osslsp_executable() -> str:
    """The `osslsp` next to this Python (a venv's), else the one on PATH."""
    beside = Path(sys.executable).parent / "osslsp"
    found = str(beside) if beside.exists() else shutil.which("osslsp")
    if found is None:
        raise SystemExit("e2e: no osslsp executable: install the package first (make setup)")
    return found


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def write_workspace(scratch: Path) -> Path:
    """A workspace with the file to type in and the stub to generate."""
    workspace = scratch / "workspace"
    workspace.mkdir()
    (workspace / "calc.py").write_text(ADD_HEADER)
    (workspace / "stub.py").write_text(STUB)
    return workspace


def write_user_settings(user_data: Path) -> None:
    settings = {
        "security.workspace.trust.enabled": False,
        "workbench.startupEditor": "none",
        "workbench.tips.enabled": False,
        "editor.inlineSuggest.enabled": True,
        # VS Code's own word suggestions would open the suggestion list over the ghost text.
        "editor.wordBasedSuggestions": "off",
        "files.autoSave": "off",
        "osslsp.serverPath": osslsp_executable(),
        "osslsp.model": "smollm2",
        "osslsp.device": "cpu",
        "osslsp.maxNewTokens": 24,
        "osslsp.indexEnabled": False,
    }
    (user_data / "User").mkdir(parents=True)
    (user_data / "User" / "settings.json").write_text(json.dumps(settings, indent=2))


@contextmanager
def code_server(entry: str, scratch: Path, workspace: Path, vsix: Path):
    """code-server with our extension installed, on a free port; yields its URL."""
    user_data, extensions = scratch / "user-data", scratch / "extensions"
    write_user_settings(user_data)
    # A scratch HOME, but SmolLM2's conversion is kept between runs (unless a cache is set).
    env = {"OSSLSP_CACHE_DIR": str(CACHE / "osslsp"), **os.environ, "HOME": str(scratch / "home")}
    (scratch / "home").mkdir()
    common = ["node", entry, "--user-data-dir", str(user_data), "--extensions-dir", str(extensions)]
    run([*common, "--install-extension", str(vsix)], scratch, env)
    port = free_port()
    config = scratch / "config.yaml"
    config.write_text("")
    log_file = (scratch / "code-server.log").open("w")
    process = subprocess.Popen(
        [*common, "--auth", "none", "--bind-addr", f"127.0.0.1:{port}", "--disable-telemetry",
         "--disable-update-check", "--disable-workspace-trust", "--config", str(config), str(workspace)],
        cwd=scratch, env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.2)
        yield f"http://127.0.0.1:{port}/?folder={workspace}"
    finally:
        os.killpg(process.pid, 15)
        process.wait(timeout=30)
        log_file.close()


def command_palette(page: Page, command: str) -> None:
    """Run a command by its palette title."""
    page.keyboard.press("F1")
    box = page.locator(".quick-input-widget input")
    expect(box).to_be_visible()
    box.fill(f">{command}")
    row = page.locator(".quick-input-list .monaco-list-row", has_text=command).first
    expect(row).to_be_visible()
    page.keyboard.press("Enter")


def open_file(page: Page, name: str) -> None:
    """Open a workspace file from the Explorer (Quick Open waits for the file search to start)
    and put the cursor in its editor."""
    page.get_by_role("treeitem", name=name).click()
    expect(page.locator(".tab.active", has_text=name)).to_be_visible()
    page.locator(".monaco-editor .view-lines").first.click()


def save(page: Page) -> None:
    page.keyboard.press("Control+S")
    expect(page.locator(".tab.active.dirty")).to_have_count(0)


def status_item(page: Page):
    """Our status bar item (its accessible name is the text without icons)."""
    return page.locator("#osslsp\\.osslsp\\.status, .statusbar-item[id$='osslsp.status']").first


def wait_until_ready(page: Page, shots: Path) -> None:
    """Wait for the ready state. Meanwhile the status bar must never show the prefix twice, nor
    the model's loading twice (our item and VS Code's own window progress); a screenshot of the
    first loading state seen goes to `shots`."""
    item = status_item(page)
    expect(item).to_be_visible(timeout=60_000)
    deadline = time.monotonic() + MODEL_WAIT_MS / 1000
    while time.monotonic() < deadline:
        if item.locator(".codicon-check").count():
            return
        texts = page.locator(".part.statusbar .statusbar-item").all_inner_texts()
        assert not any("osslsp: osslsp" in text for text in texts), texts
        loading = [text for text in texts if "loading" in text]
        assert len(loading) <= 1, f"the loading state is shown more than once: {texts}"
        if loading and not (shots / "loading-status.png").exists():
            page.screenshot(path=str(shots / "loading-status.png"))
        text = item.inner_text()
        if "error" in text:
            raise AssertionError(f"the status bar says {text!r}: {item.get_attribute('aria-label')}")
        time.sleep(0.5)
    raise AssertionError(f"the status bar never reached ready; it says {item.inner_text()!r}")


def ghost_text_and_tab(page: Page, workspace: Path, shots: Path) -> None:
    """Type `    return` under add's docstring; ghost text appears; Tab inserts exactly it."""
    open_file(page, "calc.py")
    page.keyboard.press("Control+End")
    page.keyboard.type("    return", delay=60)
    ghost = page.locator(".monaco-editor .ghost-text-decoration, .monaco-editor .ghost-text-decoration-preview")
    expect(ghost.first).to_be_visible(timeout=GHOST_WAIT_MS)
    shown = "".join(ghost.all_inner_texts()).replace("\u00a0", " ")
    page.screenshot(path=str(shots / "ghost-text.png"))
    log(f"ghost text: {shown!r}")
    assert shown.strip(), "the ghost text is empty"
    page.keyboard.press("Tab")
    expect(ghost).to_have_count(0)
    save(page)
    text = (workspace / "calc.py").read_text()
    assert text.startswith(ADD_HEADER + "    return" + shown), f"Tab inserted something else: {text!r}"


def explain_selection(page: Page) -> None:
    """Select all of calc.py, run Explain Selection; the panel opens and finishes with some text."""
    open_file(page, "calc.py")
    page.keyboard.press("Control+A")
    command_palette(page, "osslsp: Explain Selection")
    expect(page.locator(".tab", has_text="Explain calc.py")).to_be_visible(timeout=30_000)
    body = page.frame_locator("iframe.webview.ready").frame_locator("#active-frame").locator("body")
    expect(body).not_to_contain_text("Waiting for the model", timeout=GHOST_WAIT_MS)
    expect(body).not_to_contain_text("Explaining…", timeout=GHOST_WAIT_MS)
    explanation = body.inner_text()
    log(f"explanation: {explanation[:200]!r}")
    assert len(explanation.split()) > 3, f"the explanation is nearly empty: {explanation!r}"


def generate_from_docstring(page: Page, workspace: Path, shots: Path) -> None:
    """Run Generate Function from Docstring in multiply's stub; the stub's body is replaced by
    code that parses, under the same signature and docstring."""
    open_file(page, "stub.py")
    page.keyboard.press("Control+Home")
    page.keyboard.press("ArrowDown")
    command_palette(page, "osslsp: Generate Function from Docstring")
    deadline = time.monotonic() + GHOST_WAIT_MS / 1000
    editor_text = page.locator(".monaco-editor .view-lines").first
    while "pass" in editor_text.inner_text().replace("\u00a0", " ").split() and time.monotonic() < deadline:
        time.sleep(0.5)
    page.screenshot(path=str(shots / "generated-function.png"))
    save(page)
    text = (workspace / "stub.py").read_text()
    log(f"generated: {text!r}")
    assert text != STUB, "the stub is unchanged"
    assert text.startswith('def multiply(a, b):\n    """Return the product of a and b."""\n'), text
    ast.parse(text)


def no_error_toasts(page: Page) -> None:
    """No error notification came up during the run (a failed request shows one, e.g. "Error in
    server: Internal Error" while the user types)."""
    errors = page.locator(".notification-toast-container", has=page.locator(".codicon-error"))
    assert errors.count() == 0, f"error notifications: {errors.all_inner_texts()}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shots", type=Path, default=Path(tempfile.gettempdir()) / "osslsp-e2e-shots")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    args = parser.parse_args()
    args.shots.mkdir(parents=True, exist_ok=True)
    for earlier in args.shots.glob("*.png"):  # a run's screenshots are all its own
        earlier.unlink()
    scratch = Path(tempfile.mkdtemp(prefix="osslsp-e2e-"))
    log(f"scratch folder {scratch}, screenshots in {args.shots}")
    entry = run(["bash", str(EXTENSION / "e2e" / "install-code-server.sh")], EXTENSION).strip().splitlines()[-1]
    vsix = build_vsix(scratch)
    workspace = write_workspace(scratch)
    step = "start"
    try:
        with code_server(entry, scratch, workspace, vsix) as url, sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            expect.set_options(timeout=STEP_WAIT_MS)
            try:
                for step, action in [
                    ("workbench", lambda: expect(page.locator(".monaco-workbench")).to_be_visible(timeout=60_000)),
                    ("ready", lambda: (open_file(page, "calc.py"), wait_until_ready(page, args.shots))),
                    ("ghost text and Tab", lambda: ghost_text_and_tab(page, workspace, args.shots)),
                    ("explain selection", lambda: explain_selection(page)),
                    ("generate from docstring", lambda: generate_from_docstring(page, workspace, args.shots)),
                    ("no error notifications", lambda: no_error_toasts(page)),
                ]:
                    log(f"step: {step}")
                    if step == "workbench":
                        page.goto(url)
                    action()
                page.screenshot(path=str(args.shots / "done.png"))
            except Exception:
                page.screenshot(path=str(args.shots / f"failed-{step.replace(' ', '-')}.png"))
                raise
            finally:
                browser.close()
    except Exception as error:
        log(f"FAILED at step {step!r}: {error}")
        log_file = scratch / "code-server.log"
        if log_file.exists():
            log("code-server log (end):\n" + log_file.read_text()[-3000:])
        return 1
    finally:
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
    log("all steps passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
