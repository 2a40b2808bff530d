"""`osslsp style check` and `osslsp style list`: the guide checker from a terminal."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

from osslsp.languages import language_for_path
from osslsp.style.check import check_text
from osslsp.style.guide import StyleGuide
from osslsp.style.resolve import (bundled_description, bundled_languages, bundled_names, known_languages,
                                  resolve_guide)

_SKIPPED_DIRS = {"node_modules", "target", "build", "dist", "__pycache__", "venv"}


def _files(paths: list[Path]) -> Iterator[Path]:
    """The files to check: each file named, and the source files below each folder named."""
    for path in paths:
        if path.is_dir():
            for folder, subfolders, names in os.walk(path):
                subfolders[:] = sorted(d for d in subfolders if not d.startswith(".") and d not in _SKIPPED_DIRS)
                yield from (Path(folder) / name for name in sorted(names) if language_for_path(name))
        else:
            yield path


def style_main(paths: list[Path], guide: str) -> int:
    """Check files against their guides; print `path:line:col: rule: message`. 1 if anything breaks a rule."""
    if guide and guide not in bundled_names() and not Path(guide).expanduser().is_file():
        print(f"osslsp style: --guide {guide!r} is neither a bundled guide ({', '.join(bundled_names())}) "
              "nor a file", file=sys.stderr)
        return 2
    root = Path.cwd()
    guides: dict[str, StyleGuide] = {}
    status = 0
    for path in _files(paths):
        language = language_for_path(path)
        if language is None:
            print(f"{path}: not a language osslsp checks", file=sys.stderr)
            status = 2
            continue
        if language.name not in guides:
            guides[language.name], warnings = resolve_guide(language.name, root, guide)
            for warning in warnings:
                print(f"warning: {warning}", file=sys.stderr)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            print(f"{path}: cannot read: {error}", file=sys.stderr)
            status = 2
            continue
        for finding in check_text(text, language.name, guides[language.name]):
            print(f"{path}:{finding}")
            status = max(status, 1)
    return status


def list_main(workspace_root: Path) -> int:
    """Show the bundled guides and the guide each language resolves to in a workspace."""
    print("Bundled guides:")
    for name in bundled_names():
        print(f"  {name:<14} {', '.join(bundled_languages(name)):<40} {bundled_description(name)}")
    print(f"\nIn {workspace_root}:")
    for language in known_languages():
        guide, warnings = resolve_guide(language, workspace_root)
        origin = "; ".join(guide.sources) or "no guide"
        print(f"  {language:<16} {guide.name:<20} {origin}")
        for warning in warnings:
            print(f"    warning: {warning}")
    return 0
