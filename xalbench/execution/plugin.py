"""Registers the built-in executors through the public hook."""

from __future__ import annotations

from xalbench import hookimpl
from xalbench.execution.local import LocalExecutor
from xalbench.hookspecs import Register


@hookimpl
def register_executors(register: Register) -> None:
    register(LocalExecutor)
