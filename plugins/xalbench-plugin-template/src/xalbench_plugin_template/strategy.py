"""The ``template-least-confident`` strategy: least confidence, as a ``scores`` rule."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import xalbench


class TemplateLeastConfident(xalbench.Strategy):
    """Query the unlabelled images whose most probable class is least probable (least confidence).

    ``scores`` returns one finite number per sample of ``ctx.unlabelled`` (higher = query first);
    the default ``query`` takes the top ``k``, ties to the lower pool index, and the harness logs
    the scores of what was queried. Replace the body of ``scores`` with your rule; override
    ``query`` only for batch-aware selection.
    """

    name = "template-least-confident"
    summary = "Least confidence: lowest top-class probability first"
    paper = ""
    supports_multilabel = False  # on multi-label data the harness lists the cell as n/a with this reason
    supports_3d = True
    requires_pool_masks = False

    @dataclass(frozen=True)
    class Options(xalbench.Options):
        temperature: float = field(default=1.0, metadata={"doc": "softmax temperature of the logits (> 0)"})

        def __post_init__(self) -> None:
            if not self.temperature > 0:
                raise ValueError(f"temperature must be > 0, got {self.temperature}")

    def scores(self, ctx: xalbench.StrategyContext) -> np.ndarray:
        """Minus the top-class probability of each unlabelled image (read from the round's shared cache)."""
        logits = ctx.cache.logits().double() / self.options.temperature
        return -logits.softmax(1).max(1).values.cpu().numpy()
