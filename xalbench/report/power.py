"""Power from a run's own spread: the report's per-dataset power notes, and the calibration a suite ships
(``<suite>.calibration.json``: the between-seed SD of each question's paired Δ and of every method vs
the leaderboard's baseline, and the mean cell-seconds, per dataset) computed from a finished run."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from xalbench.report.cells import Cell, RunCells
from xalbench.report.paired import DEFAULT_DELTA, MIN_SEEDS, minimum_detectable

__all__ = ["ROUND_TIMINGS", "baseline_spread", "calibration_from_results", "cell_seconds", "power_notes"]


def _baseline(cells: Sequence[Cell]) -> str | None:
    from xalbench.report.tables import baseline_method

    return baseline_method(sorted({c.method for c in cells}), {c.method: c.strategy for c in cells},
                           {c.method: c.loss for c in cells})


def baseline_spread(run: RunCells, dataset: str, key: str) -> tuple[str | None, list[float], int]:
    """(baseline method, the between-seed SD of every other method's paired Δ``key`` against it, the
    baseline's seed count) on ``dataset``."""
    mine = [c for c in run.cells if c.dataset == dataset]
    baseline = _baseline(mine)
    base = run.seeds(dataset, baseline) if baseline else {}
    sds = []
    for method in sorted({c.method for c in mine} - {baseline}):
        seeds = run.seeds(dataset, method)
        diffs = [seeds[s].value(key) - base[s].value(key) for s in set(seeds) & set(base)]
        diffs = [x for x in diffs if not math.isnan(x)]
        if len(diffs) >= 2:
            sds.append(float(np.std(diffs, ddof=1)))
    return baseline, sds, len(base)


def power_notes(run: RunCells, key: str) -> list[str]:
    """Per dataset: the between-seed spread of the paired differences (every method vs the leaderboard's
    baseline, median SD) and the minimum detectable difference at this run's seed count, 3 and 5 seeds."""
    lines = []
    for ds in run.datasets():
        baseline, sds, n_seeds = baseline_spread(run, ds, key)
        if not baseline or not n_seeds:
            continue
        if not sds:
            lines.append(f"power ({ds}): needs ≥ 2 paired seeds to estimate the between-seed spread of Δ{key}")
            continue
        sd = float(np.median(sds))
        here = (f"with this run's {n_seeds} seeds: "
                + (f"{minimum_detectable(sd, n_seeds):.3f}" if n_seeds >= MIN_SEEDS else "none (p-values need ≥ 3)"))
        others = ", ".join(f"with {n} seeds: {minimum_detectable(sd, n):.3f}" for n in (3, 5, 10) if n != n_seeds)
        lines.append(f"power ({ds}): between-seed SD of paired Δ{key} vs {baseline} (median over methods) {sd:.3f}; "
                     f"minimum detectable Δ{key} (paired t-test, α 0.05, power 0.8) {here}; {others}")
    return lines


#: the round timings that add up to a round's time (``eval_maps_s`` is part of ``eval_s``, ``strategy_s``
#: part of ``query_s``: counting them too would count those seconds twice)
ROUND_TIMINGS = ("train_s", "eval_s", "query_s", "io_s")


def cell_seconds(result: Mapping[str, Any]) -> float:
    """A cell's recorded seconds: the sum of its rounds' timings (training, evaluation, query, I/O)."""
    return float(sum(v for r in result.get("rounds", []) for k, v in r.get("timings", {}).items()
                     if k in ROUND_TIMINGS and isinstance(v, (int, float)) and not isinstance(v, bool)))


def calibration_from_results(results: Sequence[Mapping[str, Any]], registry: Any, suite: str,
                             source: str = "") -> dict[str, Any]:
    """The calibration of ``suite`` from a finished run (the format ``docs/findings.md`` describes): per
    dataset, the seed count, the mean cell-seconds, and the between-seed SD of the paired Δ — for each
    registered question (the median over its comparisons, per quantity it compares) and for every
    method vs the baseline (the median over methods, per AULC metric); ``comparisons`` lists each of a
    question's comparisons with its seed count, mean and SD. A comparison whose per-seed differences are
    all exactly zero (two methods equal by construction there) has no spread to plan with and is left out."""
    from xalbench.report.findings import registered_findings

    run = RunCells.from_results(results, registry, DEFAULT_DELTA)
    findings = registered_findings(registry)
    out: dict[str, Any] = {"suite": suite, "source": source, "datasets": {}}
    for ds in run.datasets():
        ok = [r for r in results if r.get("status") == "ok" and r["cell"]["dataset"] == ds]
        entry: dict[str, Any] = {"n_seeds": len({r["cell"]["seed"] for r in ok}), "cells": len(ok),
                                 "cell_seconds": round(float(np.mean([cell_seconds(r) for r in ok])), 3),
                                 "questions": {}, "vs_baseline": {}, "comparisons": []}
        for f in findings:
            pairs = [p for p in f.pairs(run) if p.dataset == ds]
            sds: dict[str, float] = {}
            for q in f.quantities:
                done = [c for p in pairs if not math.isnan((c := f.compare(run, p, q)).sd) and c.sd > 0]
                entry["comparisons"] += [{"question": f.name, "a": c.a, "b": c.b, "quantity": q, "n": c.n,
                                          "mean": round(c.mean, 5), "sd": round(c.sd, 5)} for c in done]
                if done:
                    sds[q] = round(float(np.median([c.sd for c in done])), 5)
            if sds:
                entry["questions"][f.name] = sds
        for name, m in sorted(run.metrics.items()):
            if not m.aulc:
                continue
            _, spread, _ = baseline_spread(run, ds, m.key)
            spread = [x for x in spread if x > 0]
            if spread:
                entry["vs_baseline"][name] = round(float(np.median(spread)), 5)
        out["datasets"][ds] = entry
    return out
