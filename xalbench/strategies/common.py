"""Shared helpers for query strategies: entropies and penultimate embeddings.

The contract's selection rules (:func:`topk_by_score`, :func:`check_finite`, :func:`n_to_query`,
:func:`as_numpy`) live in :mod:`xalbench.selection` and are re-exported here for the strategies
that import them from this module.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from xalbench.selection import as_numpy, check_finite, n_to_query, topk_by_score
from xalbench.utils.torch_modes import eval_mode

if TYPE_CHECKING:
    from xalbench.base import ExplainableNet

__all__ = [
    "as_numpy",
    "binary_entropy",
    "categorical_entropy",
    "check_finite",
    "n_to_query",
    "penultimate_embeddings",
    "topk_by_score",
]

_EPS = 1e-12


def categorical_entropy(p: Tensor, dim: int = -1) -> Tensor:
    """Shannon entropy ``-Σ p log p`` (nats) along ``dim``; ``0 log 0 = 0``."""
    return -(p * torch.log(p.clamp_min(_EPS))).sum(dim)


def binary_entropy(p: Tensor) -> Tensor:
    """Elementwise entropy of Bernoulli(p) (nats)."""
    q = 1.0 - p
    return -(p * torch.log(p.clamp_min(_EPS)) + q * torch.log(q.clamp_min(_EPS)))


def penultimate_embeddings(model: ExplainableNet, batches: Iterable[Tensor], device: torch.device) -> Tensor:
    """``model.embed(model.features(x))`` of each batch ``x``, concatenated (eval mode, no grad,
    training flags restored); ``0×d`` when there are no batches."""
    out = []
    with eval_mode(model), torch.no_grad():
        for x in batches:
            out.append(model.embed(model.features(x.to(device))))
    if not out:
        return torch.zeros(0, model.classifier.in_features, device=device)
    return torch.cat(out)
