"""Secrets never reach a prompt: files that hold them are not read, lines that look like them are cut."""

from __future__ import annotations

import os
import re
from fnmatch import translate
from pathlib import PurePath

SECRET_FILE_PATTERNS = (
    ".env", ".env.*", "*.env", "*.pem", "*.key", "*.p12", "*.pfx", "*.jks", "*.keystore",
    "id_rsa*", "id_dsa*", "id_ecdsa*", "id_ed25519*", "*.ppk", "credentials", "credentials.*",
    ".netrc", ".pgpass", ".npmrc", ".pypirc", "*.kdbx", "secrets.*", "*.secret", "*.secrets",
)
REDACTED = "<redacted>"
_SECRET_NAME = re.compile("|".join(translate(pattern) for pattern in SECRET_FILE_PATTERNS))

_SECRET_LINE = re.compile(
    r"""AKIA[0-9A-Z]{16}"""  # AWS access key id
    r"""|aws_secret_access_key|aws_session_token"""
    r"""|-----BEGIN [A-Z ]*PRIVATE KEY-----"""
    r"""|(?i:(?:password|passwd|pwd|secret|token|api[_-]?key|apikey|access[_-]?key|auth)"""
    r"""[\w-]*["']?\s*[:=]\s*[bru]?["'][^"'\s]{8,}["'])"""
    r"""|gh[pousr]_[A-Za-z0-9]{30,}|xox[abpr]-[A-Za-z0-9-]{10,}|sk-[A-Za-z0-9_-]{20,}"""
)
_KEY_BLOCK = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|\Z)",
                        re.DOTALL)


def is_secret_path(path: str | PurePath) -> bool:
    """Whether a file's name says it holds secrets (`.env`, keys, certificates, credentials)."""
    return _SECRET_NAME.match(os.path.basename(os.fspath(path)).lower()) is not None


def has_secret(text: str) -> bool:
    """Whether any line of the text looks like a credential."""
    return _SECRET_LINE.search(text) is not None


def redact_secrets(text: str) -> str:
    """The text with every credential-looking line replaced by its indentation and `<redacted>`.

    Line count is kept so that positions in the rest of the text stay right; private key blocks
    lose all their lines.
    """
    if not has_secret(text):
        return text
    text = _KEY_BLOCK.sub(lambda block: "\n".join(REDACTED for _ in block.group().splitlines()),
                          text)
    lines = text.split("\n")
    for number, line in enumerate(lines):
        if _SECRET_LINE.search(line):
            lines[number] = line[:len(line) - len(line.lstrip())] + REDACTED
    return "\n".join(lines)
