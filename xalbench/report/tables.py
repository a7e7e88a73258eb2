"""Leaderboard statistics from result files only (pandas + scipy).

Per (dataset, method) and for **every** AULC the cells carry (``aulc_<key>``, one per
registered metric with ``aulc = True``), the same statistics:

* mean and 95 % interval over seeds (Student t on the seeds);
* Δ vs the baseline ``random + ce`` (else any ``random`` method): mean of the paired per-seed
  differences with its 95 % t interval — pairs are matched by seed, because the harness gives
  every method of a seed the same initial set and weights;
* the paired test of that difference (paired t-test, or Wilcoxon signed-rank on request),
  only with ≥ 3 paired seeds (``n/a (2 seeds)`` otherwise), Holm-corrected across the methods
  of a dataset;
* a rank by the primary metric (AULC accuracy) shown with its range: methods whose 95 %
  intervals overlap cannot be ordered, so the range spans every rank they could take.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["MIN_SEEDS_FOR_TEST", "baseline_method", "cells_frame", "curves_frame", "failures", "fmt_pm",
           "holm", "leaderboard", "mean_ci", "metric_keys", "paired_pvalue", "rank_ranges"]

MIN_SEEDS_FOR_TEST = 3
PRIMARY = "acc"


def _num(v: Any) -> float:
    return float("nan") if v is None or isinstance(v, bool) else float(v)


def metric_keys(results: Iterable[dict[str, Any]]) -> list[str]:
    """Every ``<key>`` that has an ``aulc_<key>`` in some finished cell's summary (accuracy first)."""
    keys: set[str] = set()
    for r in results:
        keys.update(k[5:] for k in r.get("summary", {}) if k.startswith("aulc_"))
    return sorted(keys, key=lambda k: (k != PRIMARY, k != "dice", k))


def _config_sha(r: dict[str, Any]) -> str:
    import hashlib
    import json

    identity = {k: v for k, v in (r.get("identity") or {}).items() if k != "seed"}
    if not identity:
        return ""
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:12]


def cells_frame(results: Iterable[dict[str, Any]]) -> pd.DataFrame:
    results = list(results)
    keys = metric_keys(results)
    rows = []
    for r in results:
        c = r["cell"]
        summary = r.get("summary", {})
        row = {"dataset": c["dataset"], "method": c["method"], "strategy": c.get("strategy", ""),
               "loss": c.get("loss", ""), "seed": c["seed"], "status": r["status"], "key": c.get("key", ""),
               "synthetic": r.get("provenance", {}).get("synthetic"), "config": _config_sha(r),
               "pool_rois_visible": bool(c.get("pool_masks_visible", False)), "path": r.get("_path", ""),
               "num_classes": len(r["rounds"][0].get("acquired_class_histogram", [])) if r.get("rounds") else 0}
        for k in keys:
            row[f"aulc_{k}"] = _num(summary.get(f"aulc_{k}"))
            row[f"final_{k}"] = _num(summary.get(f"final_{k}"))
        row["budget95_acc_frac"] = _num(summary.get("budget95_acc_frac"))
        err = r.get("error") or {}
        row["error"] = f"{err.get('type', '')}: {err.get('message', '')}" if err else ""
        row["reason"] = r.get("reason", "")
        rows.append(row)
    return pd.DataFrame(rows)


def curves_frame(results: Iterable[dict[str, Any]], metrics: Sequence[str] = ("accuracy", "dice", "auc")) -> pd.DataFrame:
    rows = []
    for r in results:
        if r["status"] != "ok":
            continue
        c = r["cell"]
        for rd in r["rounds"]:
            m = rd["metrics"]
            rows.append({"dataset": c["dataset"], "method": c["method"], "strategy": c.get("strategy", ""),
                         "loss": c.get("loss", ""), "seed": c["seed"], "round": rd["round"],
                         "n_labelled": rd["n_labelled"], **{k: _num(m.get(k)) for k in metrics}})
    return pd.DataFrame(rows)


