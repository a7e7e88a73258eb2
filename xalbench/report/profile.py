"""Where a run's time went: training, evaluation (explanation maps apart), strategy queries (the
strategy's own scoring apart from the sandbox's overhead) and checkpoint I/O, per dataset, from
the per-round timings every cell records."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd

__all__ = ["profile_frame", "profile_markdown"]

PARTS = (("train_s", "training"), ("eval_other_s", "evaluation (metrics)"), ("eval_maps_s", "evaluation (maps)"),
         ("strategy_s", "strategy scoring"), ("query_overhead_s", "query overhead (sandbox, reveal)"),
         ("io_s", "checkpoint I/O"))


def profile_frame(results: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """Seconds per part and dataset (summed over cells and rounds), with each part's share."""
    rows = []
    for r in results:
        if r.get("status") != "ok":
            continue
        for rd in r.get("rounds", []):
            t = rd.get("timings", {})
            maps = float(t.get("eval_maps_s", 0.0))
            strategy = float(t.get("strategy_s", 0.0))
            rows.append({"dataset": r["cell"]["dataset"], "train_s": float(t.get("train_s", 0.0)),
                         "eval_other_s": float(t.get("eval_s", 0.0)) - maps, "eval_maps_s": maps,
                         "strategy_s": strategy, "query_overhead_s": float(t.get("query_s", 0.0)) - strategy,
                         "io_s": float(t.get("io_s", 0.0))})
    if not rows:
        return pd.DataFrame()
    frame = pd.DataFrame(rows).groupby("dataset").sum()
    frame.loc["all datasets"] = frame.sum()
    return frame


def profile_markdown(results: Iterable[dict[str, Any]]) -> str:
    frame = profile_frame(results)
    if frame.empty:
        return "_no finished cells to profile_"
    total = frame[[k for k, _ in PARTS]].sum(axis=1)
    table = pd.DataFrame({label: [f"{v:.0f} s ({100 * v / t:.0f} %)" if t > 0 else "0 s" for v, t in zip(frame[k], total, strict=True)]
                          for k, label in PARTS}, index=frame.index)
    table["total (cell-seconds)"] = [f"{t:.0f} s" for t in total]
    return "Time per part (summed over cells and rounds; with several workers, wall time is shorter):\n\n" + \
        table.to_markdown()
