"""Leaderboard tables from result files only (pandas).

One row per (dataset, method): AULC of accuracy and of Dice (explanation vs ROI) as
mean ± std over seeds, final accuracy/AUC, rank within the dataset (by mean AULC_acc,
ties → mean AULC_dice), and a paired test over seeds of each method against the
``random`` baseline (paired t-test by default, Wilcoxon signed-rank on request),
Holm-corrected across the methods of a dataset. Pairs are matched by seed — the harness
gives every method of a seed the same initial set and weights. With fewer than 2 paired
seeds no test is possible and the p-value is reported as n/a.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["cells_frame", "curves_frame", "leaderboard", "holm", "failures", "baseline_method"]

METRICS = ("aulc_acc", "aulc_dice", "aulc_auc", "final_acc", "final_auc", "final_dice", "budget95_acc_frac")


def _num(v: Any) -> float:
    return float("nan") if v is None else float(v)


def cells_frame(results: Iterable[dict[str, Any]]) -> pd.DataFrame:
    rows = []
    for r in results:
        c = r["cell"]
        row = {"dataset": c["dataset"], "method": c["method"], "strategy": c["strategy"], "loss": c["loss"],
               "seed": c["seed"], "status": r["status"], "key": c["key"],
               "synthetic": r.get("provenance", {}).get("synthetic")}
        for m in METRICS:
            row[m] = _num(r.get("summary", {}).get(m))
        err = r.get("error") or {}
        row["error"] = f"{err.get('type', '')}: {err.get('message', '')}" if err else ""
        row["reason"] = r.get("reason", "")
        rows.append(row)
    return pd.DataFrame(rows)


def curves_frame(results: Iterable[dict[str, Any]]) -> pd.DataFrame:
    rows = []
    for r in results:
        if r["status"] != "ok":
            continue
        c = r["cell"]
        for rd in r["rounds"]:
            m = rd["metrics"]
            rows.append({"dataset": c["dataset"], "method": c["method"], "seed": c["seed"], "round": rd["round"],
                         "n_labelled": rd["n_labelled"], "accuracy": _num(m.get("accuracy")),
                         "dice": _num(m.get("dice")), "auc": _num(m.get("auc"))})
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


def _paired_p(a: pd.Series, b: pd.Series, test: str) -> float:
    joined = pd.concat([a.rename("a"), b.rename("b")], axis=1).dropna()
    if len(joined) < 2:
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


def leaderboard(cells: pd.DataFrame, *, test: Literal["ttest", "wilcoxon"] = "ttest") -> pd.DataFrame:
    ok = cells[cells["status"] == "ok"]
    if ok.empty:
        return pd.DataFrame()
    out_rows = []
    for dataset, group in ok.groupby("dataset", sort=True):
        strategies = dict(zip(group["method"], group["strategy"], strict=False))
        losses = dict(zip(group["method"], group["loss"], strict=False))
        base = baseline_method(sorted(group["method"].unique()), strategies, losses)
        base_acc = group[group["method"] == base].set_index("seed")["aulc_acc"] if base else None
        rows = []
        for method, g in group.groupby("method", sort=True):
            row: dict[str, Any] = {"dataset": dataset, "method": method, "n_seeds": int(g["seed"].nunique()),
                                   "synthetic": bool(g["synthetic"].dropna().all()) if g["synthetic"].notna().any() else None}
            for m in METRICS:
                row[f"{m}_mean"] = float(g[m].mean())
                row[f"{m}_std"] = float(g[m].std(ddof=1)) if len(g) > 1 else float("nan")
            # budget-to-95 %: "not reached" seeds are nan; report the mean over seeds that reached it
            row["budget95_reached"] = int(g["budget95_acc_frac"].notna().sum())
            if base is not None and method != base:
                row["p_vs_random"] = _paired_p(g.set_index("seed")["aulc_acc"], base_acc, test)
            else:
                row["p_vs_random"] = float("nan")
            rows.append(row)
        adjusted = holm([r["p_vs_random"] for r in rows])
        for r, p in zip(rows, adjusted, strict=True):
            r["p_holm"] = p
            r["baseline"] = base or ""
        frame = pd.DataFrame(rows)
        key = frame["aulc_acc_mean"].fillna(-1) + 1e-9 * frame["aulc_dice_mean"].fillna(0)
        frame["rank"] = key.rank(ascending=False, method="min").astype(int)
        out_rows.append(frame.sort_values(["rank", "method"]))
    return pd.concat(out_rows, ignore_index=True)


def failures(cells: pd.DataFrame) -> pd.DataFrame:
    cols = ["dataset", "method", "seed", "status", "error", "reason"]
    bad = cells[cells["status"].isin(["failed", "skipped"])]
    return bad[cols].sort_values(["status", "dataset", "method", "seed"]).reset_index(drop=True)


def fmt_pm(mean: float, std: float) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "n/a"
    if std is None or math.isnan(std):
        return f"{mean:.3f}"
    return f"{mean:.3f} ± {std:.3f}"
