"""``xalbench check-plugin``: the conformance kits on installed components — strategies (queried in their
sandbox process, with the leak checks), losses and explainers."""

from __future__ import annotations

import argparse
from typing import Any

from xalbench.commands import Command


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--timeout takes a number of seconds, not {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"--timeout must be > 0 seconds, got {value:g}")
    return value


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="a strategy, loss or explainer name, or a distribution name")
    p.add_argument("--timeout", type=_seconds, default=None, metavar="S",
                   help="seconds one strategy query may take before the sandbox is killed (default 60)")


def handle(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from xalbench.errors import UnknownComponentError
    from xalbench.testing import run_check_components, run_check_plugin

    rows: list[dict[str, Any]] = []
    strategy_error: UnknownComponentError | None = None
    try:
        strategy_rows, _ok = run_check_plugin(args.name, time_limit=args.timeout)
        rows += [{"kind": "strategy", "component": r.pop("strategy"), **r} for r in strategy_rows]
    except UnknownComponentError as exc:
        strategy_error = exc
    rows += run_check_components(args.name)
    if not rows:
        raise UnknownComponentError(f"{args.name!r} is not a registered strategy, loss or explainer, nor a distribution "
                                    f"that registers one ({strategy_error}); see `xalbench plugins`")
    print(tabulate(rows, headers="keys"))
    return 0 if not any(r["status"] == "failed" for r in rows) else 1


COMMAND = Command("check-plugin", "run the conformance kits on an installed component or distribution",
                  add_arguments, handle,
                  summary="Checks a third-party strategy the way the harness runs it (in its sandbox process, with "
                          "the leak checks), and its losses and explainers with their kits, before you submit it.")
