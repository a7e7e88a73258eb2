"""The four information-gain strategies (Mehta et al. 2022): ``eig``, ``aeig``, ``uig``, ``cfig``.

Each implements :meth:`~xalbench.base.Strategy.scores` with
:func:`xalbench_infogain.core.ig_scores` on the round's shared cache
(``ctx.cache.embeddings()``) plus one no-grad forward of the val split (the evaluation
set); the default ``query`` takes the top-``k`` scores.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

import xalbench
from xalbench.base import StrategyContext
from xalbench.errors import UnsupportedError
from xalbench.strategies.common import penultimate_embeddings
from xalbench_infogain.core import Weighting, class_frequencies, ig_scores

__all__ = ["AEIG", "CFIG", "EIG", "UIG", "val_embeddings"]

PAPER = (
    "Mehta, Shui, Nichyporuk & Arbel. Information Gain Sampling for Active Learning in Medical "
    "Image Classification. UNSURE @ MICCAI 2022 (arXiv:2208.00974)"
)


def val_embeddings(ctx: StrategyContext) -> torch.Tensor:
    """Penultimate embeddings of ``ctx.val`` (eval mode, no grad, training flags restored)."""
    bs = ctx.batch_size
    batches = (ctx.val.images[start : start + bs] for start in range(0, len(ctx.val), bs))
    return penultimate_embeddings(ctx.model, batches, ctx.device)


class _InfoGain(xalbench.Strategy):
    weighting: ClassVar[Weighting]
    paper: ClassVar[str] = PAPER
    supports_multilabel: ClassVar[bool] = False  # eq. (1) is a softmax over exclusive classes
    supports_3d: ClassVar[bool] = True  # works on pooled embeddings, any spatial dims

    @dataclass(frozen=True)
    class Options(xalbench.Options):
        """``lr``: size of the single last-layer SGD step (default: the paper's DR learning rate)."""

        lr: float = 5e-4
        chunk_size: int = 128

        def __post_init__(self) -> None:
            if not self.lr > 0:
                raise ValueError(f"lr must be > 0 (the gradient step size), got {self.lr}")
            if self.chunk_size < 1:
                raise ValueError(f"chunk_size must be ≥ 1, got {self.chunk_size}")

    def scores(self, ctx: StrategyContext) -> torch.Tensor:
        """Information gain of every unlabelled sample (aligned with ``ctx.unlabelled``)."""
        if ctx.task != "multi-class":
            raise UnsupportedError(f"strategy {self.name!r} supports multi-class datasets only")
        if len(ctx.val) == 0:
            raise UnsupportedError(f"strategy {self.name!r} needs a non-empty val split (its evaluation set)")
        head = ctx.model.classifier
        freq = class_frequencies(ctx.val.labels, ctx.num_classes)
        return ig_scores(
            head.weight, head.bias, ctx.cache.embeddings(), val_embeddings(ctx), freq,
            weighting=self.weighting, lr=self.options.lr, chunk_size=self.options.chunk_size,
        )


class EIG(_InfoGain):
    """Expected information gain on the val set, eq. (1): ``H1 − Σ_c p(c|x_a) H2(a, c)``."""

    name: ClassVar[str] = "eig"
    summary: ClassVar[str] = "Expected information gain on the val set after one last-layer step (eq. 1)"
    weighting: ClassVar[Weighting] = "eig"


class AEIG(_InfoGain):
    """Adapted EIG, eq. (2): ``P = p(c|x_a) · |y_val = c| / |val|`` (not renormalised, as printed)."""

    name: ClassVar[str] = "aeig"
    summary: ClassVar[str] = "Adapted EIG: softmax weighted by val class frequencies (eq. 2)"
    weighting: ClassVar[Weighting] = "aeig"


class UIG(_InfoGain):
    """Uniform information gain (§4.2): ``P = 1/C``."""

    name: ClassVar[str] = "uig"
    summary: ClassVar[str] = "Information gain with uniform class weights P = 1/C (§4.2)"
    weighting: ClassVar[Weighting] = "uig"


class CFIG(_InfoGain):
    """Class-frequency information gain (§4.2): ``P = |y_val = c| / |val|``."""

    name: ClassVar[str] = "cfig"
    summary: ClassVar[str] = "Information gain with val class-frequency weights (§4.2)"
    weighting: ClassVar[Weighting] = "cfig"
