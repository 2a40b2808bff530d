"""A module that follows PEP 8."""

import os
import sys
from pathlib import Path

MAX_RETRIES = 3


class FileCache:
    """Remembers file contents."""

    default_size = 10

    def __init__(self, root: Path) -> None:
        self.root = root
        self._entries = {}

    def read_text(self, name, *args, encoding="utf-8", **options):
        """Read a file, from the cache if it is there."""
        if name not in self._entries:
            path = os.path.join(self.root,
                                name)
            self._entries[name] = open(path, encoding=encoding).read()
        return self._entries[name]


def total_size(paths):
    """Sum the sizes of files."""
    def size_of(path):
        return os.path.getsize(path)
    text = """
    Trailing spaces in a string are content:   
    """
    return sum(size_of(path) for path in paths) + len(text) + len(sys.argv)
