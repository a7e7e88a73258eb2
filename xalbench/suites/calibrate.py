"""Write a suite's calibration (``docs/suites.md``, "Calibration files") from a finished run.

``python -m xalbench.suites.calibrate RESULTS_DIR -o xalbench/suites/medical.calibration.json
--wall-seconds 1700 --workers 2`` summarises every finished cell of the run per dataset: the seed
count, the mean cell-seconds (the recorded round timings: training, evaluation, query, I/O), and the
between-seed standard deviation of the **paired** ΔAULC (per seed, method A minus method B; SD with
``ddof = 1``) of

* each paper question's comparisons (the pairs ``xalbench report --findings`` compares): SAL RQ1 —
  every explanation-loss method vs the same strategy with ``ce``; EG-AL — ``egal`` vs ``random`` with
  the same loss (and ``egal+ce`` vs ``entropy+ce``, listed as ``egal-vs-entropy``); AEIG — ``aeig+ce`` vs
  ``entropy+ce`` and ``random+ce`` on the minority-class share of the acquired samples (imbalanced
  pools only); DUE — ``due``/``due-paper`` vs ``due-baseline-plus`` with the same strategy; GESTALT —
  each variant vs ``mcd-variance+ce`` (multi-label data only). ``questions`` holds the median SD over a
  question's comparisons per quantity; ``comparisons`` lists every one with its mean and SD;
* every method vs ``random+ce`` (``vs_baseline``: the median SD over methods, per AULC metric).

A comparison whose per-seed differences are all exactly zero (two methods equal by construction on
that dataset, such as DUE's losses on 2D data) is left out: it has no spread to plan with.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["FORMAT", "build_calibration", "main"]

FORMAT = "xalbench-calibration/1"
SHARE = "minority share"
BASELINE = ("random", "ce")
GESTALT = ("gestalt-node", "gestalt-edge", "gestalt-weighted-node")
UNCERTAINTY = ("mcd-variance", "mcd-entropy")
DUE_LOSSES = ("due", "due-paper")
TIMINGS = ("train_s", "eval_s", "query_s", "io_s")  # eval_maps_s and strategy_s are parts of eval_s / query_s
#: summary keys → metric names for the built-in and plugin metrics the main job reports
DEFAULT_NAMES = {"acc": "accuracy", "bacc": "balanced_accuracy", "auc": "auc", "dice": "dice", "sdice": "soft_dice",
                 "iou": "iou", "point": "pointing", "lrap": "lrap", "rloss": "ranking_loss", "del_auc": "deletion",
                 "ins_auc": "insertion", "road": "road"}
QUESTION_QUANTITIES = {"sal-rq1": ("dice", "accuracy", "deletion", "insertion"), "egal": ("accuracy", "dice"),
                       "egal-vs-entropy": ("accuracy",), "aeig": (SHARE, "accuracy"), "due": ("iou", "dice", "accuracy"),
                       "gestalt": ("auc", "accuracy")}


def cell_seconds(result: Mapping[str, Any]) -> float:
    """A cell's recorded seconds: training + evaluation + query + checkpoint I/O over its rounds."""
    return float(sum(float(r.get("timings", {}).get(k, 0.0)) for r in result.get("rounds", []) for k in TIMINGS))


class _Cells:
    """The run's finished cells by (dataset, method) and seed, with each method's components."""

    def __init__(self, results: Iterable[Mapping[str, Any]]) -> None:
        self.by: dict[tuple[str, str], dict[int, Mapping[str, Any]]] = {}
        self.info: dict[tuple[str, str], Mapping[str, Any]] = {}
        for r in results:
            if r.get("status") != "ok":
                continue
            c = r["cell"]
            self.by.setdefault((c["dataset"], c["method"]), {})[int(c["seed"])] = r
            self.info[(c["dataset"], c["method"])] = c

    def datasets(self) -> list[str]:
        return sorted({ds for ds, _ in self.by})

    def methods(self, ds: str, **where: Any) -> list[str]:
        """Methods on ``ds`` whose cell fields equal ``where`` (``plain``: standard trainer, no mask source)."""
        plain = where.pop("plain", False)
        out = []
        for (d, m), c in self.info.items():
            if d != ds or any(c.get(k) != v for k, v in where.items()):
                continue
            if plain and (c.get("trainer") != "standard" or c.get("mask_source") != "none"):
                continue
            out.append(m)
        return sorted(out)

    def one(self, ds: str, strategy: str, loss: str = "ce") -> str | None:
        names = [m for m in self.methods(ds, strategy=strategy, loss=loss, plain=True)
                 if not self.info[(ds, m)].get("strategy_options") and not self.info[(ds, m)].get("loss_options")]
        return names[0] if names else None

    def values(self, ds: str, method: str, key: str) -> dict[int, float]:
        out = {}
        for seed, r in self.by.get((ds, method), {}).items():
            v = r.get("summary", {}).get(key)
            if v is not None and not (isinstance(v, float) and math.isnan(v)):
                out[seed] = float(v)
        return out

    def multilabel(self, ds: str) -> bool:
        return any("lrap" in (r.get("rounds") or [{}])[0].get("metrics", {})
                   for (d, _), seeds in self.by.items() if d == ds for r in seeds.values())


