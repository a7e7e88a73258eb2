"""The tuning objective: one candidate method, one tuning seed → its score on the val split.

The candidate runs the cell's own machinery (:class:`~xalbench.harness.state.CellRun` and the one
round loop, :func:`~xalbench.harness.loop.run_rounds`: the method's trainer, loss, mask budget and,
from round 1 on, its strategy in-process) on a copy
of the dataset whose **test split is replaced by the val split**, so nothing in a trial can
read test labels, images or ROIs: the score after round ``round``'s training is the
objective metric of that model on val.

Seeds: the trial's suite is renamed ``<suite>:tuning``, so its pair seed (initial labelled
set, initial weights, training shuffles) and cell seed (strategy) come from a stream of their
own — a tuning seed equal to an evaluation seed still gives another initial set and other
weights. Every candidate of one tuning seed starts from the same set and weights (paired).
"""

from __future__ import annotations

import dataclasses

import torch

import xalbench.seeding as seeding
from xalbench.base import DatasetBundle
from xalbench.harness.identity import CellSpec
from xalbench.harness.loop import NoStore, run_rounds
from xalbench.harness.state import CellRun
from xalbench.registry import Registry
from xalbench.suite import ComponentSpec, MethodSpec, SuiteSpec

__all__ = ["TUNING_SUFFIX", "val_only", "score_candidate"]

TUNING_SUFFIX = ":tuning"


def val_only(bundle: DatasetBundle) -> DatasetBundle:
    """``bundle`` with its test split replaced by the val split (tuning never sees test)."""
    return dataclasses.replace(bundle, test=bundle.val)


def score_candidate(registry: Registry, suite: SuiteSpec, dataset: ComponentSpec, bundle: DatasetBundle,
                    method: MethodSpec, seed: int, *, round_index: int, objective: str, pool_masks_visible: bool,
                    device: str = "cpu", threads: int = 1) -> float:
    """``objective`` on val after round ``round_index`` of ``method`` from tuning seed ``seed``."""
    seeding.configure_determinism(threads, torch.device(device))
    bundle = val_only(bundle)
    tsuite = dataclasses.replace(suite, name=suite.name + TUNING_SUFFIX)
    spec = CellSpec(tsuite, dataset, method, seed, out_dir="", device=device, threads=threads,
                    isolation="inline", pool_masks_visible=pool_masks_visible)
    run = CellRun(spec, bundle, registry, with_metrics=False)
    querier = run.querier("inline") if round_index > 0 else None
    try:
        run_rounds(run, querier, NoStore(), stop_after=round_index)
    finally:
        if querier is not None:
            querier.close()
    metric = registry.create("metric", objective)
    return float(metric.compute(run.evaluation(round_index)))
