"""Where an engine listens: a Unix socket in the user's runtime directory by default, TCP when asked.

The runtime directory is private (0700) and each socket 0600, so only the user's own processes
reach a local engine. A shared engine's socket name is a hash of what identifies its model, so
every window that wants the same model on the same device finds the same engine.
"""

from __future__ import annotations

import fcntl
import hashlib
import ipaddress
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import platformdirs

from osslsp.models import ModelSource

SOCKET_PATH_LIMIT = 104  # sun_path holds 108 bytes on Linux, 104 on macOS


class ListenError(ValueError):
    """A listen address or runtime directory that cannot be used; the message says why."""


@dataclass(frozen=True)
class Listen:
    """A Unix socket path, or a TCP host and port (port 0: any free one)."""

    path: Path | None = None
    host: str = ""
    port: int = 0

    @property
    def is_unix(self) -> bool:
        return self.path is not None

    @property
    def is_loopback(self) -> bool:
        return self.is_unix or is_loopback(self.host)

    def __str__(self) -> str:
        return f"unix:{self.path}" if self.path else f"http://{self.host}:{self.port}"


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def runtime_dir() -> Path:
    """The user's private runtime directory for osslsp ($OSSLSP_RUNTIME_DIR overrides), made 0700.

    Sockets and tokens live in it, so it must be a real directory of this user's: a symlink or a
    directory of another user's (either may be planted under a shared /tmp) is refused, never
    followed or chmod-ed."""
    override = os.environ.get("OSSLSP_RUNTIME_DIR")
    path = Path(override) if override else Path(platformdirs.user_runtime_dir("osslsp"))
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    status = path.lstat()
    if stat.S_ISLNK(status.st_mode) or not stat.S_ISDIR(status.st_mode):
        raise ListenError(f"{path} is not a directory but a link or a file: remove it, or set "
                          "OSSLSP_RUNTIME_DIR to a directory of yours")
    if status.st_uid != os.getuid():
        raise ListenError(f"{path} belongs to another user: set OSSLSP_RUNTIME_DIR to a directory of yours")
    if status.st_mode & 0o077:
        path.chmod(0o700)
    return path


TOKEN_VARIABLE = "OSSLSP_TOKEN"


def serve_token(token_file: Path | None, port: int) -> tuple[str, Path | None]:
    """The token of `osslsp serve --tcp`: read from `token_file`, else $OSSLSP_TOKEN, else made
    now and written to a 0600 file in the runtime directory. Returns it and the file it is in
    (None when it came from the environment). ListenError for an empty token file."""
    if token_file is not None:
        token = token_file.expanduser().read_text().strip()
        if not token:
            raise ListenError(f"{token_file} is empty: put the token in it")
        return token, token_file
    if os.environ.get(TOKEN_VARIABLE):
        return os.environ[TOKEN_VARIABLE], None
    path = runtime_dir() / f"serve-{port}.token"
    path.unlink(missing_ok=True)
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as stream:
        stream.write(secrets.token_urlsafe(24) + "\n")
    return path.read_text().strip(), path


def parse_listen(text: str) -> Listen:
    """`unix:PATH` or `HOST:PORT` (IPv6 as `[::1]:PORT`); ListenError says what is wrong."""
    if text.startswith("unix:"):
        path = Path(text[5:]).expanduser()
        if not text[5:]:
            raise ListenError("unix: needs a socket path, e.g. unix:/run/user/1000/osslsp/engine.sock")
        if len(str(path.absolute()).encode()) >= SOCKET_PATH_LIMIT:
            raise ListenError(f"socket path {path} is too long for a Unix socket (limit {SOCKET_PATH_LIMIT} bytes)")
        return Listen(path=path.absolute())
    host, colon, port = text.rpartition(":")
    if not colon or not port.isdigit() or not host or int(port) > 65535:
        raise ListenError(f"--listen {text!r}: expected unix:PATH or HOST:PORT, e.g. 127.0.0.1:8000")
    return Listen(host=host.strip("[]"), port=int(port))


def model_key(source: ModelSource, dtype: str, device: str) -> str:
    """What makes two engines interchangeable: the same weights, dtype and device."""
    identity = f"{source.kind}\0{source.weights.expanduser().resolve()}\0{dtype}\0{device}"
    return hashlib.sha256(identity.encode()).hexdigest()[:16]


def shared_socket(source: ModelSource, dtype: str, device: str) -> Path:
    """The socket of the shared engine for a model on a device."""
    return runtime_dir() / f"engine-{model_key(source, dtype, device)}.sock"


def claim_socket(path: Path) -> IO[str]:
    """Hold `PATH.lock` for the engine's life, so two engines never fight over one socket (two
    windows may start the shared engine at the same moment); then a leftover socket file is stale."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    lock = os.fdopen(os.open(path.with_name(path.name + ".lock"), os.O_WRONLY | os.O_CREAT, 0o600), "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        raise ListenError(f"another engine already serves {path}") from None
    path.unlink(missing_ok=True)
    return lock
