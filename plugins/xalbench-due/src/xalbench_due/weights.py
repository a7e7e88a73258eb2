"""Uncertainty → voxel weights (DUE §4.3; ``get_weights`` of the public code).

``w = sigmoid(−var)`` (the "flipped sigmoid"), then per block of missing slices
``w ← (w − min) / (max(w − min) + eps)`` with ``eps = 1e-6``, so inside each block the most
certain voxel gets ≈ 1 and the least certain 0; annotated slices keep weight 1.

**Constant-variance blocks.** Read literally, the formula gives a block whose variance is the
same everywhere (e.g. a gap between two empty annotated slices, which the interpolator fills
with an empty slice and no spread) weight 0 — no supervision exactly where the interpolation is
most certain. ``constant_block = "one"`` (the plugin's default) gives such a block weight 1;
``"zero"`` keeps the code's behaviour. A block counts as constant when ``max(w) − min(w) ≤ eps``;
above that the code's formula applies unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from xalbench_due.slices import Block

__all__ = ["flipped_sigmoid_minmax", "block_weights", "ConstantBlock"]

ConstantBlock = Literal["one", "zero"]


def flipped_sigmoid_minmax(var: Tensor, *, eps: float = 1e-6, constant_block: ConstantBlock = "one") -> Tensor:
    """Weights of one block: ``(w − min)/(max(w − min) + eps)``, ``w = sigmoid(−var)``.

    >>> flipped_sigmoid_minmax(torch.tensor([0., 1., 2., 3.])).tolist()  # doctest: +ELLIPSIS
    [0.99999..., 0.4894..., 0.1586..., 0.0]
    """
    if constant_block not in ("one", "zero"):
        raise ValueError(f"constant_block must be 'one' or 'zero', got {constant_block!r}")
    w = torch.sigmoid(-var.double())
    shifted = w - w.min()
    spread = shifted.max()
    if float(spread) <= eps:
        fill = 1.0 if constant_block == "one" else 0.0
        return torch.full_like(var, fill)
    return (shifted / (spread + eps)).to(var.dtype)


def block_weights(var: Tensor, blocks: Sequence[Block], positions: np.ndarray, *, eps: float = 1e-6,
                  constant_block: ConstantBlock = "one") -> Tensor:
    """Weight volume ``D×H×W`` from the variance volume: per-block min-max, annotated slices 1.

    Slices that are neither annotated nor in a block (none, for :func:`~xalbench_due.slices.blocks`
    output) keep weight 1.
    """
    out = torch.ones_like(var)
    for blk in blocks:
        sl = slice(blk.lo, blk.hi + 1)
        out[sl] = flipped_sigmoid_minmax(var[sl], eps=eps, constant_block=constant_block)
    pos = torch.as_tensor(np.asarray(positions, dtype=np.int64))
    if pos.numel():
        out[pos] = 1.0
    return out
