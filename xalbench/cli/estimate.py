"""Estimated run time of the cells still to run: from this suite's finished cells in the same results
directory (their recorded round timings), per dataset; unknown without a previous run."""

from __future__ import annotations

from typing import Any

__all__ = ["estimate_seconds"]


def _cell_seconds(result: dict[str, Any]) -> float:
    return float(sum(v for r in result.get("rounds", []) for v in r.get("timings", {}).values()
                     if isinstance(v, (int, float)) and not isinstance(v, bool)))


def estimate_seconds(plan: Any, todo: list[Any], workers: int) -> tuple[float | None, str]:
    """(seconds or None, what the estimate is based on)."""
    from xalbench.results import iter_results

    todo = [c for c in todo if not getattr(c, "skip_reason", None)]
    if not todo:
        return 0.0, "nothing to run"
    out = todo[0].out_dir
    per_dataset: dict[str, list[float]] = {}
    try:
        for r in iter_results(out):
            if r.get("status") == "ok" and r["cell"].get("suite") == plan.suite.name:
                per_dataset.setdefault(r["cell"]["dataset"], []).append(_cell_seconds(r))
    except OSError:
        pass
    if not per_dataset:
        return None, f"no finished cell of suite {plan.suite.name!r} in {out} to measure from"
    every = [s for v in per_dataset.values() for s in v]
    fallback = sum(every) / len(every)
    total = sum((sum(per_dataset[c.dataset.display]) / len(per_dataset[c.dataset.display]))
                if c.dataset.display in per_dataset else fallback for c in todo)
    return total / max(1, min(workers, len(todo))), f"from {len(every)} finished cell(s) of this suite in {out}"
