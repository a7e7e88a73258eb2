"""Registers the built-in strategies components through the public hooks."""

from __future__ import annotations
