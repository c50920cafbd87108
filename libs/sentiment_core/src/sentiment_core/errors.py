"""The root of every error the library raises on purpose, so a caller catches one type where it means "ours"."""

from __future__ import annotations


class SentimentError(Exception):
    """A failure this project raised on purpose; the message is meant for a human (no traceback needed).

    Subclasses keep their builtin base too (ValueError for bad input, RuntimeError for a failed operation), so code
    that catches those still does.
    """
