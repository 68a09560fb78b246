"""Errors and warnings of the data layer.

Every message names the bad path or value and says what would be valid or what to do, so a user
reading a failed trial's log can fix the input without reading this code.
"""

from __future__ import annotations

from collections.abc import Iterable


class DataError(ValueError):
    """Bad data-layer input: a missing folder, a wrong layout, an unknown class, a bad option."""


class DataWarning(UserWarning):
    """Something was tolerated (e.g. unreadable files skipped); the message says what and where."""


def preview(items: Iterable[object], limit: int = 10) -> str:
    """Join the first `limit` items for a message, adding how many were left out."""
    texts = [str(i) for i in items]
    shown = ", ".join(texts[:limit])
    if len(texts) > limit:
        shown += f", ... ({len(texts) - limit} more)"
    return shown
