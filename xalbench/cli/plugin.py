"""xalbench's own commands, registered through ``register_commands`` as a plugin's are (entry point
``builtin_commands``). Importing this module imports no torch: each command imports what it needs
when it runs, so the CLI builds its parser from :data:`COMMANDS` without loading the registry."""

from __future__ import annotations

from xalbench.cli import check, data, new_plugin, plugins, report, run, suites
from xalbench.commands import Command
from xalbench.hookspecs import Register, hookimpl
from xalbench.leaderboard import cli as leaderboard

__all__ = ["COMMANDS", "register_commands"]

#: the built-in commands, in the order ``xalbench --help`` lists them
COMMANDS: tuple[Command, ...] = (run.COMMAND, report.COMMAND, suites.COMMAND, plugins.COMMAND, data.COMMAND,
                                 check.COMMAND, leaderboard.COMMAND, new_plugin.COMMAND)


@hookimpl
def register_commands(register: Register) -> None:
    for command in COMMANDS:
        register(command)
