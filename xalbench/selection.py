"""The strategy contract's selection rules: top-k with stable ties, NaN refusal, and ``Selection``.

**NaN convention.** A strategy that ranks the unlabelled pool by a score implements
:meth:`xalbench.base.Strategy.scores`; the top ``k`` are taken by :func:`topk_by_score`, which
raises ``StrategyContractError("nan")`` on any NaN/inf score (instead of letting ``argsort``
silently rank NaN first or last), breaks ties by pool position (:func:`stable_topk`) and maps
positions in ``ctx.unlabelled`` to pool indices. These rules are part of the contract: the guard
applies them to every scoring strategy, and strategies that select in ``query`` may call the same
helpers.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from xalbench.errors import StrategyContractError

if TYPE_CHECKING:
    from xalbench.base import StrategyContext

__all__ = ["Selection", "as_numpy", "check_finite", "n_to_query", "stable_topk", "topk_by_score"]


@dataclasses.dataclass(frozen=True, eq=False)
class Selection:
    """A strategy's validated answer for one round: pool ``indices`` (int64, in order) and, for a
    scoring strategy, its ``scores`` aligned with ``ctx.unlabelled`` (float64), else ``None``."""

    indices: np.ndarray
    scores: np.ndarray | None = None


def stable_topk(scores: np.ndarray, k: int) -> np.ndarray:
    """Positions of the ``k`` largest scores, ties broken by lower position (deterministic)."""
    scores = np.asarray(scores, dtype=np.float64)
    order = np.lexsort((np.arange(scores.shape[0]), -scores))
    return order[:k]


def as_numpy(x: Tensor | np.ndarray | Any) -> np.ndarray:
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
