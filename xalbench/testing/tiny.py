"""Tiny deterministic models, images and batches for the loss and explainer kits.

:func:`tiny_net` is a 2-block ``small-cnn`` (1 input channel, 3 classes; 2D 16×16 inputs give
an 8×8 explanation layer, 3D 8×8×8 a 4×4×4 one) whose BatchNorm statistics are moved away
from their defaults (so train and eval mode differ) and whose classifier weights are scaled
(so classes give different maps). Everything is built under ``torch.random.fork_rng``: the
global RNG is untouched and the same ``seed`` gives the same objects.
"""

from __future__ import annotations

import torch
from torch import Tensor

from xalbench.base import Batch, ExplainableNet, Task
from xalbench.models.small_cnn import SmallCNN

__all__ = ["NUM_CLASSES", "tiny_batch", "tiny_images", "tiny_net", "tiny_shape"]

NUM_CLASSES = 3


def tiny_shape(spatial_dims: int) -> tuple[int, ...]:
    return (16, 16) if spatial_dims == 2 else (8, 8, 8)


def tiny_net(spatial_dims: int = 2, *, seed: int = 0, dropout: float = 0.25) -> ExplainableNet:
    """A small-cnn in eval mode with moved BatchNorm statistics (see the module docstring)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = SmallCNN({"width": 4, "n_blocks": 2, "dropout": dropout}).build(1, NUM_CLASSES, spatial_dims)
        with torch.no_grad():
            net.classifier.weight.mul_(8.0)
            net.train()
            net(torch.rand(8, 1, *tiny_shape(spatial_dims)) * 2.0)
    return net.eval()


def tiny_images(n: int = 4, spatial_dims: int = 2, *, seed: int = 1) -> Tensor:
    """Images in [0, 1], ``n×1×(16×16 | 8×8×8)``."""
    return torch.rand((n, 1, *tiny_shape(spatial_dims)), generator=torch.Generator().manual_seed(seed))


def _boxes(n: int, shape: tuple[int, ...], gen: torch.Generator) -> Tensor:
    roi = torch.zeros((n, *shape))
    for i in range(n):
        sl = []
        for size in shape:
            lo = int(torch.randint(0, size // 2, (1,), generator=gen))
            sl.append(slice(lo, lo + max(size // 3, 1)))
        roi[(i, *sl)] = 1.0
    return roi


def tiny_batch(
    n: int = 6,
    *,
    task: Task = "multi-class",
    spatial_dims: int = 2,
    masks: bool = True,
    seed: int = 2,
) -> Batch:
    """A batch with labels of the task's type; with ``masks``, box ROIs on the first half of the samples
    (``has_roi`` True there, False elsewhere), per-class ROIs for multi-label and, in 3D, annotated slices."""
    gen = torch.Generator().manual_seed(seed)
    shape = tiny_shape(spatial_dims)
    images = torch.rand((n, 1, *shape), generator=gen)
    if task == "multi-label":
        labels = (torch.rand((n, NUM_CLASSES), generator=gen) > 0.5).float()
        labels[:, 0] = 1.0  # every sample has a positive class
    else:
        labels = torch.arange(n) % NUM_CLASSES
    if not masks:
        return Batch(images=images, labels=labels, task=task, index=torch.arange(n))
    roi = _boxes(n, shape, gen)
    has_roi = torch.arange(n) < (n + 1) // 2
    roi[~has_roi] = 0.0
    class_roi = None
    if task == "multi-label":
        class_roi = roi[:, None].repeat(1, NUM_CLASSES, *([1] * len(shape))) * labels.reshape(n, NUM_CLASSES,
                                                                                             *([1] * len(shape)))
    annotated = None
    if spatial_dims == 3:
        annotated = torch.zeros((n, shape[0]), dtype=torch.bool)
        annotated[has_roi, :: 2] = True
    return Batch(images=images, labels=labels, task=task, roi=roi, has_roi=has_roi, class_roi=class_roi,
                 annotated_slices=annotated, index=torch.arange(n))
