"""The ``xalbench`` command line.

Errors print one line saying what is wrong and what to do; exit 2 for usage/config
errors, 1 for failed cells, 0 otherwise; tracebacks only with ``--debug``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

from xalbench.errors import ConfigError, XalbenchError

__all__ = ["main", "build_parser"]


def _seeds(text: str) -> list[int]:
    try:
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--seeds takes comma-separated integers like 0,1,2, not {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="xalbench", description="Benchmark explainable active learning for medical imaging.")
    from xalbench import __version__

    p.add_argument("--version", action="version", version=f"xalbench {__version__}")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a suite (resumable: rerun the same command to continue)")
    run.add_argument("--suite", required=True, help="registered suite name or a TOML file")
    run.add_argument("--datasets", nargs="+", help="only these datasets (names, comma or space separated)")
    run.add_argument("--strategies", nargs="+", help="only these strategies (added with the suite's losses if absent)")
    run.add_argument("--losses", nargs="+", help="only these losses")
    group = run.add_mutually_exclusive_group()
    group.add_argument("--seeds", type=_seeds, help="comma-separated seeds, e.g. 0,1")
    group.add_argument("--n-seeds", type=int, help="seeds 0..N-1")
    run.add_argument("--protocol", default=None,
                     help="use this registered budget protocol as published (drops the suite's protocol overrides)")
    run.add_argument("--out", default=None, help="results directory (default: results/<suite>)")
    run.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    run.add_argument("--workers", type=int, default=0,
                     help="local processes (joblib/loky); default 0 = one per CPU core; results identical to 1")
    run.add_argument("--threads", type=int, default=1, help="torch threads per cell (part of the determinism key)")
    run.add_argument("--data-root", default=None, help="folder with real datasets (default: $XALBENCH_DATA)")
    run.add_argument("--quiet", action="store_true", help="no progress bar, no leaderboard")
    run.add_argument("--debug", action="store_true", help="show tracebacks")

    rep = sub.add_parser("report", help="leaderboard from a results directory")
    rep.add_argument("dir")
    rep.add_argument("--format", default="md", choices=["md", "csv", "json", "html"])
    rep.add_argument("--plots", default=None, help="write PNG learning curves and the acc-vs-Dice plane here")
    rep.add_argument("--test", default="ttest", choices=["ttest", "wilcoxon"], help="paired test over seeds")
    rep.add_argument("--output", "-o", default=None, help="write the report to this file instead of stdout")

    plug = sub.add_parser("plugins", help="list registered components and their distributions")
    plug.add_argument("--json", action="store_true")
    plug.add_argument("--kind", default=None)

    sub.add_parser("suites", help="list registered suites")

    data = sub.add_parser("data", help="dataset availability and download")
    dsub = data.add_subparsers(dest="data_command", required=True)
    dl = dsub.add_parser("list", help="each dataset's availability, size, licence and synthetic flag")
    dl.add_argument("--data-root", default=None)
    dl.add_argument("--json", action="store_true")
    df = dsub.add_parser("fetch", help="download a dataset when the network allows (checksum verified)")
    df.add_argument("ref", help="e.g. medmnist:dermamnist@28")
    df.add_argument("--data-root", default=None)

    chk = sub.add_parser("check-plugin", help="run the strategy conformance kit on installed components")
    chk.add_argument("name", help="a strategy name or a distribution name")
    return p


def _device(choice: str) -> str:
    import torch

    if choice == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if choice == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda was asked for but no CUDA device is available; use --device cpu")
    return choice


def _cmd_run(args: argparse.Namespace) -> int:
    from xalbench.plugins import load_registry
    from xalbench.report.render import render_report
    from xalbench.runner import load_suite, plan_suite, run_plan

    registry = load_registry()
    suite = load_suite(registry, args.suite)
    if args.protocol:
        registry.get("protocol", args.protocol)  # unknown → did-you-mean
        suite = dataclasses.replace(suite, protocol_base=args.protocol, protocol_overrides={})
    seeds = args.seeds if args.seeds is not None else (list(range(args.n_seeds)) if args.n_seeds else None)
    if args.n_seeds is not None and args.n_seeds < 1:
        raise ConfigError("--n-seeds must be ≥ 1")
    if args.workers < 0 or args.threads < 1:
        raise ConfigError("--workers must be ≥ 0 (0 = one per core) and --threads ≥ 1")
    workers = args.workers or max(1, (os.cpu_count() or 1) // args.threads)
    out = args.out or os.path.join("results", suite.name)
    data_root = args.data_root or os.environ.get("XALBENCH_DATA")
    plan = plan_suite(registry, suite, out_dir=out, datasets=args.datasets, strategies=args.strategies,
                      losses=args.losses, seeds=seeds, device=_device(args.device), threads=args.threads,
                      data_root=data_root)
    for name, why in plan.skipped_datasets:
        print(f"skipped dataset {name}: {why}", file=sys.stderr)
    if plan.skipped_datasets:
        print(f"{len(plan.skipped_datasets)} dataset(s) skipped, {len(plan.cells)} cell(s) to run", file=sys.stderr)
    results = run_plan(plan, workers=workers, quiet=args.quiet)
    failed = [r for r in results if r["status"] == "failed"]
    if not args.quiet and results:
        print(render_report(out))
    for r in failed:
        err = r.get("error", {})
        print(f"FAILED {r['cell']['key']}: {err.get('type')}: {err.get('message')}", file=sys.stderr)
    print(f"results: {os.path.abspath(out)} ({len(results)} cells, {len(failed)} failed)", file=sys.stderr)
    return 1 if failed else 0


def _cmd_report(args: argparse.Namespace) -> int:
    from xalbench.report.plots import write_plots
    from xalbench.report.render import load_results, render_report

    text = render_report(args.dir, args.format, test=args.test)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        print(text)
    if args.plots:
        for path in write_plots(load_results(args.dir), args.plots):
            print(f"wrote {path}", file=sys.stderr)
    return 0


def _cmd_plugins(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from xalbench.plugins import load_registry

    rows = [rec.as_dict() for rec in load_registry() if args.kind in (None, rec.kind)]
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    table = [[r["kind"], r["name"], r["distribution"], r["version"],
              (r["summary"][:70] + ("" if "differentiable" not in r else f" [differentiable={r['differentiable']}]")),
              r["paper"][:50]] for r in rows]
    print(tabulate(table, headers=["kind", "name", "distribution", "version", "summary", "paper"]))
    return 0


def _cmd_suites(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from xalbench.plugins import load_registry

    registry = load_registry()
    rows = [[rec.name, rec.distribution, rec.obj.summary[:90]] for rec in registry if rec.kind == "suite"]
    print(tabulate(rows, headers=["suite", "distribution", "description"]))
    return 0


def _cmd_data(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from xalbench.data.catalog import data_fetch, data_list
    from xalbench.plugins import load_registry

    root = args.data_root or os.environ.get("XALBENCH_DATA")
    if args.data_command == "fetch":
        path = data_fetch(args.ref, root)
        print(f"fetched {args.ref} → {path}")
        return 0
    rows = data_list(load_registry(), root)
    if getattr(args, "json", False):
        print(json.dumps(rows, indent=1, default=str))
    else:
        print(tabulate(rows, headers="keys"))
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from xalbench.testing import run_check_plugin

    rows, ok = run_check_plugin(args.name)
    print(tabulate(rows, headers="keys"))
    return 0 if ok else 1


COMMANDS = {"run": _cmd_run, "report": _cmd_report, "plugins": _cmd_plugins, "suites": _cmd_suites,
            "data": _cmd_data, "check-plugin": _cmd_check}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = bool(getattr(args, "debug", False)) or "--debug" in (argv if argv is not None else sys.argv)
    try:
        return COMMANDS[args.command](args)
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
