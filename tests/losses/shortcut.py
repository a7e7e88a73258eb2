"""A tiny shortcut dataset: the class lives in a lesion (ROI); a corner marker predicts the label too."""

from __future__ import annotations

import torch
from torch import Tensor

from xalbench.base import Batch
from xalbench.explain.cam import PostProcess, explain_images


def make_shortcut(n: int, seed: int, size: int = 16, dims: int = 2) -> tuple[Tensor, Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed)
    shape = (size,) * dims
    x = 0.2 * torch.rand(n, 1, *shape, generator=g)
    roi = torch.zeros(n, *shape)
    y = torch.arange(n) % 2
    for i in range(n):
        lo = [int(torch.randint(5, size - 7, (1,), generator=g)) for _ in range(dims)]
        sl = tuple(slice(a, a + 5) for a in lo)
        roi[(i, *sl)] = 1
        # class signal: a bright lesion (class 1) or a faint one (class 0), with texture
        lesion = (0.8 if y[i] == 1 else 0.45) + 0.1 * torch.rand(*(5,) * dims, generator=g)
        x[(i, 0, *sl)] = lesion
        if y[i] == 1:  # shortcut marker in the corner, outside every ROI
            x[(i, 0, *(slice(0, 3),) * dims)] = 1.0
    return x, y, roi


def roi_dice(model, x: Tensor, y: Tensor, roi: Tensor, relu: bool = True) -> float:
    """Top-N Dice between the true-class Grad-CAM and the ROI (N = |ROI|), mean over samples."""
    maps = explain_images(model, x, y, post=PostProcess(relu=relu)).flatten(1)
    m = roi.flatten(1)
    n_top = m.sum(1).long()
    scores = []
    for i in range(x.shape[0]):
        top = torch.zeros_like(maps[i])
        top[torch.argsort(maps[i], descending=True, stable=True)[: int(n_top[i])]] = 1
        scores.append(float((top * m[i]).sum() / n_top[i]))
    return sum(scores) / len(scores)


def batch(x: Tensor, y: Tensor, roi: Tensor | None) -> Batch:
    return Batch(x, y, "multi-class", roi=roi, has_roi=None if roi is None else roi.flatten(1).amax(1) > 0)
