"""A module that follows the Google Python Style Guide."""

import os
from collections.abc import Iterable

_DEFAULT_NAME = 'report'


class Report:
    """Lines of a report."""


def join_all(parts: Iterable[str], separator: str = os.sep) -> str:
    """Joins parts.

    Args:
        parts: The pieces.
        separator: What goes between them.

    Returns:
        The joined text.
    """
    def clean(part):
        return part.strip('/')
    return separator.join(clean(part) for part in parts) + _DEFAULT_NAME
