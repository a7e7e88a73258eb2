"""``xalbench report``: the leaderboard of a results directory in any registered format."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from xalbench.commands import Command


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("dir", help="a results directory written by `xalbench run`")
    p.add_argument("--format", default="md", metavar="FMT",
                   help="md (default), csv, json, html or any installed report format "
                   "(`xalbench plugins --kind report_format`)")
    p.add_argument("--plots", default=None, metavar="DIR",
                   help="also write PNG learning curves and accuracy-vs-explanation planes here")
    p.add_argument("--test", default="ttest", choices=["ttest", "wilcoxon"],
                   help="paired test over seeds (default: t-test)")
    p.add_argument("--allow-mixed", action="store_true",
                   help="rank cells of one (dataset, method) run under different configurations (adds a column)")
    p.add_argument("--findings", action="store_true",
                   help="answer the registered papers' questions (SAL, EG-AL, AEIG, DUE, GESTALT, ...) from the run's "
                   "cells, each with its statistic and a verdict (always included by formats that want them, as html)")
    p.add_argument("--delta", type=_delta, default=None, metavar="D",
                   help="smallest effect of interest for the findings' verdicts: an interval of Δ below D (and not "
                   "above 0) is 'not reproduced' (default: the suite's [findings] delta, else 0.02)")
    p.add_argument("--output", "-o", default=None, metavar="FILE", help="write the report here instead of stdout")


def _delta(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--delta takes a number in [0, 1), like 0.02, not {text!r}") from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"--delta must be in [0, 1), got {value}")
    return value


def handle(args: argparse.Namespace) -> int:
    from xalbench.plugins import PluginSelection
    from xalbench.report.render import build_report, render

    registry = PluginSelection.from_env().registry()
    fmt = registry.get("report_format", args.format)
    report = build_report(args.dir, test=args.test, allow_mixed=args.allow_mixed, plots_dir=args.plots,
                          embed_plots=fmt.embeds_plots, findings=args.findings or fmt.wants_findings, delta=args.delta)
    text = render(report, args.format, registry)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        print(text)
    for path in report.plot_paths:
        print(f"wrote {path}", file=sys.stderr)
    for path in report.damaged:
        print(f"xalbench: result file skipped: {report.damaged_reasons.get(path) or path}", file=sys.stderr)
    return 1 if report.damaged else 0


COMMAND = Command("report", "leaderboard (and plots, findings) from a results directory", add_arguments, handle,
                  summary="Rank the methods of a results directory: AULC of every registered metric, mean ± 95 %% "
                          "interval over seeds, Δ vs random+ce, the paired test.")
