"""``xalbench data``: dataset availability, download and preparation."""

from __future__ import annotations

import argparse
import json

from xalbench.cli.common import add_debug, data_root
from xalbench.commands import Command


def add_arguments(p: argparse.ArgumentParser) -> None:
    dsub = p.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    dl = dsub.add_parser("list", help="each dataset's availability, size, licence and synthetic flag")
    dl.add_argument("--data-root", default=None, metavar="DIR", help="default: $XALBENCH_DATA")
    dl.add_argument("--json", action="store_true", help="machine-readable output")
    add_debug(dl)
    df = dsub.add_parser("fetch", help="download a dataset when the network allows (checksum verified)")
    df.add_argument("ref", help="e.g. medmnist:dermamnist@28")
    df.add_argument("--data-root", default=None, metavar="DIR", help="default: $XALBENCH_DATA")
    add_debug(df)
    try:
        from xalbench.data.prepare_cli import add_prepare_arguments
    except ImportError:  # pragma: no cover - the preparation module is optional at import time
        add_prepare_arguments = None
    if add_prepare_arguments is not None:
        dp = dsub.add_parser("prepare", help="decode and resize a real dataset once into a memory-mapped cache")
        add_prepare_arguments(dp)
        add_debug(dp)


def handle(args: argparse.Namespace) -> int:
    if args.data_command == "prepare":
        from xalbench.data.prepare_cli import run_prepare

        return int(run_prepare(args))
    from xalbench.data.catalog import data_fetch, data_list
    from xalbench.plugins import PluginSelection

    root = data_root(args.data_root)
    if args.data_command == "fetch":
        path = data_fetch(args.ref, root)
        print(f"fetched {args.ref} → {path}")
        return 0
    rows = data_list(PluginSelection.from_env().registry(), root)
    if args.json:
        print(json.dumps(rows, indent=1, default=str))
    else:
        from tabulate import tabulate

        print(tabulate(rows, headers="keys"))
    return 0


COMMAND = Command("data", "dataset availability, download and preparation", add_arguments, handle)
