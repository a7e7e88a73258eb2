"""Shared helpers for query strategies.

**NaN convention.** A strategy that ranks the unlabelled pool by a score implements
:meth:`xalbench.base.Strategy.scores`; the default ``query`` calls :func:`topk_by_score`,
which raises ``StrategyContractError("nan")`` on any NaN/inf score (instead of letting
``argsort`` silently rank NaN first or last), breaks ties by pool position
(:func:`xalbench.base.stable_topk`) and maps positions in ``ctx.unlabelled`` to pool
indices.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from xalbench.base import stable_topk
from xalbench.errors import StrategyContractError
from xalbench.utils.torch_modes import eval_mode

if TYPE_CHECKING:
    from xalbench.base import ExplainableNet, StrategyContext

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


def as_numpy(x: Tensor | np.ndarray) -> np.ndarray:
    """A float64 numpy copy of a tensor or array (detached, on the CPU)."""
    if isinstance(x, Tensor):
        return x.detach().to("cpu", torch.float64).numpy()
    return np.asarray(x, dtype=np.float64)


def n_to_query(ctx: StrategyContext, k: int) -> int:
    """``min(k, |unlabelled|)``: asking for more than the pool returns the whole pool."""
    if k < 0:
        raise StrategyContractError("count", f"k must be ≥ 0, got {k}")
    return int(min(k, len(ctx.unlabelled)))


def check_finite(scores: np.ndarray, who: str = "strategy") -> np.ndarray:
    """Return ``scores`` as float64; raise ``StrategyContractError("nan")`` if any is NaN/inf."""
    arr = np.asarray(scores, dtype=np.float64)
    bad = ~np.isfinite(arr)
    if bad.any():
        first = int(np.flatnonzero(bad.ravel())[0])
        raise StrategyContractError(
            "nan",
            f"{who} produced {int(bad.sum())} non-finite score(s) (first at position {first}); "
            "check the model's outputs or clamp probabilities before taking logs",
        )
    return arr


def topk_by_score(scores: Tensor | np.ndarray, ctx: StrategyContext, k: int, *, who: str = "strategy") -> np.ndarray:
    """Pool indices of the ``min(k, U)`` highest ``scores`` (aligned with ``ctx.unlabelled``).

    Raises ``StrategyContractError("nan")`` on non-finite scores and
    ``StrategyContractError("count")`` if ``scores`` is not aligned with ``ctx.unlabelled``.
    """
    arr = check_finite(as_numpy(scores).reshape(-1), who)
    if arr.shape[0] != len(ctx.unlabelled):
        raise StrategyContractError(
            "count", f"{who} scored {arr.shape[0]} samples but the unlabelled pool has {len(ctx.unlabelled)}"
        )
    pos = stable_topk(arr, n_to_query(ctx, k))
    return ctx.unlabelled[pos].astype(np.int64)


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
