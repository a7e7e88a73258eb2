"""Shaping a cell's result: the summary (AULC and final value of every registered metric),
class histograms of acquisitions, and the result dict written to the cell's file."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from xalbench.base import DatasetMeta, Split
from xalbench.harness.identity import CellSpec
from xalbench.metrics.base import Metric
from xalbench.metrics.functions import aulc
from xalbench.results import SCHEMA_VERSION

__all__ = ["class_histogram", "result_dict", "summarise"]


def summarise(rounds: list[dict[str, Any]], metrics: list[Metric] | None = None) -> dict[str, float]:
    """``aulc_<key>`` and ``final_<key>`` for every round-scope metric with an AULC (from the stored
    rounds only, so the leaderboard can recompute it)."""
    if not rounds:
        return {}
    x = [r["n_labelled"] for r in rounds]
    names = [m for m in metrics or [] if m.scope == "round" and m.aulc]
    out: dict[str, float] = {}
    for m in names:
        if m.name not in rounds[-1]["metrics"]:
            continue
        key = m.summary_key()
        out[f"aulc_{key}"] = aulc(x, [r["metrics"].get(m.name, float("nan")) for r in rounds])
        out[f"final_{key}"] = rounds[-1]["metrics"][m.name]
    return out


def class_histogram(pool: Split, queried: list[int], meta: DatasetMeta) -> list[int]:
    """Per-class count of the acquired samples (multi-label: positives per finding)."""
    if not queried:
        return [0] * meta.num_classes
    labels = pool.labels[torch.as_tensor(queried)]
    if meta.task == "multi-label":
        return [int(v) for v in (labels > 0.5).sum(0).tolist()]
    return [int(v) for v in np.bincount(labels.numpy(), minlength=meta.num_classes).tolist()]


def result_dict(spec: CellSpec, status: str, **extra: Any) -> dict[str, Any]:
    """The cell file's content (sealed by the writer)."""
    return {"schema": SCHEMA_VERSION, "status": status, "cell": spec.describe(),
            "identity": spec.identity, "identity_sha256": spec.identity_sha256,
            "suite_hash": spec.config.suite_hash, **extra}
