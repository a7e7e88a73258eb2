"""The ``xalbench`` command line.

Errors print one line saying what is wrong and what to do; exit 2 for usage/config errors,
1 for failed cells or damaged result files, 0 otherwise; tracebacks only with ``--debug``.
Building the parser imports no torch (``xalbench --help`` is instant): each command's module
imports what it needs when it runs. Commands come through ``register_commands``: xalbench's own
(:mod:`xalbench.cli.plugin`, called directly, so the registry is not loaded for them) and the
plugins' (loaded only when the command named is not a built-in).
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence

from xalbench.cli.common import add_debug
from xalbench.commands import Command
from xalbench.errors import XalbenchError

__all__ = ["build_parser", "builtin_commands", "main"]

EPILOG = """examples:
  xalbench run --suite medical                      the main job (offline, embedded data)
  xalbench run --suite smoke --out runs/smoke       a one-minute check
  xalbench run --suite medical --n-seeds 5 --dry-run    what would run, and how long
  xalbench report results/medical --format html -o report.html --plots plots/
  xalbench plugins show entropy                     a component's options, types, defaults and paper
  xalbench check-plugin my-strategy                 the conformance kit on an installed plugin
  xalbench new-plugin my-strategy                   a new plugin distribution to start from

Commands added by installed plugins are listed by `xalbench plugins --kind command`.
"""


def builtin_commands() -> list[Command]:
    """xalbench's own commands, as its ``register_commands`` registers them."""
    from xalbench.cli.plugin import register_commands

    commands: list[Command] = []

    def register(command: Command, /, *, name: str | None = None) -> None:
        commands.append(command)

    register_commands(register)
    return commands


def build_parser(extra_commands: Sequence[Command] = ()) -> argparse.ArgumentParser:
    """The ``xalbench`` parser: the built-in commands, then ``extra_commands`` (the plugins')."""
    from xalbench import __version__

    p = argparse.ArgumentParser(prog="xalbench", formatter_class=argparse.RawDescriptionHelpFormatter,
                                description="Benchmark explainable active learning for medical imaging.",
                                epilog=EPILOG)
    p.add_argument("--version", action="version", version=f"xalbench {__version__}")
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in [*builtin_commands(), *extra_commands]:
        cp = sub.add_parser(command.name, help=command.help, description=command.summary)
        add_debug(cp)
        command.add_arguments(cp)
        cp.set_defaults(handler=command.run)
    return p


def _plugin_commands(argv: Sequence[str]) -> list[Command]:
    """Commands registered by plugins, loaded only when the command named is not a built-in."""
    builtin = {c.name for c in builtin_commands()}
    first = next((a for a in argv if not a.startswith("-")), None)
    if first is None or first in builtin:
        return []
    from xalbench.plugins import PluginSelection

    registry = PluginSelection.from_env().registry()
    return [registry.get("command", name) for name in registry.names("command") if name not in builtin]


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        parser = build_parser(_plugin_commands(argv))
        args = parser.parse_args(argv)
        return int(args.handler(args))
    except XalbenchError as exc:
        if debug:
            traceback.print_exc()
        print(f"xalbench: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:  # `xalbench report DIR | head`
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("xalbench: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