def _acquired(result: Mapping[str, Any]) -> np.ndarray | None:
    hists = [np.asarray(r.get("acquired_class_histogram") or [], dtype=float) for r in result.get("rounds", [])]
    hists = [h for h in hists if h.size]
    return np.sum(hists, axis=0) if hists else None


def _minority(cells: _Cells, ds: str) -> np.ndarray | None:
    """Minority classes of an imbalanced pool, estimated from random+ce's acquisitions (as AEIG Fig. 4)."""
    rnd = cells.one(ds, "random")
    if rnd is None or cells.multilabel(ds):
        return None
    hists = [h for r in cells.by[(ds, rnd)].values() if (h := _acquired(r)) is not None]
    if not hists:
        return None
    pool = np.sum(hists, axis=0)
    share = pool / pool.sum()
    if share.max() < 2 * share.min():
        return None
    return np.flatnonzero(share < 1.0 / share.size)


def _shares(cells: _Cells, ds: str, method: str, minority: np.ndarray) -> dict[int, float]:
    out = {}
    for seed, r in cells.by.get((ds, method), {}).items():
        h = _acquired(r)
        if h is not None and h.sum() > 0:
            out[seed] = float(h[minority].sum() / h.sum())
    return out


def _pairs(cells: _Cells, ds: str) -> list[tuple[str, str, str]]:
    """(question, method A, method B) of every question comparison on ``ds``."""
    out: list[tuple[str, str, str]] = []
    for a in sorted({m for (d, m) in cells.info if d == ds}):
        c = cells.info[(ds, a)]
        if c["loss"] != "ce" and not math.isnan(_mean(cells.values(ds, a, "aulc_dice"))):
            b = [m for m in cells.methods(ds, strategy=c["strategy"], loss="ce", plain=True)
                 if cells.info[(ds, m)].get("strategy_options") == c.get("strategy_options")]
            if b:
                out.append(("sal-rq1", a, b[0]))
        if c["strategy"] == "egal":
            b = [m for m in cells.methods(ds, strategy="random", loss=c["loss"], plain=True)
                 if cells.info[(ds, m)].get("loss_options") == c.get("loss_options")]
            if b:
                out.append(("egal", a, b[0]))
    egal, ent = cells.one(ds, "egal"), cells.one(ds, "entropy")
    if egal and ent:
        out.append(("egal-vs-entropy", egal, ent))
    aeig = cells.one(ds, "aeig")
    if aeig and _minority(cells, ds) is not None:
        out += [("aeig", aeig, b) for s in ("entropy", "random") if (b := cells.one(ds, s))]
    for loss in DUE_LOSSES:
        for a in cells.methods(ds, loss=loss, plain=True):
            b = cells.one(ds, cells.info[(ds, a)]["strategy"], "due-baseline-plus")
            if b:
                out.append(("due", a, b))
    if cells.multilabel(ds):
        unc = next((m for s in UNCERTAINTY if (m := cells.one(ds, s))), None)
        if unc:
            out += [("gestalt", g, unc) for s in GESTALT if (g := cells.one(ds, s))]
    return out


def _mean(values: Mapping[int, float]) -> float:
    return float(np.mean(list(values.values()))) if values else math.nan


def _paired(a: Mapping[int, float], b: Mapping[int, float]) -> list[float]:
    return [a[s] - b[s] for s in sorted(set(a) & set(b))]


