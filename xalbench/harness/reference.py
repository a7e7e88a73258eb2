"""Budget-to-95 %: a full-data reference per (dataset, loss, seed) and where each curve reaches 95 % of it.

AEIG's "% of data to reach 95 % of full-data performance": the same model and loss trained on
the **whole** pool (masks within the protocol's mask budget) with the cell's own seeds, cached
under ``<out>/reference/`` keyed by its identity, so methods sharing a loss share it;
deterministic, so two workers racing on it write the same file (atomically).
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from xalbench.harness.evaluation import evaluate
from xalbench.harness.identity import cell_key, identity_hash
from xalbench.harness.state import CellRun
from xalbench.metrics.functions import budget_to_fraction

__all__ = ["REFERENCE_ROUND", "ReferenceStore", "budget_to_95", "full_data_reference"]

REFERENCE_ROUND = -1  # seed stream of the full-data training (distinct from every AL round)


class ReferenceStore(Protocol):
    """Where full-data references are shared between the cells of one (dataset, loss, seed)."""

    def load_reference(self, name: str, digest: str) -> dict[str, float] | None: ...

    def save_reference(self, name: str, digest: str, record: dict[str, Any]) -> None: ...


def full_data_reference(run: CellRun, store: ReferenceStore) -> dict[str, float]:
    """Test metrics of the cell's model and loss trained on the whole pool (cached per dataset, loss, seed)."""
    config = run.config
    identity = {k: v for k, v in config.identity().items() if k != "method"}
    identity["loss"] = config.method.loss.identity()
    digest = identity_hash(identity)
    name = cell_key(config.dataset.display, config.method.loss.display, config.seed)
    cached = store.load_reference(name, digest)
    if cached is not None:
        return cached
    everything = np.arange(len(run.bundle.train), dtype=np.int64)
    run.trained = None
    run.masks.generated = {}  # the reference sees human masks within the budget only
    run.train(REFERENCE_ROUND, everything)
    metrics = evaluate(run.evaluation(REFERENCE_ROUND), [m for m in run.metrics if m.scope == "round"])
    store.save_reference(name, digest, {"n_labelled": len(everything), "metrics": metrics})
    return metrics


def budget_to_95(rounds: list[dict[str, Any]], reference: dict[str, float], n_pool: int) -> dict[str, float]:
    x = [r["n_labelled"] for r in rounds]
    out = {"reference_acc": reference["accuracy"], "reference_auc": reference.get("auc", float("nan"))}
    for metric in ("accuracy", "auc"):
        if metric not in reference:
            continue
        n = budget_to_fraction(x, [r["metrics"][metric] for r in rounds], reference[metric], 0.95)
        short = "acc" if metric == "accuracy" else metric
        out[f"budget95_{short}"] = n
        out[f"budget95_{short}_frac"] = n / n_pool
    return out
