"""``xalbench leaderboard {submit,check,verify,build,reference}`` (argparse; no torch until a command runs).

Each action builds the command's one :class:`~xalbench.harness.runtime.Runtime` (the registry of the
plugin selection in the environment, and the datasets it loads) and hands it down; ``verify`` takes the
maintainer secret out of the environment first, so no plugin is imported while it is there.
Exit codes: 0 accepted / verified / up to date; 1 rejected, flagged, or (``build --check``) out of
date; configuration errors raise :class:`xalbench.errors.ConfigError` (exit 2 through the CLI).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xalbench.commands import Command

if TYPE_CHECKING:
    from xalbench.harness.runtime import Runtime

__all__ = ["COMMAND", "add_arguments", "main"]

DEFAULT_BOARD = "leaderboard"


def _common(p: argparse.ArgumentParser, *, data_root: bool = True) -> None:
    p.add_argument("--board", default=DEFAULT_BOARD, help="the leaderboard folder (default: ./leaderboard)")
    p.add_argument("--reference", default=None,
                   help="reference file: supported suites, version pins, canary bands (default: BOARD/reference.json)")
    if data_root:
        p.add_argument("--data-root", default=None, help="folder with real datasets (to check their split hashes)")
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks on errors")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the leaderboard's actions to ``parser`` (the ``xalbench leaderboard`` sub-parser)."""
    sub = parser.add_subparsers(dest="lb_command", required=True, metavar="ACTION")

    p = sub.add_parser("submit", help="package a finished run directory as a submission")
    p.add_argument("run_dir", help="a finished `xalbench run` output directory")
    p.add_argument("--submitter", required=True, help="your slug (lower case, digits, '-'), e.g. a GitHub handle")
    p.add_argument("--plugin", default=None,
                   help="distribution whose methods to submit (default: the run's only plugin, else xalbench)")
    p.add_argument("--methods", default=None, help="only these methods (comma-separated display names)")
    p.add_argument("--wheel", default=None, help="the plugin wheel you published (its SHA-256 goes in the manifest)")
    p.add_argument("--source-url", default=None, help="https:// URL of the plugin's source")
    p.add_argument("--nondeterministic", action="store_true",
                   help="the plugin's queries are not bitwise repeatable (verify compares metrics within tolerance)")
    p.add_argument("--force", action="store_true", help="replace an existing submission folder")
    _common(p, data_root=False)
    p.set_defaults(lb_func=_submit)

    p = sub.add_parser("check", help="validate submission folders (every rejection names its reason)")
    p.add_argument("paths", nargs="+", help="submission folders (submissions/<submitter>/<plugin>-<version>)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    _common(p)
    p.set_defaults(lb_func=_check)

    p = sub.add_parser("verify", help="re-run a sample of cells and the methods on held-out data (maintainers)")
    p.add_argument("path", help="a submission folder")
    p.add_argument("--cells", type=int, default=2, help="cells to re-run (default 2)")
    p.add_argument("--secret-file", default=None,
                   help="file holding the maintainer secret (else $XALBENCH_LEADERBOARD_SECRET); never commit it")
    p.add_argument("--margin", type=float, default=0.10,
                   help="with fewer than 5 seeds: flag when the advantage over random+ce drops by more than this "
                   "on held-out data")
    p.add_argument("--alpha", type=float, default=0.01,
                   help="with 5 or more seeds: flag when a one-sided paired t-test of the drop has p below this "
                   "(and the mean drop exceeds --min-drop)")
    p.add_argument("--min-drop", type=float, default=0.02, help="with 5 or more seeds: the least mean drop flagged")
    p.add_argument("--allow-unconfined", action="store_true",
                   help="verify where the kernel cannot confine plugins (process isolation only; recorded)")
    p.add_argument("--timeout", type=float, default=None, help="seconds for each re-run process")
    p.add_argument("--workdir", default=None,
                   help="private folder for re-runs; held-out cells cached there are reused (default: a temp dir)")
    p.add_argument("--no-write", action="store_true", help="print the record; do not write it into BOARD")
    _common(p)
    p.set_defaults(lb_func=_verify)

    p = sub.add_parser("build", help="regenerate README.md, index.html and results.csv of the board")
    p.add_argument("--check", action="store_true", help="fail (exit 1) if a rebuild would change any file")
    _common(p)
    p.set_defaults(lb_func=_build)

    p = sub.add_parser("reference", help="set a suite's canary band from a run of random+ce (maintainers)")
    p.add_argument("run_dir", help="a run of the suite's random+ce on several seeds")
    p.add_argument("--width", type=float, default=3.0, help="band = mean ± max(--floor, width × sd / √n_suite_seeds)")
    p.add_argument("--floor", type=float, default=0.03, help="minimum half-width of the band")
    p.add_argument("--board-seeds", type=int, default=None, metavar="N",
                   help="every submission of the suite must run seeds 0..N-1 (default: keep the reference's, else "
                        "the suite's)")
    _common(p, data_root=False)
    p.set_defaults(lb_func=_reference)


def main(args: argparse.Namespace) -> int:
    """Run the chosen action; returns the exit code."""
    return int(args.lb_func(args))


def _runtime() -> Runtime:
    """The command's runtime: the registry of the plugins selected by the environment."""
    from xalbench.harness.runtime import Runtime
    from xalbench.plugins import PluginSelection

    return Runtime.from_selection(PluginSelection.from_env())


def _reference_of(args: argparse.Namespace) -> dict[str, Any]:
    from xalbench.errors import ConfigError
    from xalbench.leaderboard.check import load_reference

    path = Path(args.reference) if args.reference else Path(args.board) / "reference.json"
    try:
        return load_reference(path)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the leaderboard reference file: {exc}; pass --reference FILE") from None


def _submit(args: argparse.Namespace) -> int:
    from xalbench.leaderboard.check import check_submission
    from xalbench.leaderboard.submit import submit

    runtime = _runtime()
    root = submit(args.run_dir, runtime=runtime, submitter=args.submitter, out=Path(args.board) / "submissions",
                  plugin=args.plugin, methods=[m.strip() for m in args.methods.split(",")] if args.methods else None,
                  wheel=args.wheel, source_url=args.source_url, deterministic=not args.nondeterministic,
                  force=args.force)
    print(f"wrote {root}")
    reference = args.reference or Path(args.board) / "reference.json"
    if Path(reference).is_file():
        report = check_submission(root, reference=_reference_of(args), runtime=runtime)
        print("\n".join(report.lines()))
        return 0 if report.ok else 1
    return 0


def _check(args: argparse.Namespace) -> int:
    from xalbench.leaderboard.check import check_submission

    reference, runtime = _reference_of(args), _runtime()
    reports = [check_submission(p, reference=reference, runtime=runtime, data_root=args.data_root) for p in args.paths]
    if args.json:
        print(json.dumps([{"path": str(r.root), "ok": r.ok,
                           "rejections": [{"code": x.code, "message": x.message} for x in r.rejections]}
                          for r in reports], indent=1))
    else:
        for r in reports:
            print("\n".join(r.lines()))
    return 0 if all(r.ok for r in reports) else 1


def _verify(args: argparse.Namespace) -> int:
    from xalbench.leaderboard.verify import VerifySettings, read_secret, verify

    secret = read_secret(args.secret_file)  # first: the variable leaves this process's environment
    record = verify(args.path, reference=_reference_of(args), board=args.board, secret=secret, runtime=_runtime(),
                    settings=VerifySettings(cells=args.cells, margin=args.margin, alpha=args.alpha,
                                            min_drop=args.min_drop, timeout=args.timeout,
                                            allow_unconfined=args.allow_unconfined),
                    data_root=args.data_root, workdir=args.workdir, write=not args.no_write)
    print(f"{record['submission']}: {record['status']}")
    for row in record["rerun"]:
        print(f"  re-run {row['dataset']}/{row['method']}/seed {row['seed']}: "
              f"{'match' if row['match'] else 'MISMATCH'} ({row['detail']})")
    key = record["settings"]["primary"]

    def show(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.3f}"

    for dataset, methods in record["held_out"].items():
        for method, entry in methods.items():
            print(f"  held-out {dataset}/{method}: AULC_{key} submitted {show(entry['submitted'].get(key))}, "
                  f"held-out {show(entry['held_out'].get(key))}")
    for reason in record["reasons"]:
        print(f"  flagged: {reason}")
    return 0 if record["status"] == "verified" else 1


def _build(args: argparse.Namespace) -> int:
    from xalbench.leaderboard.build import BuildError, build

    try:
        changed = build(args.board, reference=_reference_of(args), runtime=_runtime(), check=args.check,
                        data_root=args.data_root)
    except BuildError as exc:
        print(f"xalbench leaderboard build: {exc}", file=sys.stderr)
        return 1
    if args.check:
        if changed:
            print(f"out of date: {', '.join(changed)} (run `xalbench leaderboard build`)", file=sys.stderr)
            return 1
        print("up to date")
        return 0
    print(f"wrote {', '.join(changed)}" if changed else "unchanged")
    return 0


def _reference(args: argparse.Namespace) -> int:
    from xalbench.leaderboard.reference import canary_bands

    path = Path(args.reference) if args.reference else Path(args.board) / "reference.json"
    suite, bands = canary_bands(args.run_dir, path, runtime=_runtime(), width=args.width, floor=args.floor,
                                 board_seeds=args.board_seeds)
    for dataset, band in bands.items():
        print(f"{suite} · {dataset}: canary AULC band {band}")
    print(f"updated {path}")
    return 0


#: ``xalbench leaderboard ACTION``, registered with xalbench's other commands (:mod:`xalbench.cli.plugin`)
COMMAND = Command("leaderboard", "public leaderboard: submit a run, check or verify a submission, build the page",
                  add_arguments, main)
