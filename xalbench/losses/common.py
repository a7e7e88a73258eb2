"""Helpers shared by the built-in losses: batch checks, the classification term, the output."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from xalbench.base import Batch, LossOutput
from xalbench.errors import ConfigError

__all__ = ["classification_loss", "check_batch", "loss_output"]


def check_batch(batch: Batch) -> None:
    """One clear error for malformed batches (wrong label dtype/shape for the task)."""
    if batch.task not in ("multi-class", "multi-label"):
        raise ConfigError(f"batch.task must be 'multi-class' or 'multi-label', got {batch.task!r}")
    n = batch.images.shape[0]
    if batch.labels.shape[0] != n:
        raise ConfigError(f"batch has {n} images but {batch.labels.shape[0]} labels")
    if batch.task == "multi-class" and (batch.labels.dim() != 1 or batch.labels.dtype.is_floating_point):
        raise ConfigError("multi-class batches need int64 labels of shape (N,); got "
                          f"{batch.labels.dtype} {tuple(batch.labels.shape)}")
    if batch.task == "multi-label" and batch.labels.dim() != 2:
        raise ConfigError(f"multi-label batches need float labels of shape (N, K); got {tuple(batch.labels.shape)}")
    if batch.label_mask is not None and (batch.task != "multi-label"
                                         or tuple(batch.label_mask.shape) != tuple(batch.labels.shape)):
        raise ConfigError("batch.label_mask is for multi-label batches and must be N×K like the labels; got "
                          f"{tuple(batch.label_mask.shape)} for {batch.task} labels {tuple(batch.labels.shape)}")


def classification_loss(logits: Tensor, batch: Batch, weight: Tensor | None = None) -> Tensor:
    """Mean cross-entropy (multi-class) or BCE-with-logits over classes (multi-label).

    ``weight`` (``N``) optionally reweights samples (GRADIA's ``pred_w``); the mean is over samples.
    A multi-label ``batch.label_mask`` leaves unknown labels out (CheXpert's U-Ignore: "ignore the
    uncertain labels during training"): ``Σ_ik w_i m_ik BCE_ik / Σ_ik m_ik``, the mean over known
    labels — equal to the unmasked loss when every label is known; 0 when none is.
    """
    if batch.task == "multi-label" and batch.label_mask is not None:
        mask = batch.label_mask.to(logits.dtype)
        bce = F.binary_cross_entropy_with_logits(logits, batch.labels.to(logits.dtype), reduction="none")
        if weight is not None:
            bce = bce * weight.to(bce)[:, None]
        return (bce * mask).sum() / mask.sum().clamp_min(1)
    if batch.task == "multi-label":
        per = F.binary_cross_entropy_with_logits(logits, batch.labels.to(logits.dtype), reduction="none").mean(1)
    else:
        per = F.cross_entropy(logits, batch.labels.long(), reduction="none")
    if weight is not None:
        per = per * weight.to(per)
    return per.mean() if per.numel() else torch.zeros((), device=logits.device)


def loss_output(total: Tensor, ce: Tensor, expl: Tensor | None, n_annotated: int, **extra: float) -> LossOutput:
    """``LossOutput`` with the logged terms every explanation loss reports: ``ce``, ``explanation``
    (0 without annotated samples), ``n_annotated`` and any ``extra`` values."""
    terms = {"ce": float(ce.detach()), "explanation": 0.0 if expl is None else float(expl.detach()),
             "n_annotated": float(n_annotated)}
    terms.update(extra)
    return LossOutput(total, terms)