def _names(registry: Any = None) -> dict[str, str]:
    """Summary key (``aulc_<key>``) → metric name, from the registry when given."""
    names = {f"aulc_{k}": v for k, v in DEFAULT_NAMES.items()}
    if registry is not None:
        for name in registry.names("metric"):
            cls = registry.get("metric", name)
            if getattr(cls, "aulc", True):
                names[f"aulc_{cls.summary_key()}"] = name
    return names


def build_calibration(results: Sequence[Mapping[str, Any]], *, suite: str, source: str = "",
                      wall_seconds: float | None = None, workers: int | None = None,
                      registry: Any = None) -> dict[str, Any]:
    """The calibration dict of ``suite`` from a run's cell results (module docstring)."""
    ok = [r for r in results if r.get("status") == "ok"]
    cells = _Cells(ok)
    names = _names(registry)
    keys = {v: k for k, v in names.items()}
    hashes = sorted({str(r.get("suite_hash", "")) for r in ok})
    env = (ok[0].get("provenance", {}).get("environment", {}) if ok else {})
    out: dict[str, Any] = {
        "format": FORMAT, "suite": suite, "suite_hash": hashes[0] if len(hashes) == 1 else hashes,
        "xalbench_version": env.get("plugin_distributions", {}).get("xalbench"),
        "xalbench_source_sha256": env.get("xalbench_source_sha256"), "source": source,
        "seeds": sorted({int(r["cell"]["seed"]) for r in ok}), "cells": len(ok),
    }
    total = sum(cell_seconds(r) for r in ok)
    if wall_seconds is not None and workers:
        out.update(wall_seconds=round(wall_seconds, 1), workers=workers,
                   overhead_seconds_per_cell=round(max(0.0, wall_seconds * workers - total) / max(1, len(ok)), 3))
    out["datasets"] = {}
    for ds in cells.datasets():
        mine = [r for r in ok if r["cell"]["dataset"] == ds]
        comparisons = []
        for question, a, b in _pairs(cells, ds):
            for q in QUESTION_QUANTITIES[question]:
                if q == SHARE:
                    minority = _minority(cells, ds)
                    diffs = _paired(_shares(cells, ds, a, minority), _shares(cells, ds, b, minority))
                elif q in keys:
                    diffs = _paired(cells.values(ds, a, keys[q]), cells.values(ds, b, keys[q]))
                else:
                    continue
                if len(diffs) < 2 or all(d == 0.0 for d in diffs):
                    continue
                comparisons.append({"question": question, "a": a, "b": b, "quantity": q, "n": len(diffs),
                                    "mean": round(statistics.fmean(diffs), 5), "sd": round(statistics.stdev(diffs), 5)})
        questions: dict[str, dict[str, float]] = {}
        for c in comparisons:
            questions.setdefault(c["question"], {}).setdefault(c["quantity"], [])  # type: ignore[arg-type]
            questions[c["question"]][c["quantity"]].append(c["sd"])  # type: ignore[attr-defined]
        vs_baseline: dict[str, float] = {}
        base = cells.one(ds, *BASELINE)
        if base is not None:
            for key, name in sorted(names.items()):
                spread = []
                for (d, m) in cells.by:
                    if d != ds or m == base:
                        continue
                    diffs = _paired(cells.values(ds, m, key), cells.values(ds, base, key))
                    if len(diffs) >= 2 and any(x != 0.0 for x in diffs):
                        spread.append(statistics.stdev(diffs))
                if spread:
                    vs_baseline[name] = round(float(np.median(spread)), 5)
        out["datasets"][ds] = {
            "n_seeds": len({int(r["cell"]["seed"]) for r in mine}), "cells": len(mine),
            "cell_seconds": round(float(np.mean([cell_seconds(r) for r in mine])), 3),
            "questions": {q: {k: round(float(np.median(v)), 5) for k, v in qs.items()}  # type: ignore[arg-type]
                          for q, qs in questions.items()},
            "vs_baseline": vs_baseline, "comparisons": comparisons,
        }
    return out


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m xalbench.suites.calibrate", description=__doc__.split("\n\n")[0])
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
    data = build_calibration(results, suite=suite, source=args.source, wall_seconds=args.wall_seconds,
                             workers=args.workers, registry=PluginSelection.from_env().registry())
    text = json.dumps(data, indent=1, sort_keys=False) + "\n"
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
