"""Classic single-pass strategies: random, entropy, margin, least-confidence.

The three uncertainty strategies implement :meth:`~xalbench.base.Strategy.scores` from
``ctx.cache.probs()`` (one shared eval-mode pass per round); the default ``query`` picks the
top-``k`` with :func:`~xalbench.strategies.common.topk_by_score` (ties → lower pool
position). ``k`` larger than the unlabelled pool returns all of it.

Multi-label (sigmoid outputs, one Bernoulli per label) aggregation, used by all three
uncertainty scores: the score of a sample is the **mean over labels** of the per-label
binary score (binary entropy; ``1 - max(p, 1-p)``; ``-|2p - 1|``).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch

from xalbench.base import Strategy, StrategyContext
from xalbench.strategies.common import binary_entropy, categorical_entropy, n_to_query

__all__ = ["EntropySampling", "LeastConfidence", "MarginSampling", "RandomSampling"]

_SETTLES = "Settles, B. Active Learning Literature Survey. University of Wisconsin-Madison TR 1648 (2009)"


class RandomSampling(Strategy):
    """Uniformly random unlabelled samples drawn with ``ctx.rng`` (the baseline)."""

    name: ClassVar[str] = "random"
    summary: ClassVar[str] = "Uniformly random unlabelled samples (baseline)"
    paper: ClassVar[str] = ""
    supports_multilabel: ClassVar[bool] = True
    supports_3d: ClassVar[bool] = True

    def query(self, ctx: StrategyContext, k: int) -> np.ndarray:
        n = n_to_query(ctx, k)
        return ctx.rng.choice(ctx.unlabelled, size=n, replace=False).astype(np.int64)


class _ScoreStrategy(Strategy):
    """Top-k by an uncertainty score of ``ctx.cache.probs()``; higher score = queried first."""

    supports_multilabel: ClassVar[bool] = True
    supports_3d: ClassVar[bool] = True

    def score(self, probs: torch.Tensor, multilabel: bool) -> torch.Tensor:  # pragma: no cover - abstract
        """The score of each row of ``probs`` (``U×K``, float64)."""
        raise NotImplementedError

    def scores(self, ctx: StrategyContext) -> torch.Tensor:
        return self.score(ctx.cache.probs().detach().double(), ctx.task == "multi-label")


class EntropySampling(_ScoreStrategy):
    """Predictive entropy ``H[p(y|x)] = -Σ_c p_c log p_c`` (multi-label: mean binary entropy)."""

    name: ClassVar[str] = "entropy"
    summary: ClassVar[str] = "Highest predictive entropy (multi-label: mean binary entropy over labels)"
    paper: ClassVar[str] = _SETTLES

    def score(self, probs: torch.Tensor, multilabel: bool) -> torch.Tensor:
        return binary_entropy(probs).mean(1) if multilabel else categorical_entropy(probs, 1)


class LeastConfidence(_ScoreStrategy):
    """``1 - max_c p_c`` (multi-label: mean over labels of ``1 - max(p, 1-p)``)."""

    name: ClassVar[str] = "least-confidence"
    summary: ClassVar[str] = "Lowest top-class probability, score 1 - max p (multi-label: mean over labels)"
    paper: ClassVar[str] = _SETTLES

    def score(self, probs: torch.Tensor, multilabel: bool) -> torch.Tensor:
        if multilabel:
            return (1.0 - torch.maximum(probs, 1.0 - probs)).mean(1)
        return 1.0 - probs.max(1).values


class MarginSampling(_ScoreStrategy):
    """Smallest gap between the two most likely classes, score ``-(p_(1) - p_(2))``.

    Multi-label: per label the two outcomes are ``p`` and ``1-p``, so the margin is
    ``|2p - 1|``; the score is minus its mean over labels. A one-class model has margin 1.
    """

    name: ClassVar[str] = "margin"
    summary: ClassVar[str] = "Smallest top-1 minus top-2 probability margin (multi-label: mean |2p-1|)"
    paper: ClassVar[str] = _SETTLES

    def score(self, probs: torch.Tensor, multilabel: bool) -> torch.Tensor:
        if multilabel:
            return -(2.0 * probs - 1.0).abs().mean(1)
        if probs.shape[1] < 2:
            return -torch.ones(probs.shape[0], dtype=probs.dtype)
        top2 = probs.topk(2, dim=1).values
        return -(top2[:, 0] - top2[:, 1])
