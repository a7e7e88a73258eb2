"""``xalbench leaderboard``: submit, check, verify and build the public leaderboard."""

from __future__ import annotations

import argparse
from typing import Any

from xalbench.cli.common import add_debug

NAME = "leaderboard"


def add_parser(sub: Any) -> None:
    p = sub.add_parser(NAME, help="public leaderboard: submit a run, check or verify a submission, build the page")
    add_debug(p)
    try:
        from xalbench.leaderboard.cli import add_arguments
    except ImportError:  # pragma: no cover
        add_arguments = None
    if add_arguments is not None:
        add_arguments(p)
    p.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from xalbench.leaderboard.cli import main

    return int(main(args))
