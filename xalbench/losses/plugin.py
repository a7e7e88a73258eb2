"""Registers the built-in losses through the public hook (as any third party would)."""

from __future__ import annotations

from xalbench import hookimpl
from xalbench.hookspecs import Register
from xalbench.losses.ce import CrossEntropyLoss


@hookimpl
def register_losses(register: Register) -> None:
    register(CrossEntropyLoss)
