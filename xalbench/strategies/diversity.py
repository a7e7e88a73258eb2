"""Diversity strategies on penultimate embeddings: ``coreset`` and ``badge``.

``coreset`` (Sener & Savarese, ICLR 2018): k-center greedy on ``ctx.cache.embeddings()``,
seeded with the labelled set's embeddings (computed here with ``ctx.model`` in eval mode
under ``torch.no_grad``; training flags are restored). Each step adds the unlabelled
point farthest (Euclidean) from every centre so far (Alg. 1: ``u = argmax_i min_j Δ(x_i, x_j)``);
ties → lowest pool position. With an empty labelled set the first centre is drawn with ``ctx.rng``.

``badge`` (Ash et al., ICLR 2020): k-means++ seeding on gradient embeddings
``g = (p − onehot(ŷ)) ⊗ e`` (gradient of the CE loss w.r.t. the last layer for the
hypothesised label ``ŷ = argmax p``). The first centre is the largest ``‖g‖`` (as the
reference code does), then D² sampling with ``ctx.rng``. The ``U×(K·d)`` matrix is never
built: ``⟨g_a, g_b⟩ = ⟨r_a, r_b⟩·⟨e_a, e_b⟩`` with ``r = p − onehot(ŷ)``.
Multi-label: sigmoid/BCE gradient with ``ŷ = [p > 0.5]``, same formula.

Both are label-agnostic geometry, so both support multi-label and 3D.

**Memory.** Every distance is computed in float64 over blocks of pool rows
(:func:`~xalbench.strategies.blocks.row_blocks`: multiples of 192 rows, so each row lands in
the same SIMD/BLAS lane pattern as in one whole-pool pass and, with one thread, the picks are
bitwise those of the unblocked computation), from the cache's float32 embeddings (no float64
copy of the pool's embeddings); squared norms are computed once. Besides the cache, a query
holds ``O(U)`` floats plus one block. The one exception is CoreSet's distance to the labelled
set (a matrix product against ``chunk_size`` centres at a time): it runs over the whole pool
at once while two such ``U × chunk_size`` float64 blocks fit ``block_mb`` (pools up to 16 384
images at the defaults: bitwise as before); larger pools are blocked by rows, which bounds
memory and keeps picks deterministic, but BLAS may round the blocked products differently in
the last bit, so exact distance ties could break differently from an unblocked run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from xalbench.base import Strategy, StrategyContext
from xalbench.options import Options
from xalbench.strategies import blocks
from xalbench.strategies.blocks import check_rows, row_blocks
from xalbench.strategies.common import check_finite, n_to_query, penultimate_embeddings

__all__ = ["BADGE", "CoreSet", "labelled_embeddings"]

def labelled_embeddings(ctx: StrategyContext) -> torch.Tensor:
    """Penultimate embeddings of ``ctx.labelled`` (eval mode, no grad, flags restored)."""
    idx, bs = torch.as_tensor(ctx.labelled), ctx.batch_size
    batches = (ctx.pool_images[idx[start : start + bs]] for start in range(0, len(idx), bs))
    return penultimate_embeddings(ctx.model, batches, ctx.device)


def _sq_norms(x: torch.Tensor) -> torch.Tensor:
    """``Σ_d x²`` per row in float64, ``U×1``, block by block."""
    out = torch.empty(x.shape[0], 1, dtype=torch.float64, device=x.device)
    for sl in row_blocks(x.shape[0], x.shape[1]):
        xb = x[sl].double()
        out[sl] = (xb * xb).sum(1, keepdim=True)
    return out


def _min_sq_dist(x: torch.Tensor, x_sq: torch.Tensor, centres: torch.Tensor, rows: int) -> torch.Tensor:
    """``min_j ‖x_i − c_j‖²`` (clamped at 0) for every row of ``x``, ``rows`` rows at a time.

    Same expression as a whole-pool ``|x|² + |c|² − 2 x·cᵀ`` (float64), with ``|x|²`` computed once."""
    c_sq = (centres * centres).sum(1)[None, :]
    out = torch.empty(x.shape[0], dtype=torch.float64, device=x.device)
    step = x.shape[0] if rows >= x.shape[0] else rows
    for start in range(0, x.shape[0], max(1, step)):
        sl = slice(start, start + step)
        d = x_sq[sl] + c_sq
        d.sub_(2.0 * (x[sl].double() @ centres.T))
        out[sl] = d.clamp_min_(0.0).min(1).values
    return out


class CoreSet(Strategy):
    """Greedy k-center (Sener & Savarese 2018, Alg. 1) on penultimate embeddings."""

    name: ClassVar[str] = "coreset"
    summary: ClassVar[str] = "Core-set greedy k-center on penultimate embeddings, seeded with the labelled set"
    paper: ClassVar[str] = "Sener & Savarese. Active Learning for Convolutional Neural Networks: A Core-Set Approach. ICLR 2018"
    supports_multilabel: ClassVar[bool] = True
    supports_3d: ClassVar[bool] = True

    @dataclass(frozen=True)
    class Options(Options):
        chunk_size: int = 1024  #: labelled centres per distance block
        block_mb: int = 256  #: memory for one pool × centres distance block (rows blocked beyond it)

        def __post_init__(self) -> None:
            if self.chunk_size < 1 or self.block_mb < 1:
                raise ValueError(f"chunk_size and block_mb must be ≥ 1, got {self.chunk_size}, {self.block_mb}")

    def _rows_per_block(self, n: int, width: int) -> int:
        """Pool rows per labelled-distance block: all of them while two ``n×width`` float64
        matrices fit ``block_mb``, else a multiple of ``ROW_ALIGN`` that does."""
        rows = (self.options.block_mb << 20) // (16 * max(1, width))
        return n if rows >= n else max(blocks.ROW_ALIGN, rows // blocks.ROW_ALIGN * blocks.ROW_ALIGN)

    def query(self, ctx: StrategyContext, k: int) -> np.ndarray:
        n = n_to_query(ctx, k)
        x = ctx.cache.embeddings().detach()
        check_rows(x, f"strategy {self.name!r} (embeddings)")
        u = x.shape[0]
        x_sq = _sq_norms(x)
        min_d = torch.full((u,), float("inf"), dtype=torch.float64, device=x.device)
        centres = labelled_embeddings(ctx).double()
        for start in range(0, centres.shape[0], self.options.chunk_size):
            chunk = centres[start : start + self.options.chunk_size]
            rows = self._rows_per_block(u, chunk.shape[0])
            min_d = torch.minimum(min_d, _min_sq_dist(x, x_sq, chunk, rows))
        chosen: list[int] = []
        for step in range(n):
            if step == 0 and centres.shape[0] == 0:
                pick = int(ctx.rng.integers(u))
            else:
                pick = int(torch.argmax(min_d))  # first maximum → lowest position
            chosen.append(pick)
            c = x[pick : pick + 1].double()
            c_sq = (c * c).sum(1)[None, :]
            for sl in row_blocks(u, x.shape[1]):
                d = (x_sq[sl] + c_sq - 2.0 * (x[sl].double() @ c.T)).clamp_min(0.0).squeeze(1)
                torch.minimum(min_d[sl], d, out=min_d[sl])
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
        e = ctx.cache.embeddings().detach()
        p = ctx.cache.probs().detach().double()
        if ctx.task == "multi-label":
            r = p - (p > 0.5).double()
        else:
            r = p - torch.nn.functional.one_hot(p.argmax(1), p.shape[1]).double()
        check_finite(r.cpu().numpy(), f"strategy {self.name!r} (probabilities)")
        check_rows(e, f"strategy {self.name!r} (embeddings)")
        e_sq = _sq_norms(e).squeeze(1)
        norms = (r * r).sum(1) * e_sq  # ‖g‖² = ‖r‖²‖e‖²
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
            r_pick, e_pick = r[pick], e[pick].double()
            for sl in row_blocks(len(norms), e.shape[1] + r.shape[1]):  # ‖g_a − g_pick‖² = ‖g_a‖² + ‖g_pick‖² − 2⟨r_a, r_pick⟩⟨e_a, e_pick⟩
                d = norms[sl] + norms[pick] - 2.0 * (r[sl] @ r_pick) * (e[sl].double() @ e_pick)
                torch.minimum(min_d[sl], d.clamp_min(0.0), out=min_d[sl])
            min_d[pick] = 0.0
        return ctx.unlabelled[np.asarray(chosen, dtype=np.int64)].astype(np.int64)
