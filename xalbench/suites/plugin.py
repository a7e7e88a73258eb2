"""Registers the built-in suites components through the public hooks."""

from __future__ import annotations
