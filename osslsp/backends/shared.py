"""The shared engine: the `osslsp engine` on this machine that serves one model to every window.

`SharedEngine` knows its Unix socket (in the user's runtime directory) and starts it, detached,
when none answers there; it exits once no window has used it for a while.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

from osslsp.models import RANDOM_PREFIX, ModelSource, is_path_spec
from osslsp.remote.places import shared_socket

log = logging.getLogger(__name__)

SHARED_IDLE_SECONDS = 300.0  # a window reopened within this reuses the loaded model
IDLE_VARIABLE = "OSSLSP_ENGINE_IDLE_TIMEOUT"
EXIT_ALREADY_SERVED = 3  # `osslsp engine`: another engine holds the socket


def spec_from_anywhere(source: ModelSource) -> str:
    """The model spec with its relative path made absolute: the engine runs in another directory."""
    spec = source.spec
    prefix = RANDOM_PREFIX if spec.startswith(RANDOM_PREFIX) else ""
    path = spec[len(prefix):]
    if is_path_spec(path) or path.endswith(".gguf"):
        return prefix + str(Path(path).expanduser().resolve())
    return spec


class SharedEngine:
    """The engine for one model on this machine: found by its socket, started when missing."""

    def __init__(self, source: ModelSource, dtype: str, device: str, max_gpu_memory_gib: float,
                 max_context: int):
        self.source = source
        self.socket = shared_socket(source, dtype, device)
        self.log_file = self.socket.with_suffix(".log")
        # -P: the working directory (the editor's, a workspace's) is not put on sys.path, so no
        # module there can stand in for ours; the engine runs in the runtime directory.
        self.command = [
            sys.executable, "-P", "-m", "osslsp.cli.engine", "engine", "--model", spec_from_anywhere(source),
            "--dtype", dtype, "--device", device, "--max-gpu-memory", str(max_gpu_memory_gib),
            "--max-context", str(max_context), "--listen", f"unix:{self.socket}",
            "--idle-timeout", os.environ.get(IDLE_VARIABLE, str(SHARED_IDLE_SECONDS)),
            "--log-file", str(self.log_file),
        ]
        self.process: subprocess.Popen | None = None

    def launch(self) -> None:
        """Start the engine in its own session, so that it outlives this window."""
        log.info("starting the shared engine: %s", " ".join(self.command))
        with self.log_file.open("a") as output:
            self.process = subprocess.Popen(self.command, stdin=subprocess.DEVNULL, stdout=output,
                                            stderr=subprocess.STDOUT, start_new_session=True,
                                            cwd=self.socket.parent)

    def failure(self) -> str | None:
        """Why the engine we started is gone, or None while it runs (or lost a harmless race)."""
        if self.process is None or self.process.poll() in (None, EXIT_ALREADY_SERVED):
            return None
        lines = self.log_file.read_text(errors="replace").strip().splitlines()
        return (f"the shared engine exited with code {self.process.returncode}: "
                + ("\n".join(lines[-5:]) or "no output") + f" (log: {self.log_file})")
