"""Import resolution: from what a file imports to the workspace files that define it."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from osslsp.languages import LANGUAGES, language_named

# Files that stand for their directory (`import pkg` reads pkg/__init__.py), in any language.
PACKAGE_STEMS = frozenset(stem for language in LANGUAGES for stem in language.package_stems)
_COMPOUND_SUFFIXES = tuple(dict.fromkeys(suffix for language in LANGUAGES for suffix in language.compound_suffixes))


def _stem_parts(path: str) -> tuple[str, ...]:
    """A file's module path: components without the extension; packages name their directory."""
    parts = path.split("/")
    last = parts[-1]
    for suffix in _COMPOUND_SUFFIXES:
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
        registered = language_named(language)
        if registered is None:
            return []
        return registered.resolve_import(self, importer, module, level)

    @staticmethod
    def stem_parts(path: str) -> tuple[str, ...]:
        """A file path's module parts: no extension; a package file names its directory."""
        return _stem_parts(path)

    def exact(self, parts: tuple[str, ...]) -> list[str]:
        """The files whose whole module path is `parts`."""
        return [path for path in self.by_suffix.get(parts, []) if _stem_parts(path) == parts]

    def nearest(self, parts: tuple[str, ...], importer: str) -> list[str]:
        """The files whose module path ends with `parts`, nearest the importer first."""
        return self._nearest(self.by_suffix.get(parts, []), importer)

    def directory(self, parts: tuple[str, ...]) -> list[str]:
        """The files of the directory whose path ends with the longest suffix of `parts`."""
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

