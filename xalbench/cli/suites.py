"""``xalbench suites``: the registered suites with their cells and expected time."""

from __future__ import annotations

import argparse
import json
import shutil
import textwrap
from typing import Any

from xalbench.commands import Command


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="machine-readable output")


def _cells(suite: Any, registry: Any) -> tuple[int, int]:
    from xalbench.planning import expand_methods

    methods = len(expand_methods(suite, registry))
    embedded = sum(1 for d in suite.datasets if not d.optional)
    return embedded * methods * len(suite.seeds), len(suite.datasets) * methods * len(suite.seeds)


def handle(args: argparse.Namespace) -> int:
    from xalbench.plugins import PluginSelection

    registry = PluginSelection.from_env().registry()
    rows = []
    for rec in registry:
        if rec.kind != "suite":
            continue
        suite = rec.obj.load()
        cells, cells_all = _cells(suite, registry)
        rows.append({"suite": rec.name, "distribution": rec.distribution, "cells": cells,
                     "cells_with_real_data": cells_all, "seeds": len(suite.seeds),
                     "description": " ".join(suite.description.split())})
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    width = min(100, shutil.get_terminal_size((100, 20)).columns)
    for row in rows:
        real = f" (+{row['cells_with_real_data'] - row['cells']} with real data)" if row["cells_with_real_data"] > row["cells"] else ""
        print(f"{row['suite']}  [{row['distribution']}]  {row['cells']} cells{real}, {row['seeds']} seeds")
        print(textwrap.fill(row["description"], width=width, initial_indent="    ", subsequent_indent="    ",
                            break_long_words=False))
    return 0


COMMAND = Command("suites", "list registered suites (cells, expected time)", add_arguments, handle,
                  summary="Every registered suite: its distribution, cell count (embedded datasets; real ones when "
                          "present), and a description.")
