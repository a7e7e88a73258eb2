"""The ``Command`` contract: an ``xalbench`` subcommand a plugin adds through ``register_commands``.

Example::

    import xalbench

    def add_arguments(parser):
        parser.add_argument("run_dir")

    def upload(args) -> int:
        ...
        return 0

    @xalbench.hookimpl
    def register_commands(register):
        register(xalbench.Command("upload", "upload a run to our tracker", add_arguments, upload))

Handlers return the process exit code (0 ok, 1 failure, 2 usage); raising a
:class:`xalbench.errors.XalbenchError` prints one line and exits with its code.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable

__all__ = ["Command"]


@dataclasses.dataclass(frozen=True)
class Command:
    """A subcommand: ``name``, one-line ``help``, an ``add_arguments(parser)`` and a ``run(args) -> int``."""

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    summary: str = ""

    def __post_init__(self) -> None:
        if not self.summary:
            object.__setattr__(self, "summary", self.help)
