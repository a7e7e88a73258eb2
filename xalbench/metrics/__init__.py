"""Metrics: pure definitions (:mod:`.functions`), the registered-metric contract (:mod:`.base`),
the built-in registrations (:mod:`.builtin`) and per-suite selection (:mod:`.table`)."""

from __future__ import annotations

from xalbench.metrics.functions import (
    aulc,
    budget_to_fraction,
    classification_metrics,
    dice_topn,
    explanation_metrics,
    iou_at,
    pointing_game,
    soft_dice,
)

__all__ = [
    "aulc",
    "budget_to_fraction",
    "classification_metrics",
    "dice_topn",
    "explanation_metrics",
    "iou_at",
    "pointing_game",
    "soft_dice",
]
