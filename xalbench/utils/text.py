"""Text helpers shared by result files, reports and plots."""

from __future__ import annotations

import re

__all__ = ["slug"]

_UNSAFE = re.compile(r"[^A-Za-z0-9.=,+-]+")


def slug(text: str) -> str:
    """A filesystem-safe rendering of ``text``: runs of other characters become one ``_``."""
    return _UNSAFE.sub("_", text).strip("_")