def holm(pvalues: list[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values (nan stays nan)."""
    p = np.asarray(pvalues, dtype=float)
    valid = np.flatnonzero(~np.isnan(p))
    out = np.full(p.shape, np.nan)
    m = valid.size
    order = valid[np.argsort(p[valid], kind="stable")]
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out.tolist()


def mean_ci(values: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high) of a Student-t interval over ``values`` (nan-free); one value → no interval."""
    arr = np.asarray([v for v in values if not math.isnan(v)], dtype=float)
    if arr.size == 0:
        return float("nan"), float("nan"), float("nan")
    mean = float(arr.mean())
    if arr.size < 2:
        return mean, float("nan"), float("nan")
    half = float(stats.t.ppf(0.5 + level / 2, arr.size - 1) * arr.std(ddof=1) / math.sqrt(arr.size))
    return mean, mean - half, mean + half


def paired_pvalue(a: Sequence[float], b: Sequence[float], test: str = "ttest") -> float:
    """The paired test's p-value over seeds (nan below ``MIN_SEEDS_FOR_TEST`` pairs or when undefined)."""
    return _paired_p(pd.DataFrame({"a": list(a), "b": list(b)}, dtype=float), test)


def _paired(a: pd.Series, b: pd.Series) -> pd.DataFrame:
    return pd.concat([a.rename("a"), b.rename("b")], axis=1).dropna()


def _paired_p(joined: pd.DataFrame, test: str) -> float:
    if len(joined) < MIN_SEEDS_FOR_TEST:
        return float("nan")
    diff = joined["a"] - joined["b"]
    if np.allclose(diff, 0):
        return 1.0
    if test == "wilcoxon":
        return float(stats.wilcoxon(joined["a"], joined["b"]).pvalue)
    if np.allclose(diff, diff.iloc[0]):  # zero variance of the differences: the t statistic is undefined
        return float("nan")
    return float(stats.ttest_rel(joined["a"], joined["b"]).pvalue)


def baseline_method(methods: Iterable[str], strategies: dict[str, str], losses: dict[str, str]) -> str | None:
    """The ``random`` + ``ce`` method, else any ``random`` method."""
    randoms = [m for m in methods if strategies.get(m) == "random"]
    plain = [m for m in randoms if losses.get(m) == "ce"]
    return (plain or randoms or [None])[0]


def rank_ranges(means: Sequence[float], lows: Sequence[float], highs: Sequence[float],
                higher_is_better: bool = True) -> list[tuple[int, int]]:
    """(best, worst) rank each method could take given the 95 % intervals ``[low, high]`` (a missing
    interval is the mean): ``best = 1 + #{j: low_j > high_i}`` (methods surely better),
    ``worst = 1 + #{j ≠ i: high_j ≥ low_i}`` (methods possibly better). Lower-is-better metrics
    are negated first."""
    sign = 1.0 if higher_is_better else -1.0

    def fill(x: float, m: float) -> float:
        v = m if math.isnan(x) else x
        return -math.inf if math.isnan(v) else sign * v

    lo = [fill(a if sign > 0 else b, m) for a, b, m in zip(lows, highs, means, strict=True)]
    hi = [fill(b if sign > 0 else a, m) for a, b, m in zip(lows, highs, means, strict=True)]
    n = len(lo)
    return [(1 + sum(1 for j in range(n) if lo[j] > hi[i]), 1 + sum(1 for j in range(n) if j != i and hi[j] >= lo[i]))
            for i in range(n)]


def leaderboard(cells: pd.DataFrame, *, test: Literal["ttest", "wilcoxon"] = "ttest",
                keys: Sequence[str] | None = None, directions: dict[str, str] | None = None,
                group: Sequence[str] = ("dataset", "method"), baseline: str | None = None,
                primary: str | None = None) -> pd.DataFrame:
    """One row per (dataset, method): for every AULC key the statistics in the module docstring.

    ``baseline``: the method every Δ is paired with (default: ``random + ce``, else any ``random``
    method — :func:`baseline_method`); a dataset without it gets no Δ. ``primary``: the key that ranks
    the methods (default: accuracy). The report and :func:`xalbench.leaderboard_frame` both call this."""
    ok = cells[cells["status"] == "ok"]
    if ok.empty:
        return pd.DataFrame()
    keys = list(keys) if keys is not None else [c[5:] for c in ok.columns if c.startswith("aulc_")]
    directions = directions or {}
    out_rows = []
    for dataset, g_ds in ok.groupby("dataset", sort=True):
        strategies = dict(zip(g_ds["method"], g_ds["strategy"], strict=False))
        losses = dict(zip(g_ds["method"], g_ds["loss"], strict=False))
        methods = sorted(g_ds["method"].unique())
        if baseline is None:
            base = baseline_method(methods, strategies, losses)
        else:
            base = baseline if baseline in methods else None
        base_rows = g_ds[g_ds["method"] == base].set_index("seed") if base else None
        rows = []
        for gkey, g in g_ds.groupby(list(group[1:]), sort=True):
            method = gkey[0] if isinstance(gkey, tuple) else gkey
            row: dict[str, Any] = {"dataset": dataset, "method": method, "n_seeds": int(g["seed"].nunique()),
                                   "strategy": strategies.get(method, ""), "loss": losses.get(method, ""),
                                   "synthetic": bool(g["synthetic"].dropna().all()) if g["synthetic"].notna().any() else None,
                                   "pool_rois_visible": bool(g["pool_rois_visible"].any()), "baseline": base or ""}
            if "config" in group:
                row["config"] = g["config"].iloc[0]
            for k in keys:
                mean, lo, hi = mean_ci(g[f"aulc_{k}"].tolist())
                row.update({f"aulc_{k}_mean": mean, f"aulc_{k}_ci_low": lo, f"aulc_{k}_ci_high": hi,
                            f"aulc_{k}_std": float(g[f"aulc_{k}"].std(ddof=1)) if len(g) > 1 else float("nan")})
                final = g[f"final_{k}"] if f"final_{k}" in g else pd.Series(dtype=float)
                row[f"final_{k}_mean"] = float(final.mean()) if len(final) else float("nan")
                row[f"final_{k}_std"] = float(final.std(ddof=1)) if len(final) > 1 else float("nan")
                if base_rows is not None and method != base:
                    joined = _paired(g.set_index("seed")[f"aulc_{k}"], base_rows[f"aulc_{k}"])
                    d_mean, d_lo, d_hi = mean_ci((joined["a"] - joined["b"]).tolist())
                    row.update({f"delta_{k}": d_mean, f"delta_{k}_ci_low": d_lo, f"delta_{k}_ci_high": d_hi,
                                f"n_pairs_{k}": len(joined), f"p_{k}": _paired_p(joined, test)})
                else:
                    row.update({f"delta_{k}": float("nan"), f"delta_{k}_ci_low": float("nan"),
                                f"delta_{k}_ci_high": float("nan"), f"n_pairs_{k}": 0, f"p_{k}": float("nan")})
            row["budget95_acc_frac_mean"] = float(g["budget95_acc_frac"].mean())
            row["budget95_reached"] = int(g["budget95_acc_frac"].notna().sum())
            rows.append(row)
        frame = pd.DataFrame(rows)
        for k in keys:
            frame[f"p_{k}_holm"] = holm(frame[f"p_{k}"].tolist())
        ranked_by = primary if primary in keys else (PRIMARY if PRIMARY in keys else (keys[0] if keys else None))
        if ranked_by is not None:
            higher = directions.get(ranked_by, "max") == "max"
            sort_key = frame[f"aulc_{ranked_by}_mean"].fillna(-np.inf if higher else np.inf)
            if "aulc_dice_mean" in frame:
                sort_key = sort_key + 1e-9 * frame["aulc_dice_mean"].fillna(0)
            frame["rank"] = sort_key.rank(ascending=not higher, method="min").astype(int)
            ranges = rank_ranges(frame[f"aulc_{ranked_by}_mean"].tolist(), frame[f"aulc_{ranked_by}_ci_low"].tolist(),
                                 frame[f"aulc_{ranked_by}_ci_high"].tolist(), higher)
            frame["rank_best"] = [min(r[0], rk) for r, rk in zip(ranges, frame["rank"], strict=True)]
            frame["rank_worst"] = [max(r[1], rk) for r, rk in zip(ranges, frame["rank"], strict=True)]
            # backwards-compatible names of the primary comparison
            frame["p_vs_random"] = frame[f"p_{ranked_by}"]
            frame["p_holm"] = frame[f"p_{ranked_by}_holm"]
            out_rows.append(frame.sort_values(["rank", "method"]))
        else:
            out_rows.append(frame)
    return pd.concat(out_rows, ignore_index=True)


def failures(cells: pd.DataFrame) -> pd.DataFrame:
    cols = ["dataset", "method", "seed", "status", "error", "reason"]
    bad = cells[cells["status"].isin(["failed", "skipped"])]
    return bad[cols].sort_values(["status", "dataset", "method", "seed"]).reset_index(drop=True)


def fmt_pm(mean: float, std: float, fmt: str = ".3f") -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "n/a"
    if std is None or math.isnan(std):
        return format(mean, fmt)
    return f"{format(mean, fmt)} ± {format(std, fmt)}"
