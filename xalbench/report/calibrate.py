"""Write a suite's calibration (``docs/suites.md``, "Calibration files") from a finished run.

``python -m xalbench.report.calibrate RESULTS_DIR -o xalbench/suites/medical.calibration.json
--wall-seconds 1700 --workers 2`` summarises every finished cell of the run per dataset with
:func:`xalbench.report.power.calibration_from_results` — the seed count, the mean cell-seconds, and the
between-seed SD of the paired ΔAULC of each registered question's comparisons (the pairs ``xalbench
report --findings`` compares; each paper plugin registers its own) and of every method vs the
baseline — and adds where it came from: the suite's hash, the xalbench version and source hash, the
seeds, and (with ``--wall-seconds`` and ``--workers``) the run's wall time and the per-cell overhead
beyond the recorded cell-seconds.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["FORMAT", "build_calibration", "main"]

FORMAT = "xalbench-calibration/1"


def build_calibration(results: Sequence[Mapping[str, Any]], *, suite: str, registry: Any, source: str = "",
                      wall_seconds: float | None = None, workers: int | None = None) -> dict[str, Any]:
    """The calibration dict of ``suite`` from a run's cell results (module docstring)."""
    from xalbench.report.power import calibration_from_results, cell_seconds

    ok = [r for r in results if r.get("status") == "ok"]
    hashes = sorted({str(r.get("suite_hash", "")) for r in ok})
    env = ok[0].get("provenance", {}).get("environment", {}) if ok else {}
    out: dict[str, Any] = {
        "format": FORMAT, "suite_hash": hashes[0] if len(hashes) == 1 else hashes,
        "xalbench_version": env.get("plugin_distributions", {}).get("xalbench"),
        "xalbench_source_sha256": env.get("xalbench_source_sha256"),
        "seeds": sorted({int(r["cell"]["seed"]) for r in ok}), "cells": len(ok),
    }
    if wall_seconds is not None and workers:
        total = sum(cell_seconds(r) for r in ok)
        out.update(wall_seconds=round(wall_seconds, 1), workers=workers,
                   overhead_seconds_per_cell=round(max(0.0, wall_seconds * workers - total) / max(1, len(ok)), 3))
    data = calibration_from_results(ok, registry, suite, source)
    return {"suite": data.pop("suite"), "source": data.pop("source"), **out, **data}


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m xalbench.report.calibrate", description=__doc__.split("\n\n")[0])
    p.add_argument("results", help="a results directory written by `xalbench run`")
    p.add_argument("-o", "--output", help="write the JSON here (default: stdout)")
    p.add_argument("--suite", help="the suite's name (default: the cells' suite)")
    p.add_argument("--source", default="", help="how the run was made, e.g. the command line")
    p.add_argument("--wall-seconds", type=float, help="the run's measured wall time")
    p.add_argument("--workers", type=int, help="the run's --workers")
    args = p.parse_args(argv)
    from xalbench.plugins import PluginSelection
    from xalbench.results import iter_results

    results = list(iter_results(args.results))
    if not results:
        print(f"calibrate: no finished cells under {args.results}", file=sys.stderr)
        return 2
    suite = args.suite or str(results[0]["cell"]["suite"])
    data = build_calibration(results, suite=suite, registry=PluginSelection.from_env().registry(),
                             source=args.source, wall_seconds=args.wall_seconds, workers=args.workers)
    text = json.dumps(data, indent=1) + "\n"
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
