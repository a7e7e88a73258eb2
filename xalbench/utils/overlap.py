"""Overlap of saliency maps with masks, shared by the explanation losses and the metrics."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import Tensor

__all__ = ["soft_dice"]


def soft_dice(s: Tensor, m: Tensor, eps: float) -> Tensor:
    """Per-row soft Dice ``2Σ(s·m) / (Σs + Σm + eps)`` over all but the first axis (EG-AL eq. 2).

    Differentiable; ``eps`` is the caller's (the ``dice`` loss uses 1e-6, the metric 1e-8),
    so each keeps its own numbers.
    """
    s, m = s.flatten(1), m.flatten(1)
    return 2 * (s * m).sum(1) / (s.sum(1) + m.sum(1) + eps)
