"""The shape every explanation-supervision loss shares: ``CE + scale · explanation term``.

:class:`ExplanationLoss` owns the call: batch checks, one forward (:meth:`~ExplanationLoss.forward`:
logits and the annotated pairs of :mod:`xalbench.losses.supervision`), and the rule that a
batch without annotated pairs gives exactly ``ce``. Otherwise it asks the subclass for
optional no-grad weights (:meth:`~ExplanationLoss.weights`: per-sample CE weights, per-pair
term weights), builds the classification term, then the explanation term
(:meth:`~ExplanationLoss.explanation_term`), and returns
``CE + scale · term`` with the logged terms ``ce``, ``explanation`` and ``n_annotated``.

:class:`CamLoss` is the base of the losses on a differentiable CAM: its forward is
:func:`~xalbench.losses.supervision.forward_with_cam` with the subclass's
:class:`CamSettings`.
"""

from __future__ import annotations

import abc
import dataclasses
from typing import ClassVar, Generic, Literal, Protocol, TypeVar

from torch import Tensor

from xalbench.base import Batch, ExplainableNet, Loss, LossOutput
from xalbench.explain.cam import Method, PostProcess
from xalbench.losses.common import check_batch, classification_loss, loss_output
from xalbench.losses.supervision import CamForward, Pairs, forward_with_cam

__all__ = ["CamLoss", "CamSettings", "ExplanationLoss", "Forward", "Term", "Weights"]

#: an explanation term, or the term and extra values to log
Term = Tensor | tuple[Tensor, dict[str, float]]


class Forward(Protocol):
    """What :meth:`ExplanationLoss.forward` returns: at least the logits and the annotated pairs."""

    logits: Tensor
    pairs: Pairs


FW = TypeVar("FW", bound=Forward)


@dataclasses.dataclass(frozen=True)
class Weights:
    """No-grad weights a loss derives from its forward before the terms are built.

    ``ce``: per sample (``N``), multiplies each sample's classification loss (GRADIA's
    ``pred_w``, CYBORG's α on annotated samples). ``pairs``: per pair (``P``), for the
    explanation term (GRADIA's ``att_w``).
    """

    ce: Tensor | None = None
    pairs: Tensor | None = None


@dataclasses.dataclass(frozen=True)
class CamSettings:
    """How :class:`CamLoss` builds its maps (arguments of :func:`forward_with_cam`)."""

    method: Method = "gradcam"
    cam_target: Literal["label", "pred"] = "label"
    resolution: Literal["feature", "input"] = "input"
    post: PostProcess = PostProcess()
    detach_weights: bool = False
    mask_resize: str = "area"


class ExplanationLoss(Loss, Generic[FW]):
    """``CE + scale · explanation term``; a batch without annotated pairs gives exactly ``ce``.

    ``FW`` is what the subclass's :meth:`forward` returns (:class:`CamForward` for :class:`CamLoss`).
    """

    needs_masks: ClassVar[bool] = True

    @abc.abstractmethod
    def forward(self, model: ExplainableNet, batch: Batch) -> FW:
        """One forward pass: logits, annotated pairs and whatever the term needs."""

    def weights(self, fw: FW, batch: Batch) -> Weights:
        """Per-sample CE and per-pair term weights (no grad); default: none."""
        return Weights()

    @abc.abstractmethod
    def explanation_term(self, fw: FW, batch: Batch, weights: Weights) -> Term:
        """The explanation term over the annotated pairs (called only when there are some)."""

    @property
    def scale(self) -> float:
        """The term's factor in the total; default: option ``lam``."""
        return float(self.options.lam)  # type: ignore[attr-defined]

    def n_annotated(self, fw: FW) -> int:
        """What ``n_annotated`` logs; default: the number of pairs."""
        return len(fw.pairs)

    def __call__(self, model: ExplainableNet, batch: Batch) -> LossOutput:
        check_batch(batch)
        fw = self.forward(model, batch)
        if len(fw.pairs) == 0:
            ce = classification_loss(fw.logits, batch)
            return loss_output(ce, ce, None, 0)
        weights = self.weights(fw, batch)
        ce = classification_loss(fw.logits, batch, weight=weights.ce)
        term = self.explanation_term(fw, batch, weights)
        expl, extra = term if isinstance(term, tuple) else (term, {})
        return loss_output(ce + self.scale * expl, ce, expl, self.n_annotated(fw), **extra)


class CamLoss(ExplanationLoss[CamForward]):
    """An :class:`ExplanationLoss` on differentiable CAMs of the annotated pairs."""

    @abc.abstractmethod
    def cam(self) -> CamSettings:
        """The CAM method, target, resolution and post-processing this loss uses."""

    def forward(self, model: ExplainableNet, batch: Batch) -> CamForward:
        s = self.cam()
        return forward_with_cam(model, batch, method=s.method, cam_target=s.cam_target, resolution=s.resolution,
                                post=s.post, detach_weights=s.detach_weights, mask_resize=s.mask_resize)
