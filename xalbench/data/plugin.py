"""Registers the built-in data components through the public hooks."""

from __future__ import annotations
