"""Import resolution: from what a file imports to the workspace files that define it."""

from __future__ import annotations

import posixpath
from collections import defaultdict
from collections.abc import Iterable

# Files that stand for their directory (`import pkg` reads pkg/__init__.py).
PACKAGE_STEMS = frozenset({"__init__", "mod", "index"})
_DOUBLE_SUFFIXES = (".d.ts", ".d.mts", ".d.cts")


def _stem_parts(path: str) -> tuple[str, ...]:
    """A file's module path: components without the extension; packages name their directory."""
    parts = path.split("/")
    last = parts[-1]
    for suffix in _DOUBLE_SUFFIXES:
        if last.endswith(suffix):
            last = last[:-len(suffix)]
            break
    else:
        last = last.rsplit(".", 1)[0]
    if last in PACKAGE_STEMS and len(parts) > 1:
        return tuple(parts[:-1])
    return tuple(parts[:-1]) + (last,)


class ModuleResolver:
    """Maps module names, written as each language writes them, to indexed files."""

    def __init__(self, paths: Iterable[str]) -> None:
        self.by_suffix: dict[tuple[str, ...], list[str]] = defaultdict(list)
        self.directories: dict[tuple[str, ...], list[str]] = defaultdict(list)
        for path in sorted(paths):
            stem = _stem_parts(path)
            for start in range(len(stem)):
                self.by_suffix[stem[start:]].append(path)
            directory = tuple(path.split("/")[:-1])
            for start in range(len(directory)):
                self.directories[directory[start:]].append(path)

    def resolve(self, language: str, importer: str, module: str, level: int = 0) -> list[str]:
        """The files a module name refers to from the importing file, most likely first."""
        importer_dir = posixpath.dirname(importer)
        anchor: tuple[str, ...] | None = None
        if language == "python":
            parts = tuple(part for part in module.split(".") if part)
            if level:
                base = importer_dir
                for _ in range(level - 1):
                    base = posixpath.dirname(base)
                anchor = tuple(part for part in base.split("/") if part)
        elif language in ("javascript", "typescript", "typescriptreact", "c", "cpp"):
            if module.startswith(".") or language in ("c", "cpp"):
                joined = posixpath.normpath(posixpath.join(importer_dir, module))
                local = self._exact(tuple(_stem_parts(joined)) if "." in posixpath.basename(
                    joined) else tuple(joined.split("/")))
                if local or module.startswith("."):
                    return local
            parts = _stem_parts(module.lstrip("@~/"))
        elif language == "go":
            return self._go_package(module)
        elif language == "rust":
            parts = tuple(part for part in module.split("::") if part not in ("crate", "self"))
            supers = 0
            while parts and parts[0] == "super":
                supers, parts = supers + 1, parts[1:]
            if supers:
                base = importer_dir
                for _ in range(supers - 1):
                    base = posixpath.dirname(base)
                anchor = tuple(part for part in base.split("/") if part)
        else:  # java and other dotted languages
            parts = tuple(module.split("."))
        if anchor is not None:
            return self._exact(anchor + parts)
        return self._nearest(self.by_suffix.get(parts, []), importer)

    def _exact(self, parts: tuple[str, ...]) -> list[str]:
        return [path for path in self.by_suffix.get(parts, []) if _stem_parts(path) == parts]

    def _go_package(self, module: str) -> list[str]:
        """A Go import path names a directory; the longest suffix present in the workspace wins."""
        parts = tuple(module.split("/"))
        for start in range(len(parts)):
            files = self.directories.get(parts[start:])
            if files:
                return list(files)
        return []

    @staticmethod
    def _nearest(candidates: list[str], importer: str) -> list[str]:
        """Candidates ordered by how much of the importer's directory they share."""
        importer_parts = importer.split("/")

        def shared(path: str) -> int:
            count = 0
            for mine, theirs in zip(importer_parts, path.split("/")):
                if mine != theirs:
                    break
                count += 1
            return count

        return sorted(candidates, key=shared, reverse=True)

