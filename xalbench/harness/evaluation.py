"""Test-set evaluation of one round through the registered metrics.

:class:`TestEvaluation` implements the :class:`~xalbench.metrics.base.Evaluation` view a
metric reads: probabilities and explanation maps are computed lazily, once, and shared.
Explanation target (suite ``[evaluation] target``): ``label`` (default) explains the
ground-truth class — "right for the right reasons" is about the true finding — or ``pred``
the predicted class. Multi-label with per-finding ROIs: every (sample, positive finding)
pair compares that finding's map with its own ROI; without ``class_roi`` the union ROI is
compared with the map of the first positive finding.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from xalbench.base import ExplainableNet, Explainer, Split, Task
from xalbench.data.mapped_pool import iter_batches
from xalbench.metrics.base import Metric
from xalbench.registry import Registry
from xalbench.utils.torch_modes import eval_mode

__all__ = ["TestEvaluation", "evaluate", "select_metrics"]


class TestEvaluation:
    """The lazily computed quantities of one model on one split (see ``Evaluation``)."""

    def __init__(self, model: ExplainableNet, split: Split, *, task: Task, num_classes: int, spatial_dims: int,
                 explainer: Explainer | None, target: str, device: torch.device, batch_size: int = 256,
                 seed: int = 0) -> None:
        self.model, self.split, self.task = model, split, task
        self.num_classes, self.spatial_dims = num_classes, spatial_dims
        self.explainer, self.target, self.device = explainer, target, device
        self.batch_size, self.seed = batch_size, seed
        self._cache: dict[Any, Any] = {}
        self.seconds: dict[str, float] = {}  #: time spent per cached quantity (the run's profile)

    def cached(self, key: Any, compute: Callable[[], Any]) -> Any:
        if key not in self._cache:
            t0 = time.perf_counter()
            self._cache[key] = compute()
            name = key if isinstance(key, str) else str(key[0])
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - t0
        return self._cache[key]

    @property
    def probs(self) -> np.ndarray:
        def compute() -> np.ndarray:
            out = []
            with torch.no_grad(), eval_mode(self.model):
                for x in iter_batches(self.split.images, self.batch_size):
                    z = self.model(x.to(self.device))
                    out.append(torch.sigmoid(z) if self.task == "multi-label" else torch.softmax(z, 1))
            return torch.cat(out).cpu().numpy()

        return self.cached("probs", compute)

    @property
    def labels(self) -> np.ndarray:
        return self.split.labels.numpy()

    @property
    def label_mask(self) -> np.ndarray | None:
        return None if self.split.label_mask is None else self.split.label_mask.numpy()

    def explain(self, images: torch.Tensor, targets: torch.Tensor | None, *, all_classes: bool = False) -> torch.Tensor:
        """The suite's explainer on ``images`` (batched, eval mode, detached, on the CPU)."""
        if self.explainer is None:
            raise RuntimeError("this suite configured no explainer")
        out = []
        with eval_mode(self.model):
            for s in range(0, images.shape[0], self.batch_size):
                x = images[s : s + self.batch_size].to(self.device)
                t = None if targets is None else targets[s : s + self.batch_size].to(self.device)
                out.append(self.explainer.explain(self.model, x, t, all_classes=all_classes).detach().cpu())
        return torch.cat(out)

    def roi_pairs(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        return self.cached("roi_pairs", self._roi_pairs)

    def _roi_pairs(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """(maps, ROIs) of the test samples with an ROI, computed batch by batch: only the maps and
        ROIs are held, never the images of every ROI sample (a mapped split is read per batch)."""
        split = self.split
        if self.explainer is None or split.roi is None:
            return None
        has = split.has_roi.numpy().astype(bool) if split.has_roi is not None else np.ones(len(split), bool)
        rows = np.flatnonzero(has)
        if rows.size == 0:
            return None
        maps, rois = [], []
        for s, images in zip(range(0, rows.size, self.batch_size), iter_batches(split.images, self.batch_size, rows),
                             strict=True):
            part = rows[s : s + self.batch_size]
            m, r = self._pairs_of(part, images)
            maps.append(m)
            rois.append(r)
        return torch.cat(maps), torch.cat(rois)

    def _pairs_of(self, rows: np.ndarray, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(maps, ROIs) of test rows ``rows`` whose images are ``images``."""
        split, idx = self.split, torch.as_tensor(rows)
        if self.task == "multi-label":
            maps = self.explain(images, None, all_classes=True)  # N×K×...
            lab = split.labels[idx] > 0.5
            if split.class_roi is not None:
                croi = split.class_roi[idx]
                sel = lab & (croi.flatten(2).amax(2) > 0)
                return maps[sel], croi[sel]
            first = lab.float().argmax(1)
            return maps[torch.arange(maps.shape[0]), first], split.roi[idx]
        targets = split.labels[idx] if self.target == "label" else torch.as_tensor(self.probs[rows].argmax(1))
        return self.explain(images, targets), split.roi[idx]


def select_metrics(registry: Registry, *, requested: Sequence[str], task: str, has_roi: bool,
                   has_explainer: bool) -> list[Metric]:
    """The metrics a cell computes: every ``default`` metric plus the suite's ``[evaluation] metrics``,
    restricted to those that apply to the dataset (in registration order, round scope first)."""
    out = []
    for name in registry.names("metric"):
        cls = registry.get("metric", name)
        if (cls.default or name in requested) and cls.applies(task=task, has_roi=has_roi, has_explainer=has_explainer):
            out.append(registry.create("metric", name))
    return out


def evaluate(ev: TestEvaluation, metrics: Sequence[Metric]) -> dict[str, float]:
    """Every metric's value on ``ev`` (name → float), plus ``n_roi`` when ROIs were compared."""
    out = {m.name: float(m.compute(ev)) for m in metrics}
    pairs = ev._cache.get("roi_pairs")
    if any(m.needs_roi for m in metrics):
        roi = pairs[1] if pairs is not None else None
        out["n_roi"] = 0.0 if roi is None else float((roi.reshape(roi.shape[0], -1).amax(1) > 0.5).sum().item())
    return out
