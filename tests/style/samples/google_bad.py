"""A module that breaks the Google Python Style Guide."""

import os

GREETING = "hello"


def join_paths(first, second: str) -> str:
    """Join two paths."""
    return os.path.join(first, second, 'again')


def describe(path: str):
    """Describe a path; this docstring line runs past the eighty-column limit."""
    return path


# See https://google.github.io/styleguide/pyguide.html#s3.2-line-length for why this may be long.
