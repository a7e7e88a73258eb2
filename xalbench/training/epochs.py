"""Training one round: from the round's initial weights, on the labelled set, with the loss.

Mini-batches come from a seeded permutation (drawn for every epoch before the first step;
no worker RNG); the model trains in ``train()`` mode; the loss receives
:class:`~xalbench.base.Batch` with only the *revealed* masks (``has_roi`` False elsewhere).
Images of a mapped (prepared-cache) split are read from the map batch by batch, optionally
ahead by ``DataLoader`` workers (:func:`~xalbench.data.mapped_pool.read_batches`: the same
batches in the same order); in-memory images are indexed per step as always.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from xalbench.base import Batch, ExplainableNet, Loss, Split, Task
from xalbench.data.mapped import MappedArray, lazy_take
from xalbench.data.mapped_pool import is_mapped, read_batches
from xalbench.suite import TrainingSpec

__all__ = ["make_batch", "train_round", "make_optimizer", "recalibrate_batchnorm"]


def make_batch(split: Split, idx: np.ndarray, mask_revealed: np.ndarray, task: Task, device: torch.device,
               images: torch.Tensor | None = None) -> Batch:
    """A batch of pool rows ``idx``; ROIs only where ``mask_revealed`` (aligned with idx);
    ``images`` = ``split.images[idx]`` when already read."""
    t_idx = torch.as_tensor(idx, dtype=torch.long)
    revealed = torch.as_tensor(mask_revealed, dtype=torch.bool)
    roi = has_roi = class_roi = annotated = None
    if split.roi is not None:
        has_roi = split.has_roi[t_idx].bool() & revealed
        shape = (-1,) + (1,) * (split.roi.dim() - 1)
        roi = (split.roi[t_idx] * has_roi.view(shape).float()).to(device)
        has_roi = has_roi.to(device)
        if split.class_roi is not None:
            cshape = (-1,) + (1,) * (split.class_roi.dim() - 1)
            class_roi = (split.class_roi[t_idx] * has_roi.cpu().view(cshape).float()).to(device)
        if split.annotated_slices is not None:
            annotated = (split.annotated_slices[t_idx] & has_roi.cpu()[:, None]).to(device)
    return Batch(
        images=(split.images[t_idx] if images is None else images).to(device),
        labels=split.labels[t_idx].to(device),
        task=task,
        roi=roi,
        has_roi=has_roi,
        class_roi=class_roi,
        annotated_slices=annotated,
        index=t_idx.to(device),
        label_mask=None if split.label_mask is None else split.label_mask[t_idx].to(device),
    )


def make_optimizer(model: torch.nn.Module, spec: TrainingSpec) -> torch.optim.Optimizer:
    if spec.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=spec.lr, momentum=spec.momentum, weight_decay=spec.weight_decay)
    return torch.optim.Adam(model.parameters(), lr=spec.lr, weight_decay=spec.weight_decay)


def train_round(
    model: ExplainableNet,
    loss_fn: Loss,
    pool: Split,
    labelled: np.ndarray,
    mask_revealed: np.ndarray,
    spec: TrainingSpec,
    task: Task,
    generator: torch.Generator,
    device: torch.device,
) -> dict[str, float]:
    """Train for ``max(epochs, ⌈min_steps / batches per epoch⌉)`` epochs; returns the last
    epoch's mean loss terms. ``min_steps`` keeps tiny early-round labelled sets from being
    under-trained (a fixed epoch count gives a 60-sample set only a dozen steps)."""
    optimizer = make_optimizer(model, spec)
    model.train()
    n = len(labelled)
    terms: dict[str, float] = {}
    if n == 0:
        return terms
    n_batches = math.ceil(n / spec.batch_size)
    epochs = max(spec.epochs, math.ceil(spec.min_steps / n_batches))
    plan = [_epoch_batches(torch.randperm(n, generator=generator).numpy(), n_batches, spec.batch_size)
            for _epoch in range(epochs)]
    reader = read_batches(pool.images, [labelled[pos] for steps in plan for pos in steps]) \
        if is_mapped(pool.images) else None
    for steps in plan:
        sums: dict[str, float] = {}
        for pos in steps:
            images = None if reader is None else next(reader)
            batch = make_batch(pool, labelled[pos], mask_revealed[pos], task, device, images)
            out = loss_fn(model, batch)
            optimizer.zero_grad(set_to_none=True)
            out.total.backward()
            optimizer.step()
            sums["loss"] = sums.get("loss", 0.0) + float(out.total.detach())
            for key, value in out.terms.items():
                sums[key] = sums.get(key, 0.0) + float(value)
        terms = {k: v / n_batches for k, v in sums.items()}
    if spec.recalibrate_bn:
        recalibrate_batchnorm(model, lazy_take(pool.images, labelled), spec.batch_size, device)
    return terms


def _epoch_batches(order: np.ndarray, n_batches: int, batch_size: int) -> list[np.ndarray]:
    """One epoch's batches (positions into the labelled set) from its permutation ``order``."""
    n, out = len(order), []
    for b in range(n_batches):
        pos = order[b * batch_size : (b + 1) * batch_size]
        if len(pos) < 2 and n >= 2:  # BatchNorm needs ≥2 samples; fold a lone sample back in
            pos = order[max(0, b * batch_size - 1) : (b + 1) * batch_size]
        out.append(pos)
    return out


def recalibrate_batchnorm(model: torch.nn.Module, images: torch.Tensor | MappedArray, batch_size: int,
                          device: torch.device) -> None:
    """Recompute BatchNorm running statistics as exact averages over ``images``.

    With a small labelled set a round takes only tens of optimiser steps; BatchNorm's
    exponential running averages (momentum 0.1) are then still far from the data and the
    model in ``eval()`` mode predicts one class. Like SWA's ``update_bn`` (which this calls),
    one no-grad pass in train mode with cumulative averaging fixes that. Deterministic.
    """
    from torch.optim.swa_utils import update_bn

    if not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules()):
        return
    n = int(images.shape[0])
    bounds = [[s, min(s + batch_size, n)] for s in range(0, n, batch_size)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] < 2:  # fold a lone sample into the previous batch
        bounds[-2][1] = bounds.pop()[1]
    if is_mapped(images):  # read batch by batch (a mapped labelled set is never held whole)
        batches = (x.to(device) for x in read_batches(images, [np.arange(a, b) for a, b in bounds]))
        update_bn(batches, model)
    else:
        update_bn([images[a:b].to(device) for a, b in bounds], model)
