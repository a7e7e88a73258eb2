"""``xalbench plugins``: registered components (fits 100 columns; ``--wide`` for everything) and
``xalbench plugins show NAME``: a component's options with types, defaults and docs, and its paper."""

from __future__ import annotations

import argparse
import dataclasses
import json
import textwrap
import typing
from typing import Any

from xalbench.commands import Command
from xalbench.errors import ConfigError
from xalbench.hookspecs import HOOK_KINDS

KINDS = tuple(HOOK_KINDS.values())

def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", nargs="?", choices=["list", "show"], default="list", help="list (default) or show")
    p.add_argument("name", nargs="?", help="with `show`: the component's name")
    p.add_argument("--kind", default=None, choices=KINDS, metavar="KIND", help=f"only this kind ({', '.join(KINDS)})")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--wide", action="store_true", help="every column, untruncated")


def _extra(rec: Any) -> str:
    """The notes column: the declarations that hold (a flag's name) or say something (a value)."""
    return ", ".join(name if value is True else str(value) for name, value in rec.declared().items()
                     if value is not False and value is not None)


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(0, width - 1)].rstrip() + "…"


def _list(registry: Any, args: argparse.Namespace) -> int:
    rows = [rec for rec in registry if args.kind in (None, rec.kind)]
    if args.json:
        print(json.dumps([{**rec.as_dict(), "notes": _extra(rec)} for rec in rows], indent=1))
        return 0
    from tabulate import tabulate

    if args.wide:
        table = [[r.kind, r.name, r.distribution, r.version, r.summary, _extra(r), r.paper] for r in rows]
        print(tabulate(table, headers=["kind", "name", "distribution", "version", "summary", "notes", "paper"]))
        return 0
    table = [[r.kind, _fit(r.name, 22), _fit(r.distribution, 17), _fit(r.summary, 40)] for r in rows]
    print(tabulate(table, headers=["kind", "name", "distribution", "summary"]))
    print("\n`xalbench plugins show NAME` for options and paper; --wide for versions, notes and papers")
    return 0


def _type_name(hint: Any) -> str:
    text = str(hint).replace("typing.", "")
    return getattr(hint, "__name__", text) if typing.get_origin(hint) is None else text


def _show(registry: Any, args: argparse.Namespace) -> int:
    matches = [rec for rec in registry if rec.name == args.name and args.kind in (None, rec.kind)]
    if not matches:
        known = sorted({rec.name for rec in registry})
        from xalbench.options import did_you_mean

        raise ConfigError(f"no component named {args.name!r}; {did_you_mean(args.name, known)}"
                          "see `xalbench plugins` for the list")
    for rec in matches:
        obj = rec.obj
        print(f"{rec.kind} {rec.name}  ({rec.distribution} {rec.version}, plugin {rec.plugin})")
        if rec.summary:
            print(textwrap.fill(rec.summary, 100, initial_indent="  ", subsequent_indent="  "))
        if rec.paper:
            print(textwrap.fill(f"paper: {rec.paper}", 100, initial_indent="  ", subsequent_indent="    "))
        if _extra(rec):
            print(f"  {_extra(rec)}")
        options = getattr(obj, "Options", None)
        if options is not None and dataclasses.is_dataclass(options):
            hints = typing.get_type_hints(options)
            fields = dataclasses.fields(options)
            print("  options:" if fields else "  options: none")
            for f in fields:
                default = f.default if f.default is not dataclasses.MISSING else (
                    f.default_factory() if f.default_factory is not dataclasses.MISSING else "(required)")
                print(f"    {f.name}: {_type_name(hints.get(f.name, Any))} = {default!r}")
                doc = (f.metadata or {}).get("doc", "")
                if doc:
                    print(textwrap.fill(doc, 100, initial_indent="        ", subsequent_indent="        "))
        doc = (getattr(obj, "__doc__", "") or "").strip()
        if doc:
            print()
            print(textwrap.indent(textwrap.dedent(doc), "  "))
    return 0


def handle(args: argparse.Namespace) -> int:
    from xalbench.plugins import PluginSelection

    registry = PluginSelection.from_env().registry()
    if args.action == "show":
        if not args.name:
            raise ConfigError("`xalbench plugins show` needs a component name, e.g. `xalbench plugins show entropy`")
        return _show(registry, args)
    return _list(registry, args)


COMMAND = Command("plugins", "list registered components; `plugins show NAME` for one component's options",
                  add_arguments, handle,
                  summary="Every registered component: kind, name, distribution, version, summary.")
