"""The dry run's estimates: the run time of the cells still to run, and what the chosen seeds can detect
(:mod:`xalbench.power`: per dataset, from this results directory's finished cells of the suite when it
has some, else from the suite's calibration)."""

from __future__ import annotations

import math
from typing import Any

from xalbench.power import BASELINE_ROW, STARTUP_SECONDS, Calibration, PowerRow, wall_seconds

__all__ = ["estimate_seconds", "measured_seconds", "power_lines"]


def measured_seconds(plan: Any, out: str) -> dict[str, list[float]]:
    """Per dataset: the recorded cell-seconds of this suite's finished cells in ``out``."""
    from xalbench.report.power import cell_seconds
    from xalbench.results import iter_results

    per_dataset: dict[str, list[float]] = {}
    try:
        for r in iter_results(out):
            if r.get("status") == "ok" and r["cell"].get("suite") == plan.suite.name:
                per_dataset.setdefault(r["cell"]["dataset"], []).append(cell_seconds(r))
    except OSError:
        pass
    return per_dataset


def estimate_seconds(plan: Any, todo: list[Any], workers: int, calibration: Calibration | None = None
                     ) -> tuple[float | None, str]:
    """(seconds or None, what the estimate is based on) for the cells of ``todo`` (n/a cells cost nothing)."""
    todo = [c for c in todo if not getattr(c, "skip_reason", None)]
    if not todo:
        return 0.0, "nothing to run"
    out = todo[0].out_dir
    measured = measured_seconds(plan, out)
    cells: dict[str, int] = {}
    for c in todo:
        cells[c.dataset.display] = cells.get(c.dataset.display, 0) + 1
    seconds: dict[str, float | None] = {}
    sources = set()
    for ds in cells:
        if measured.get(ds):
            seconds[ds] = sum(measured[ds]) / len(measured[ds])
            sources.add(f"{sum(len(v) for v in measured.values())} finished cell(s) of this suite in {out}")
        elif calibration is not None and ds in calibration.datasets and calibration.datasets[ds].cell_seconds:
            seconds[ds] = calibration.datasets[ds].cell_seconds
            sources.add(f"the calibration ({calibration.source})")
        else:
            seconds[ds] = None
    startup = calibration.startup_seconds if calibration is not None else STARTUP_SECONDS
    overhead = calibration.overhead_seconds_per_cell if calibration is not None else 0.0
    seconds = {ds: None if v is None else v + overhead for ds, v in seconds.items()}
    total, unknown = wall_seconds(cells, seconds, workers, startup)
    if total is None:
        return None, (f"no finished cell of suite {plan.suite.name!r} in {out} and no calibration for "
                      + ", ".join(unknown))
    n = sum(cells.values())
    per_cell = f" + {overhead:.1f} s per cell not in its rounds" if overhead else ""
    return total, (f"{n} cells × (mean cell-seconds per dataset from {' and '.join(sorted(sources))}{per_cell}), "
                   f"/ {max(1, min(workers, n))} worker(s), + {startup:.0f} s start-up")


def power_lines(rows: list[PowerRow], n_seeds: int, calibration: Calibration | None) -> list[str]:
    """The dry run's power table at ``n_seeds`` (``xalbench.power``)."""
    if calibration is None:
        lines = [f"power at {n_seeds} seed(s): no calibration for this suite (a <suite>.calibration.json beside "
                 "its TOML, or --calibration FILE), so no minimum detectable Δ; the questions asked:"]
    else:
        lines = [f"power at {n_seeds} seed(s): minimum detectable Δ (paired t-test, α 0.05, power 0.8; "
                 f"MDE = (t_0.975,n−1 + t_0.8,n−1)·SD/√n) from the between-seed SD of {calibration.source}"]
    lines.append(f"{'dataset':28s} {'question':26s} {'quantity':22s} {'SD':>7s} {'MDE':>7s}")
    for r in rows:
        what = r.what + (" *" if r.primary else "")
        sd = "—" if math.isnan(r.sd) else f"{r.sd:.3f}"
        mde = "no calibration" if math.isnan(r.sd) else f"{r.mde(n_seeds):.3f}"
        lines.append(f"{r.dataset:28s} {what:26s} {r.label:22s} {sd:>7s} {mde:>7s}")
    if any(r.what == BASELINE_ROW for r in rows):
        lines.append(f"(* a question's primary quantity: what --target-mde is checked against; "
                     f"'{BASELINE_ROW}': the median over methods)")
    return lines
