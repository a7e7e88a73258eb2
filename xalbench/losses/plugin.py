"""Registers the built-in losses components through the public hooks."""

from __future__ import annotations
