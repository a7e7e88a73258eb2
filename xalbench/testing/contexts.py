"""Tiny, deterministic strategy contexts for the conformance kit and for tests.

:func:`make_context` builds a :class:`~xalbench.harness.context.StrategyContext` around a
small ``small-cnn`` on random tiny images (2D 16×16 or 3D 8×8×8), with a labelled subset,
a val split and, when asked, visible pool masks. The model is initialised under
``torch.random.fork_rng`` so the global RNG is untouched; same ``seed`` → same context.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import torch

from xalbench.base import Split, Task
from xalbench.harness.context import StrategyContext
from xalbench.models.small_cnn import SmallCNN

__all__ = ["default_explainer", "make_context", "make_split"]


@functools.lru_cache(maxsize=1)
def _gradcam_class() -> Any:
    """The built-in ``gradcam`` class, registered through its own plugin module only
    (loading every installed plugin just for this would be slow)."""
    try:
        from xalbench.explain import plugin as explain_plugin
        from xalbench.plugins import get_plugin_manager, load_registry

        pm = get_plugin_manager(load_entrypoints=False, extra=[explain_plugin])
        return load_registry(pm).get("explainer", "gradcam")
    except Exception:  # noqa: BLE001 - the kit must work without explainers
        return None


def default_explainer() -> Any:
    """A fresh registered ``gradcam`` explainer, or ``None`` if it is not installed."""
    cls = _gradcam_class()
    return None if cls is None else cls()


def _blobs(gen: torch.Generator, n: int, shape: tuple[int, ...]) -> torch.Tensor:
    """Random axis-aligned box ROIs ``n×shape`` in {0, 1}."""
    roi = torch.zeros((n, *shape))
    for i in range(n):
        sl = []
        for size in shape:
            lo = int(torch.randint(0, max(size // 2, 1), (1,), generator=gen))
            sl.append(slice(lo, lo + max(size // 3, 1)))
        roi[(i, *sl)] = 1.0
    return roi


def make_split(n: int, *, task: Task, num_classes: int, spatial_dims: int, seed: int, channels: int = 1) -> Split:
    """A random split with ROIs: images in [0, 1], labels of the task's type."""
    gen = torch.Generator().manual_seed(seed)
    shape = (16, 16) if spatial_dims == 2 else (8, 8, 8)
    images = torch.rand((n, channels, *shape), generator=gen)
    if task == "multi-label":
        labels = (torch.rand((n, num_classes), generator=gen) > 0.5).float()
    else:
        labels = torch.arange(n) % num_classes
        labels = labels[torch.randperm(n, generator=gen)]
    return Split(images=images, labels=labels, roi=_blobs(gen, n, shape))


def make_context(
    *,
    task: Task = "multi-class",
    spatial_dims: int = 2,
    n_pool: int = 40,
    n_labelled: int = 8,
    num_classes: int = 3,
    n_val: int = 12,
    seed: int = 0,
    pool_masks_visible: bool = False,
    explainer: Any = "default",
    dropout: float = 0.25,
) -> StrategyContext:
    """A fresh tiny context; every call with the same arguments is identical."""
    pool = make_split(n_pool, task=task, num_classes=num_classes, spatial_dims=spatial_dims, seed=seed)
    val = make_split(n_val, task=task, num_classes=num_classes, spatial_dims=spatial_dims, seed=seed + 1)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = SmallCNN({"width": 4, "n_blocks": 2, "dropout": dropout}).build(1, num_classes, spatial_dims)
        with torch.no_grad():  # a non-trivial head so probabilities differ between samples
            net.classifier.weight.mul_(8.0)
    net.eval()
    labelled = np.random.default_rng(seed).choice(n_pool, size=n_labelled, replace=False).astype(np.int64)
    lab_idx = torch.as_tensor(labelled)
    if explainer == "default":
        explainer = default_explainer()
    return StrategyContext(
        model=net,
        pool_images=pool.images,
        labelled=labelled,
        labelled_labels=pool.labels[lab_idx],
        labelled_roi=pool.roi[lab_idx] if pool.roi is not None else None,
        labelled_has_roi=pool.has_roi[lab_idx] if pool.has_roi is not None else None,
        val=val,
        task=task,
        num_classes=num_classes,
        spatial_dims=spatial_dims,
        rng=np.random.default_rng(seed),
        device=torch.device("cpu"),
        round_index=0,
        seed=seed,
        explainer=explainer,
        pool_roi=pool.roi,
        pool_has_roi=pool.has_roi,
        pool_masks_visible=pool_masks_visible,
        batch_size=16,
    )
