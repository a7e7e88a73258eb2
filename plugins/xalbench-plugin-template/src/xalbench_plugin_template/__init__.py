"""A minimal xalbench strategy plugin: copy this package to start your own."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import xalbench


class LeastConfident(xalbench.Strategy):
    """Query the unlabelled images whose predicted class is least probable (ties → lower index)."""

    name = "template-least-confident"
    summary = "Template plugin: lowest top-class probability (copy me)"
    paper = ""
    supports_multilabel = False
    supports_3d = True

    @dataclass(frozen=True)
    class Options(xalbench.Options):
        temperature: float = 1.0

    def query(self, ctx, k: int) -> np.ndarray:
        logits = ctx.cache.logits().double() / self.options.temperature
        confidence = logits.softmax(1).max(1).values.cpu().numpy()
        order = xalbench.stable_topk(-confidence, min(k, len(ctx.unlabelled)))
        return ctx.unlabelled[order]


@xalbench.hookimpl
def register_strategies(register) -> None:
    register(LeastConfident)
