"""How a definition reads in a prompt: its signature and its documentation, as text (pure)."""

from __future__ import annotations

import inspect

MAX_SIGNATURE_LINES = 10
MAX_SIGNATURE_CHARS = 800
SIGNATURE_SCAN_BYTES = 4096  # of a definition's text, looked at for its signature
MAX_DOC_CHARS = 600


def signature_text(source: bytes, start: int, end: int, indent: int) -> str:
    """A signature from the text between a definition's start and its body (or the first lines
    of that text); `indent`: the definition's column."""
    scan_end = start + SIGNATURE_SCAN_BYTES
    text = source[start:end if end < scan_end else scan_end].rstrip().decode(errors="replace")
    if "\n" not in text:  # most signatures: one line, nothing to dedent
        return _without_opener(text)[:MAX_SIGNATURE_CHARS]
    cut_short = end > scan_end
    lines = [line for line in text.splitlines() if line.strip()]  # and comments blanked
    while len(lines) > 1 and lines[-1].lstrip().startswith(("#", "//")):
        lines.pop()  # comments opening the body
    lines = _without_opener("\n".join(lines)).splitlines()
    if len(lines) == 1:  # comments dropped: nothing to dedent (the text starts at the name)
        return lines[0][:MAX_SIGNATURE_CHARS]
    if len(lines) > MAX_SIGNATURE_LINES or cut_short:
        lines = lines[:MAX_SIGNATURE_LINES] + ["..."]
    # The first line starts at the definition (its indentation not sliced in): the others
    # lose the indentation all of them share with it.
    margin = min(indent, *(len(line) - len(line.lstrip()) for line in lines[1:]))
    return "\n".join([" " * (indent - margin) + lines[0]] +
                     [line[margin:] for line in lines[1:]])[:MAX_SIGNATURE_CHARS]


def _without_opener(signature: str) -> str:
    """A signature without what opens the body (`:`, `{`, `=>`)."""
    if signature[-1:] == ":":  # most: Python's
        return signature[:-1].rstrip()
    signature = signature.rstrip()
    return signature.removesuffix("=>").rstrip().removesuffix("{").removesuffix(":").rstrip()


def docstring_text(literal: str) -> str:
    """A docstring's text from its literal (quotes and prefix included)."""
    stripped = literal.lstrip("rRbBuUfF")
    quote = stripped[:3] if stripped[:3] in ('"""', "'''") else stripped[:1]
    inner = stripped[len(quote):len(stripped) - len(quote)]
    # One line (most) needs no dedenting: cleandoc's work is for the lines after the first.
    return clean_doc(inspect.cleandoc(inner) if "\n" in inner else inner.expandtabs())


def clean_doc(text: str) -> str:
    text = text.strip()
    return text if len(text) <= MAX_DOC_CHARS else text[:MAX_DOC_CHARS].rstrip() + " ..."
