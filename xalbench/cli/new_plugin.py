"""``xalbench new-plugin NAME``: write a complete, pip-installable plugin distribution."""

from __future__ import annotations

import argparse

from xalbench.commands import Command


def add_arguments(p: argparse.ArgumentParser) -> None:
    from xalbench.scaffold import KINDS
    p.add_argument("name", metavar="NAME", help="the component's name, a slug such as my-strategy")
    p.add_argument("--kind", choices=KINDS, default="strategy", help="what the plugin adds (default: strategy)")
    p.add_argument("--dir", default=None, metavar="DIR",
                   help="folder to create (new or empty; default: ./xalbench-NAME)")
    p.add_argument("--dist", default=None, metavar="DIST",
                   help="distribution name (default: xalbench-NAME); the package is DIST with '_' for '-'")


def handle(args: argparse.Namespace) -> int:
    from xalbench.scaffold import create

    root, files = create(args.name, args.kind, args.dir, dist=args.dist)
    print(f"wrote {root}/ ({len(files)} files):")
    for rel in files:
        print(f"  {rel}")
    print(f"next: cd {root} && pip install -e '.[test]' && python -m pytest && xalbench plugins show {args.name}")
    return 0


COMMAND = Command("new-plugin", "write a new plugin distribution (pyproject, component, tests, README, CI)",
                  add_arguments, handle,
                  summary="Writes a pip-installable distribution that registers one component NAME through the "
                          "`xalbench` entry point: the component written the preferred way, tests using the "
                          "conformance kit, a README with the check / run / submit steps and a CI workflow.")
