"""Fabricated results directories whose answers are known, for testing a :class:`~xalbench.Finding`::

    from xalbench.testing.findings import BASE, FabricatedRun

    run = FabricatedRun(tmp_path)                     # 5 seeds
    run.add("d", "random+ce", "random", "ce", BASE)
    run.add("d", "random+dice", "random", "dice", BASE, {"aulc_dice": 0.1})   # + 0.1 on every seed
    assert run.blocks()["sal-rq1"]["verdict"] == "reproduced"

Every method of a dataset shares the per-seed :data:`NOISE` (the pairing); a shifted method adds
its own small :data:`JITTER`, so a shift of 0.1 gives Δ ≈ 0.1 with a tight interval and a shift of
0 gives Δ ≈ 0 inside ±0.003.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from xalbench.results import SCHEMA_VERSION, atomic_write_json, seal

__all__ = ["BASE", "JITTER", "NOISE", "FabricatedRun", "result"]

NOISE = [0.011, -0.007, 0.004, -0.009, 0.006]  #: per-seed noise shared by a dataset's methods (paired)
JITTER = [0.002, -0.001, 0.0015, -0.002, 0.001]  #: per-seed noise of one method's difference
BASE = {"aulc_acc": 0.70, "aulc_dice": 0.30, "aulc_iou": 0.20, "aulc_auc": 0.80, "aulc_del_auc": 0.30}


def result(dataset: str, method: str, strategy: str, loss: str, seed: int, summary: Mapping[str, float], *,
           strategy_options: Mapping[str, Any] | None = None, trainer: str = "standard", mask_source: str = "none",
           histograms: list[list[int]] | None = None, multilabel: bool = False,
           facts: Mapping[str, Any] | None = None, seconds: float = 0.0) -> dict[str, Any]:
    """One finished cell's result (``facts``: the dataset's facts as the provenance records them;
    ``seconds``: the recorded training time of its first round)."""
    metrics = {"accuracy": summary.get("aulc_acc", 0.5), **({"lrap": 0.5} if multilabel else {})}
    rounds = [{"round": r, "n_labelled": 10 * (r + 1), "metrics": metrics, "queried": [],
               "acquired_class_histogram": h, "timings": {"train_s": seconds if r == 0 else 0.0}}
              for r, h in enumerate(histograms or [[]])]
    provenance: dict[str, Any] = {"synthetic": True}
    if facts is not None:
        provenance["dataset_facts"] = dict(facts)
    return {"schema": SCHEMA_VERSION, "status": "ok", "rounds": rounds, "provenance": provenance,
            "summary": dict(summary),
            "cell": {"dataset": dataset, "method": method, "strategy": strategy, "loss": loss, "seed": seed,
                     "strategy_options": dict(strategy_options or {}), "loss_options": {}, "trainer": trainer,
                     "mask_source": mask_source, "key": f"{dataset}__{method}__seed{seed}"}}


class FabricatedRun:
    """A results directory under ``root`` with ``seeds`` paired seeds (at most 5)."""

    def __init__(self, root: Path, seeds: int = 5) -> None:
        if not 1 <= seeds <= len(NOISE):
            raise ValueError(f"seeds must be 1..{len(NOISE)}, got {seeds}")
        self.root, self.seeds = Path(root), seeds

    def add(self, dataset: str, method: str, strategy: str, loss: str, values: Mapping[str, float],
            shift: Mapping[str, float] | None = None, **kw: Any) -> None:
        """``values`` + per-seed noise (shared by the dataset) + ``shift`` + a method's own jitter."""
        for s in range(self.seeds):
            summary = {k: v + NOISE[s] + (shift or {}).get(k, 0.0) + (JITTER[s] if shift else 0.0)
                       for k, v in values.items()}
            self.write(result(dataset, method, strategy, loss, s, summary, **kw))

    def write(self, res: Mapping[str, Any]) -> None:
        atomic_write_json(self.root / "cells" / f"{res['cell']['key']}.json", seal(dict(res)))

    def blocks(self, delta: float | None = None) -> dict[str, dict[str, Any]]:
        """Every registered finding's block, by key."""
        from xalbench.report.findings import findings
        from xalbench.report.model import load_results

        return {b["key"]: b for b in findings(load_results(self.root), delta=delta)}
