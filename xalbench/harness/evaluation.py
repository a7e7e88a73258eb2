"""Test-set evaluation of one round: classification metrics and explanation vs ROI.

Explanation target (suite ``[evaluation] target``): ``label`` (default) explains the
ground-truth class — "right for the right reasons" is about the true finding — or
``pred`` the predicted class. Multi-label with per-finding ROIs: every (sample, positive
finding) pair compares that finding's map with its own ROI; without ``class_roi`` the
union ROI is compared with the map of the first positive finding.
"""

from __future__ import annotations

import numpy as np
import torch

from xalbench.base import ExplainableNet, Explainer, Split, Task
from xalbench.harness.context import EvalMode
from xalbench.metrics import classification_metrics, explanation_metrics

__all__ = ["evaluate"]


def _scores(model: ExplainableNet, split: Split, task: Task, device: torch.device, bs: int) -> torch.Tensor:
    out = []
    with torch.no_grad(), EvalMode(model):
        for s in range(0, len(split), bs):
            z = model(split.images[s : s + bs].to(device))
            out.append(torch.sigmoid(z) if task == "multi-label" else torch.softmax(z, 1))
    return torch.cat(out).cpu()


def _maps(model: ExplainableNet, explainer: Explainer, images: torch.Tensor, targets: torch.Tensor | None,
          all_classes: bool, device: torch.device, bs: int) -> torch.Tensor:
    out = []
    with EvalMode(model):
        for s in range(0, images.shape[0], bs):
            x = images[s : s + bs].to(device)
            t = None if targets is None else targets[s : s + bs].to(device)
            out.append(explainer.explain(model, x, t, all_classes=all_classes).detach().cpu())
    return torch.cat(out)


def evaluate(model: ExplainableNet, split: Split, *, task: Task, explainer: Explainer | None, target: str,
             device: torch.device, batch_size: int = 256) -> dict[str, float]:
    scores = _scores(model, split, task, device, batch_size)
    labels = split.labels.numpy()
    metrics = classification_metrics(scores.numpy(), labels, task)
    nan = float("nan")
    metrics.update({"dice": nan, "soft_dice": nan, "iou": nan, "pointing": nan, "n_roi": 0.0})
    if explainer is None or split.roi is None:
        return metrics
    has = split.has_roi.numpy().astype(bool) if split.has_roi is not None else np.ones(len(split), bool)
    rows = np.flatnonzero(has)
    if rows.size == 0:
        return metrics
    idx = torch.as_tensor(rows)
    images = split.images[idx]
    if task == "multi-label":
        maps = _maps(model, explainer, images, None, True, device, batch_size)  # N×K×...
        lab = split.labels[idx] > 0.5
        if split.class_roi is not None:
            croi = split.class_roi[idx]
            sel = lab & (croi.flatten(2).amax(2) > 0)
            metrics.update(explanation_metrics(maps[sel], croi[sel]))
        else:
            first = lab.float().argmax(1)
            pick = maps[torch.arange(maps.shape[0]), first]
            metrics.update(explanation_metrics(pick, split.roi[idx]))
        return metrics
    targets = split.labels[idx] if target == "label" else torch.as_tensor(scores.numpy()[rows].argmax(1))
    maps = _maps(model, explainer, images, targets, False, device, batch_size)
    metrics.update(explanation_metrics(maps, split.roi[idx]))
    return metrics
