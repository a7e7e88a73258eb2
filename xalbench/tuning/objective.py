"""The tuning objective: one candidate method, one tuning seed → its score on the val split.

The candidate runs the cell's own machinery (:class:`~xalbench.harness.state.CellRun`: the
method's trainer, loss, mask budget and, from round 1 on, its strategy in-process) on a copy
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
from typing import Any

import numpy as np
import torch

from xalbench.base import DatasetBundle
from xalbench.harness import seeding
from xalbench.harness.identity import CellSpec
from xalbench.harness.masks import drawn_only
from xalbench.harness.state import CellRun
from xalbench.registry import Registry
from xalbench.sandbox import RoundRequest, make_cell_data, make_querier, make_spec
from xalbench.suite import ComponentSpec, MethodSpec, SuiteSpec

__all__ = ["TUNING_SUFFIX", "val_only", "score_candidate"]

TUNING_SUFFIX = ":tuning"


def val_only(bundle: DatasetBundle) -> DatasetBundle:
    """``bundle`` with its test split replaced by the val split (tuning never sees test)."""
    return dataclasses.replace(bundle, test=bundle.val)


def _request(run: CellRun, r: int, labelled: np.ndarray, k: int) -> RoundRequest:
    assert run.trained is not None
    model, data = run.trained.main, run.masks.labelled_split(labelled)
    rng_seed, torch_seed = run.query_seeds(r)

    def copy(t: torch.Tensor | None) -> np.ndarray | None:
        return None if t is None else np.array(t.detach().cpu().numpy(), copy=True)

    return RoundRequest(
        round_index=r, state_dict={n: v.detach().to("cpu", copy=True) for n, v in model.state_dict().items()},
        module_training=tuple(m.training for m in model.modules()), labelled=np.array(labelled, dtype=np.int64),
        labelled_labels=copy(data.labels), labelled_roi=copy(data.roi), labelled_has_roi=copy(data.has_roi),
        rng_seed=int(rng_seed), torch_seed=int(torch_seed), k=int(k))


def score_candidate(registry: Registry, suite: SuiteSpec, dataset: ComponentSpec, bundle: DatasetBundle,
                    method: MethodSpec, seed: int, *, round_index: int, objective: str, pool_masks_visible: bool,
                    device: str = "cpu", threads: int = 1) -> float:
    """``objective`` on val after round ``round_index`` of ``method`` from tuning seed ``seed``."""
    seeding.configure_determinism(threads, torch.device(device))
    bundle = val_only(bundle)
    tsuite = dataclasses.replace(suite, name=suite.name + TUNING_SUFFIX)
    spec = CellSpec(tsuite, dataset, method, seed, out_dir="", device=device, threads=threads,
                    isolation="inline", pool_masks_visible=pool_masks_visible)
    run = CellRun(spec, bundle, registry)
    labelled = run.initial
    querier: Any = None
    try:
        for r in range(round_index + 1):
            run.train(r, labelled)
            n_left = len(bundle.train) - len(labelled)
            if r == round_index or n_left == 0:
                break
            if querier is None:
                explainer = (suite.explainer.name, suite.explainer.options) if suite.explainer.name else None
                sandbox = make_spec(registry, strategy=(method.strategy.name, method.strategy.options),
                                    model=(suite.model.name, suite.model.options), explainer=explainer,
                                    meta=bundle.meta, pool_masks_visible=pool_masks_visible, threads=threads,
                                    device=device, timeout=suite.strategy_timeout,
                                    batch_size=suite.training.eval_batch_size)
                data = make_cell_data(drawn_only(bundle.train), bundle.val, pool_masks_visible=pool_masks_visible)
                querier = make_querier("inline", sandbox, data, registry)
            reply = querier.query(_request(run, r, labelled, min(run.k, n_left)))
            new = np.asarray([int(i) for i in reply.indices], dtype=np.int64)
            labelled = np.concatenate([labelled, new])
            run.acquire_masks(r, labelled, new)
    finally:
        if querier is not None and hasattr(querier, "close"):
            querier.close()
    metric = registry.create("metric", objective)
    return float(metric.compute(run.evaluation(round_index)))
