"""Secrets never reach a prompt: files that hold them are not read, lines that look like them are cut."""

from __future__ import annotations

import dataclasses
import os
import re
import string
from fnmatch import translate
from pathlib import PurePath
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from osslsp.index.extract import FileSummary

SECRET_FILE_PATTERNS = (
    ".env", ".env.*", "*.env", "*.pem", "*.key", "*.p12", "*.pfx", "*.jks", "*.keystore",
    "id_rsa*", "id_dsa*", "id_ecdsa*", "id_ed25519*", "*.ppk", "credentials", "credentials.*",
    ".netrc", ".pgpass", ".npmrc", ".pypirc", "*.kdbx", "secrets.*", "*.secret", "*.secrets",
)
REDACTED = "<redacted>"
_SECRET_NAME = re.compile("|".join(translate(pattern) for pattern in SECRET_FILE_PATTERNS))

# Values that are credentials by their form alone.
_SECRET_VALUE = (
    r"""AKIA[0-9A-Z]{16}"""  # AWS access key id
    r"""|gh[pousr]_[A-Za-z0-9]{30,}|xox[abpr]-[A-Za-z0-9-]{10,}|sk-[A-Za-z0-9_-]{20,}"""
    r"""|(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{10,}"""  # Stripe's secret and restricted keys
)
_SECRET_LINE = re.compile(
    _SECRET_VALUE
    + r"""|aws_secret_access_key|aws_session_token"""
    r"""|-----BEGIN [A-Z ]*PRIVATE KEY-----"""
    r"""|(?i:(?:password|passwd|pwd|secret|token|api[_-]?key|apikey|access[_-]?key|auth)"""
    r"""[\w-]*["']?\s*[:=]\s*[bruf]{0,2}["'][^"'\s]{8,}["'])"""  # also f-strings
    r"""|(?i:[a-z][a-z0-9+.-]*://[^/\s:@"']+:[^/\s@"']+@)"""  # a URL with user:password
    # an Authorization header's value (a digit in it: prose such as "bearer authentication" is not)
    r"""|(?i:(?:\bbearer|authorization["']?\s*[:=]\s*["']?(?:basic|token))\s+(?=[A-Za-z._~+/=-]*[0-9])[A-Za-z0-9._~+/=-]{12,})"""
)
_SECRET_LINE_BYTES = re.compile(_SECRET_LINE.pattern.encode())
# Every credential `_SECRET_LINE` finds holds one of these needles (lower-cased), where the
# pattern paired with it matches (None: anywhere). Only those lines are searched with the whole
# pattern: searching every line takes seconds on a large workspace. Each needle costs a pass over
# the text (about 1.5 GB/s): one needle stands for several (`gh` for `ghp_`, `gho_`, ...), and a
# common word ("key", "token", on many lines of code) counts only where it is assigned, as every
# credential named by it is, or ends a private key's BEGIN line.
_ASSIGNED = r"""[\w-]*["']?\s*[:=]"""
_NEEDLES = {
    "akia": None, "xox": None, "sk-": None, "bearer": None, "://": None,
    "gh": r"gh[pousr]_", "k_": r"(?<=[sr])k_",
    "key": rf"key(?:{_ASSIGNED}|-----)|(?<=aws_secret_access_)key",
    "token": rf"token{_ASSIGNED}|(?<=aws_session_)token",
    **{word: word + _ASSIGNED for word in ("pass", "pwd", "secret", "auth")},
}
_NEEDLES_STR = {needle: confirm and re.compile(confirm) for needle, confirm in _NEEDLES.items()}
_NEEDLES_BYTES = {needle.encode(): confirm and re.compile(confirm.encode())
                  for needle, confirm in _NEEDLES.items()}
_KEY_BEGIN = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")
_KEY_END = re.compile(r"-----END [A-Z ]*PRIVATE KEY-----")
_KEY_BEGIN_BYTES, _KEY_END_BYTES = (re.compile(pattern.pattern.encode()) for pattern in (_KEY_BEGIN, _KEY_END))

_WORD = re.compile(r"\w+")
_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)

AnyStr = TypeVar("AnyStr", str, bytes)


def is_secret_path(path: str | PurePath) -> bool:
    """Whether a file's name says it holds secrets (`.env`, keys, certificates, credentials)."""
    return _SECRET_NAME.match(os.path.basename(os.fspath(path)).lower()) is not None


