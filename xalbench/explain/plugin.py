"""Registers the built-in explain components through the public hooks."""

from __future__ import annotations
