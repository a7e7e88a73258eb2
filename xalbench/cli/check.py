"""``xalbench check-plugin``: the conformance kit on installed components (strategies run in the sandbox)."""

from __future__ import annotations

import argparse
from typing import Any

from xalbench.cli.common import add_debug

NAME = "check-plugin"


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--timeout takes a number of seconds, not {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"--timeout must be > 0 seconds, got {value:g}")
    return value


def add_parser(sub: Any) -> None:
    p = sub.add_parser(NAME, help="run the conformance kit on an installed strategy or distribution",
                       description="Checks a third-party strategy the way the harness runs it: in its sandbox "
                       "process, with the leak checks, before you submit it.")
    p.add_argument("name", help="a strategy name or a distribution name")
    p.add_argument("--timeout", type=_seconds, default=None, metavar="S", help="seconds one query may take (default 60)")
    add_debug(p)
    p.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from xalbench.testing import run_check_plugin

    kwargs = {"timeout": args.timeout} if args.timeout is not None else {}
    try:
        rows, ok = run_check_plugin(args.name, **kwargs)
    except TypeError:  # a kit without the timeout parameter
        rows, ok = run_check_plugin(args.name)
    print(tabulate(rows, headers="keys"))
    return 0 if ok else 1