def _line_around(text: AnyStr, position: int, newline: AnyStr) -> tuple[int, int]:
    end = text.find(newline, position)
    return text.rfind(newline, 0, position) + 1, len(text) if end == -1 else end


def _secret_lines(text: AnyStr) -> list[tuple[int, int]]:
    """The (start, end) offsets of the lines that look like credentials, in order; a private key
    block's every line, from its BEGIN line to its END line (or the end of the text)."""
    binary = isinstance(text, bytes)
    newline = b"\n" if binary else "\n"
    pattern, key_begin, key_end = ((_SECRET_LINE_BYTES, _KEY_BEGIN_BYTES, _KEY_END_BYTES) if binary
                                   else (_SECRET_LINE, _KEY_BEGIN, _KEY_END))
    lower = text.lower() if binary else text.translate(_ASCII_LOWER)  # offsets kept: ASCII only
    candidates: dict[int, int] = {}
    for needle, confirm in (_NEEDLES_BYTES if binary else _NEEDLES_STR).items():
        position = lower.find(needle)
        while position != -1:
            if confirm is not None and not confirm.match(lower, position):
                position = lower.find(needle, position + 1)
                continue
            start, end = _line_around(text, position, newline)
            candidates[start] = end
            position = lower.find(needle, end)
    flagged: dict[int, int] = {}
    for start, end in sorted(candidates.items()):
        if start in flagged or not pattern.search(text, start, end):
            continue
        flagged[start] = end
        if key_begin.search(text, start, end):
            while not key_end.search(text, start, end) and end < len(text):
                start, end = _line_around(text, end + 1, newline)
                flagged[start] = end
    return sorted(flagged.items())


def has_secret(text: str) -> bool:
    """Whether any line of the text looks like a credential."""
    return bool(_secret_lines(text))


def _redacted(text: AnyStr, lines: list[tuple[int, int]]) -> AnyStr:
    """The text with each of `lines` replaced by its indentation and `<redacted>`."""
    marker = REDACTED.encode() if isinstance(text, bytes) else REDACTED
    pieces, done = [], 0
    for start, end in lines:
        line = text[start:end]
        pieces += [text[done:start], line[:len(line) - len(line.lstrip())], marker]
        done = end
    pieces.append(text[done:])
    return text[:0].join(pieces)


def redact_secrets(text: str) -> str:
    """The text with every credential-looking line replaced by its indentation and `<redacted>`.

    Line count is kept so that positions in the rest of the text stay right; private key blocks
    lose all their lines.
    """
    lines = _secret_lines(text)
    return _redacted(text, lines) if lines else text


def redact_around(text: str, offset: int) -> tuple[str, str]:
    """The redacted text before and after `offset`. The whole text is redacted before it is split,
    so a credential the offset falls inside is redacted whole; the offset then moves to the end of
    its redacted line."""
    lines = _secret_lines(text)
    if not lines:
        return text[:offset], text[offset:]
    containing = next(((start, end) for start, end in lines if start <= offset <= end), None)
    if containing is not None:
        offset = containing[1]
    before = [line for line in lines if line[1] <= offset]
    moved = len(_redacted(text[:offset], before))
    redacted = _redacted(text, lines)
    return redacted[:moved], redacted[moved:]


def redact_summary(summary: FileSummary, source: bytes) -> FileSummary:
    """A file's summary as the index may store it: signatures and documentation redacted, and
    the words found only on its credential-looking lines (passwords, keys) dropped from its
    identifiers and bodies' words. Extraction runs on the source as written, so that a redacted
    line cannot break the parse of the lines around it."""
    lines = _secret_lines(source)
    if not lines:
        return summary
    secret = b"\n".join(source[start:end] for start, end in lines).decode("utf-8", errors="replace")
    rest = _redacted(source, lines).decode("utf-8", errors="replace")
    hidden = set(_WORD.findall(secret)) - set(_WORD.findall(rest))

    def scrub(text: str) -> str:
        text = redact_secrets(text)
        return _WORD.sub(lambda word: REDACTED if word.group() in hidden else word.group(), text)

    def words(text: str) -> str:
        return " ".join(word for word in text.split() if word not in hidden)

    return dataclasses.replace(
        summary, identifiers=words(summary.identifiers), tokens=tuple(map(words, summary.tokens)),
        definitions=tuple(definition._replace(signature=scrub(definition.signature), doc=scrub(definition.doc))
                          for definition in summary.definitions))
