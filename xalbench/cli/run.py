"""``xalbench run``: plan, validate, then run a suite (resumable: rerun the same command to continue)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from xalbench.cli.common import data_root, device, positive_int, seeds_arg
from xalbench.commands import Command
from xalbench.errors import ConfigError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--suite", required=True, help="a registered suite name (`xalbench suites`) or a TOML file")
    p.add_argument("--datasets", nargs="+", metavar="NAME", help="only these datasets (comma or space separated)")
    p.add_argument("--strategies", nargs="+", metavar="NAME",
                   help="only these strategies; ones the suite lacks are paired with every loss it uses")
    p.add_argument("--losses", nargs="+", metavar="NAME", help="only these losses (added to every strategy if absent)")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--seeds", type=seeds_arg, help="comma-separated seeds, e.g. 0,1 (unique, ≥ 0)")
    group.add_argument("--n-seeds", type=_n_seeds, metavar="N|auto",
                       help="seeds 0..N-1 (N ≥ 1); auto: the fewest seeds (3-50) whose minimum detectable ΔAULC, "
                       "from the suite's calibration, is at most --target-mde on every planned question")
    p.add_argument("--target-mde", type=float, default=None, metavar="M",
                   help="with --n-seeds auto: the largest minimum detectable Δ allowed (default 0.03)")
    p.add_argument("--calibration", default=None, metavar="FILE",
                   help="a calibration JSON for --n-seeds auto and the dry run's power table (default: the one the "
                   "suite ships; docs/findings.md)")
    p.add_argument("--protocol", default=None, metavar="NAME",
                   help="run under this registered budget protocol as published (drops the suite's overrides)")
    p.add_argument("--out", default=None, metavar="DIR", help="results directory (default: results/<suite>)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                   help="auto = cuda when available (part of a cell's identity)")
    p.add_argument("--workers", type=positive_int("--workers", 0), default=0, metavar="N",
                   help="parallel cells; 0 = one per CPU core (results are identical for any N)")
    p.add_argument("--threads", type=positive_int("--threads"), default=1, metavar="N",
                   help="torch threads per cell (part of a cell's identity; default 1)")
    p.add_argument("--executor", default="local", metavar="NAME",
                   help="where cells run: local (default), dask, ray, submitit or another installed executor "
                   "(`xalbench plugins --kind executor`)")
    p.add_argument("--executor-option", action="append", default=[], metavar="KEY=VALUE", dest="executor_options",
                   help="an option of the executor (repeatable), e.g. scheduler=tcp://HOST:8786, n_workers=4, "
                   "partition=gpu, time=120, gpus_per_node=1")
    p.add_argument("--isolation", default="auto", choices=["auto", "confined", "process", "inline"],
                   help="auto (default): confined where the kernel offers Landlock, else process with a warning; "
                   "confined: the strategy's sandbox and the cell's process are confined by the kernel (files, "
                   "network, signals); process: the strategy runs in its own sandbox process; inline: in the cell's "
                   "process, for debugging/profiling (recorded in the results)")
    p.add_argument("--data-root", default=None, metavar="DIR", help="folder with real datasets (default: $XALBENCH_DATA)")
    p.add_argument("--dry-run", action="store_true",
                   help="print the plan (finished / resume / to run), what its seeds can detect per dataset and "
                   "question, and the estimated wall time, then exit")
    p.add_argument("--profile", action="store_true",
                   help="print where the time went (training, evaluation, strategy scoring, sandbox, I/O) per dataset")
    p.add_argument("--quiet", action="store_true", help="no progress and no leaderboard")


TARGET_MDE = 0.03


def _n_seeds(text: str) -> int | str:
    return "auto" if text.strip().lower() == "auto" else positive_int("--n-seeds")(text)


def _auto_seeds(args: argparse.Namespace, registry: Any, calibration: Any, probe: Any) -> list[int]:
    """``--n-seeds auto``: from a plan of seed 0 (no tuning), which questions exist where; then choose n."""
    from xalbench.power import choose_n_seeds, power_rows
    from xalbench.report.cells import RunCells
    from xalbench.report.findings import registered_findings

    target = TARGET_MDE if args.target_mde is None else args.target_mde
    run = RunCells.from_plan(probe, registry, probe.suite.findings.delta)
    n, worst = choose_n_seeds(power_rows(run, registered_findings(registry), calibration), target)
    print(f"--n-seeds auto: {n} seeds — the largest minimum detectable Δ over the planned questions' primary "
          f"quantities is {worst.mde(n):.3f} ≤ {target:g} ({worst.what} on {worst.dataset}, {worst.label}; "
          f"{worst.mde(n - 1):.3f} at {n - 1} seeds)", file=sys.stderr)
    return list(range(n))


def _dry_run(plan: Any, registry: Any, statuses: dict[str, Any], counts: dict[str, int], na: int, workers: int,
             calibration: Any) -> int:
    """Print the plan, what its seeds can detect per dataset and question, and the estimated wall time."""
    from xalbench.cli.estimate import estimate_seconds, power_lines
    from xalbench.power import power_rows
    from xalbench.progress import format_seconds
    from xalbench.report.cells import RunCells
    from xalbench.report.findings import registered_findings

    todo = [c for c in plan.cells if statuses[c.key].status != "finished"]
    seconds, basis = estimate_seconds(plan, todo, workers, calibration)
    print(f"suite {plan.suite.name}: {len(plan.cells)} cells — {_summary_line(counts, na)}")
    for c in plan.cells:
        tag = "n/a" if c.skip_reason and statuses[c.key].status != "finished" else statuses[c.key].status
        print(f"  {tag:8s} {c.key}" + (f"  ({c.skip_reason})" if tag == "n/a" else ""))
    run = RunCells.from_plan(plan, registry, plan.suite.findings.delta)
    rows = power_rows(run, registered_findings(registry), calibration)
    print("\n".join(power_lines(rows, len(plan.suite.seeds), calibration)))
    est = format_seconds(seconds) if seconds is not None else "unknown"
    print(f"estimated time with {workers} worker(s), wall clock: {est} ({basis})")
    return 0


def _summary_line(counts: dict[str, int], na: int) -> str:
    return (f"{counts.get('finished', 0)} finished, {counts.get('resume', 0)} resumed, {counts.get('run', 0)} to run"
            + (f" ({na} of them not applicable: n/a)" if na else ""))


def handle(args: argparse.Namespace) -> int:
    from xalbench.api import load_run_suite, plan_run, results_dir
    from xalbench.execution.common import parse_cli_options
    from xalbench.harness.runtime import Runtime
    from xalbench.plugins import PluginSelection
    from xalbench.runner import classify, run_plan

    runtime = Runtime.from_selection(PluginSelection.from_env())
    registry = runtime.registry
    suite = load_run_suite(registry, args.suite, args.protocol)
    executor = registry.create("executor", args.executor,
                               parse_cli_options(registry.get("executor", args.executor), args.executor_options))
    workers = args.workers or max(1, (os.cpu_count() or 1) // args.threads)
    out = results_dir(suite, args.out)
    if os.path.exists(out) and not os.path.isdir(out):
        raise ConfigError(f"--out {out} exists and is not a directory; choose another results directory")
    if args.target_mde is not None and args.n_seeds != "auto":
        raise ConfigError("--target-mde is used with --n-seeds auto; add --n-seeds auto, or drop --target-mde")
    calibration = None
    if args.dry_run or args.n_seeds == "auto" or args.calibration:
        from xalbench.power import find_calibration

        calibration = find_calibration(suite, args.calibration, registry)
    auto = args.n_seeds == "auto"
    seeds = args.seeds if args.seeds is not None or auto else (list(range(args.n_seeds)) if args.n_seeds else None)

    def choose_seeds(probe: Any) -> list[int]:
        return _auto_seeds(args, registry, calibration, probe)

    plan = plan_run(runtime, suite, out_dir=out, datasets=args.datasets, strategies=args.strategies,
                    losses=args.losses, seeds=seeds, device=device(args.device), threads=args.threads, workers=workers,
                    data_root=data_root(args.data_root), isolation=args.isolation, tune=not args.dry_run,
                    choose_seeds=choose_seeds if auto else None)
    for name, why in plan.skipped_datasets:
        print(f"skipped dataset {name}: {why}", file=sys.stderr)
    statuses = classify(plan)
    for status in statuses.values():
        for note in status.notes:
            print(f"xalbench: {note}", file=sys.stderr)
    counts: dict[str, int] = {}
    for s in statuses.values():
        counts[s.status] = counts.get(s.status, 0) + 1
    na = sum(1 for c in plan.cells if c.skip_reason and statuses[c.key].status != "finished")
    if args.dry_run:
        return _dry_run(plan, registry, statuses, counts, na, workers, calibration)
    if not args.quiet:
        print(f"{plan.suite.name}: {len(plan.cells)} cells — {_summary_line(counts, na)}", file=sys.stderr)
    results = run_plan(plan, workers=workers, quiet=args.quiet, executor=executor, statuses=statuses)
    failed = [r for r in results if r["status"] == "failed"]
    if not args.quiet and results:
        from xalbench.report.render import render_report

        print(render_report(out))
    if args.profile:
        from xalbench.report.profile import profile_markdown

        print(profile_markdown(results))
    for r in failed:
        err = r.get("error", {})
        print(f"FAILED {r['cell']['key']}: {err.get('type')}: {err.get('message')}", file=sys.stderr)
    print(f"results: {os.path.abspath(out)} ({len(results)} cells, {len(failed)} failed)", file=sys.stderr)
    return 1 if failed else 0


COMMAND = Command("run", "run a suite (resumable: rerun the same command to continue)", add_arguments, handle,
                  summary="Plan and run a suite. Everything is validated before the first cell; finished cells are "
                          "kept, unfinished ones resume, new ones run.")
