"""``ce``: the classification loss alone (no explanation supervision)."""

from __future__ import annotations

from typing import ClassVar

from xalbench.base import Batch, ExplainableNet, Loss, LossOutput
from xalbench.losses.common import check_batch, classification_loss

__all__ = ["CrossEntropyLoss"]


class CrossEntropyLoss(Loss):
    """Cross-entropy (multi-class) or mean binary cross-entropy with logits (multi-label)."""

    name: ClassVar[str] = "ce"
    summary: ClassVar[str] = "Cross-entropy (multi-class) / BCE-with-logits (multi-label); no explanation term"
    paper: ClassVar[str] = ""
    needs_masks: ClassVar[bool] = False

    def __call__(self, model: ExplainableNet, batch: Batch) -> LossOutput:
        check_batch(batch)
        logits = model.head(model.features(batch.images))
        total = classification_loss(logits, batch)
        return LossOutput(total, {"ce": float(total.detach())})
