"""Diversity strategies on penultimate embeddings: ``coreset`` and ``badge``.

``coreset`` (Sener & Savarese, ICLR 2018): k-center greedy on ``ctx.cache.embeddings()``,
seeded with the labelled set's embeddings (computed here with ``ctx.model`` in eval mode
under ``torch.no_grad``; training flags are restored). Each step adds the unlabelled
point farthest (Euclidean) from every centre so far; ties → lowest pool position.
With an empty labelled set the first centre is drawn with ``ctx.rng``.

``badge`` (Ash et al., ICLR 2020): k-means++ seeding on gradient embeddings
``g = (p − onehot(ŷ)) ⊗ e`` (gradient of the CE loss w.r.t. the last layer for the
hypothesised label ``ŷ = argmax p``). The first centre is the largest ``‖g‖`` (as the
reference code does), then D² sampling with ``ctx.rng``. The ``U×(K·d)`` matrix is never
built: ``⟨g_a, g_b⟩ = ⟨r_a, r_b⟩·⟨e_a, e_b⟩`` with ``r = p − onehot(ŷ)``.
Multi-label: sigmoid/BCE gradient with ``ŷ = [p > 0.5]``, same formula.

Both are label-agnostic geometry, so both support multi-label and 3D.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from xalbench.base import Strategy, StrategyContext
from xalbench.options import Options
from xalbench.strategies.common import check_finite, n_to_query, penultimate_embeddings

__all__ = ["BADGE", "CoreSet", "labelled_embeddings"]


def labelled_embeddings(ctx: StrategyContext) -> torch.Tensor:
    """Penultimate embeddings of ``ctx.labelled`` (eval mode, no grad, flags restored)."""
    idx, bs = torch.as_tensor(ctx.labelled), ctx.batch_size
    batches = (ctx.pool_images[idx[start : start + bs]] for start in range(0, len(idx), bs))
    return penultimate_embeddings(ctx.model, batches, ctx.device)


def _sq_dist(x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Squared Euclidean distances ``|x|×|c|`` (clamped at 0)."""
    return ((x * x).sum(1, keepdim=True) + (c * c).sum(1)[None, :] - 2.0 * x @ c.T).clamp_min(0.0)


class CoreSet(Strategy):
    """Greedy k-center (Sener & Savarese 2018, Alg. 1) on penultimate embeddings."""

    name: ClassVar[str] = "coreset"
    summary: ClassVar[str] = "Core-set greedy k-center on penultimate embeddings, seeded with the labelled set"
    paper: ClassVar[str] = "Sener & Savarese. Active Learning for Convolutional Neural Networks: A Core-Set Approach. ICLR 2018"
    supports_multilabel: ClassVar[bool] = True
    supports_3d: ClassVar[bool] = True

    @dataclass(frozen=True)
    class Options(Options):
        chunk_size: int = 1024

    def query(self, ctx: StrategyContext, k: int) -> np.ndarray:
        n = n_to_query(ctx, k)
        x = ctx.cache.embeddings().detach().double()
        check_finite(x.cpu().numpy(), f"strategy {self.name!r} (embeddings)")
        u = x.shape[0]
        min_d = torch.full((u,), float("inf"), dtype=torch.float64, device=x.device)
        centres = labelled_embeddings(ctx).double()
        for start in range(0, centres.shape[0], self.options.chunk_size):
            chunk = centres[start : start + self.options.chunk_size]
            min_d = torch.minimum(min_d, _sq_dist(x, chunk).min(1).values)
        chosen: list[int] = []
        for step in range(n):
            if step == 0 and centres.shape[0] == 0:
                pick = int(ctx.rng.integers(u))
            else:
                pick = int(torch.argmax(min_d))  # first maximum → lowest position
            chosen.append(pick)
            min_d = torch.minimum(min_d, _sq_dist(x, x[pick : pick + 1]).squeeze(1))
            min_d[pick] = -1.0  # never re-picked
        return ctx.unlabelled[np.asarray(chosen, dtype=np.int64)].astype(np.int64)


class BADGE(Strategy):
    """Batch Active learning by Diverse Gradient Embeddings (Ash et al. 2020): k-means++ on ``(p − ŷ) ⊗ e``."""

    name: ClassVar[str] = "badge"
    summary: ClassVar[str] = "BADGE: k-means++ seeding on last-layer gradient embeddings"
    paper: ClassVar[str] = (
        "Ash, Zhang, Krishnamurthy, Langford & Agarwal. Deep Batch Active Learning by Diverse, "
        "Uncertain Gradient Lower Bounds. ICLR 2020"
    )
    supports_multilabel: ClassVar[bool] = True
    supports_3d: ClassVar[bool] = True

    def query(self, ctx: StrategyContext, k: int) -> np.ndarray:
        n = n_to_query(ctx, k)
        e = ctx.cache.embeddings().detach().double()
        p = ctx.cache.probs().detach().double()
        if ctx.task == "multi-label":
            r = p - (p > 0.5).double()
        else:
            r = p - torch.nn.functional.one_hot(p.argmax(1), p.shape[1]).double()
        check_finite(r.cpu().numpy(), f"strategy {self.name!r} (probabilities)")
        check_finite(e.cpu().numpy(), f"strategy {self.name!r} (embeddings)")
        norms = (r * r).sum(1) * (e * e).sum(1)  # ‖g‖² = ‖r‖²‖e‖²
        chosen: list[int] = []
        min_d = torch.full_like(norms, float("inf"))
        for step in range(n):
            if step == 0:
                pick = int(torch.argmax(norms))
            else:
                w = min_d.clamp_min(0.0).cpu().numpy()
                w[chosen] = 0.0
                total = float(w.sum())
                if total > 0 and np.isfinite(total):
                    pick = int(ctx.rng.choice(len(w), p=w / total))
                else:  # every remaining point coincides with a centre: uniform over the rest
                    rest = np.setdiff1d(np.arange(len(w)), chosen)
                    pick = int(ctx.rng.choice(rest))
            chosen.append(pick)
            d = norms + norms[pick] - 2.0 * (r @ r[pick]) * (e @ e[pick])  # ‖g_a − g_pick‖²
            min_d = torch.minimum(min_d, d.clamp_min(0.0))
            min_d[pick] = 0.0
        return ctx.unlabelled[np.asarray(chosen, dtype=np.int64)].astype(np.int64)
