"""Perturbation curves for faithfulness metrics, in torch/numpy for 2D and 3D images, any channel count.

Quantus 0.6 rejects 3D volumes ("Only batched 1D and 2D multi-channel input dimensions
supported") and mishandles multi-channel images in its pixel-wise metrics (``ROAD`` indexes
the ``H·W`` imputation with ``C·H·W`` indices and fails; ``PixelFlipping`` asserts its step on
``H·W`` but steps over ``C·H·W`` entries, so a step removes a fraction of a pixel), so the
faithfulness metrics use these implementations there; on 2D single-channel images they use
Quantus (:mod:`xalbench.metrics.quantus_backend`) and the tests check both agree.

* :func:`relevance_order` — pixels (voxels) sorted by decreasing map value, ties broken by a
  seeded random permutation (a flat-index order would remove the image's top rows first);
  every channel of a pixel is perturbed together.
* :func:`perturbation_curve` — the deletion game of Petsiuk et al. (RISE, BMVC 2018, sec. 4.1;
  pixel flipping of Bach et al., PLoS ONE 2015): the softmax probability of the target class
  after the first ``⌊kP/S⌋`` pixels of the order are set to ``baseline``, ``k = 0…S``. With
  ``lerf=True`` the *least* relevant pixels go first; since the image with the ``k`` least
  relevant pixels removed is the image with the ``P − k`` most relevant ones inserted into
  a ``baseline`` canvas, the LeRF deletion curve is the insertion curve read backwards and
  has the same area.
* :func:`road_curve` — ROAD (Rong et al., ICML 2022, sec. 4): the ``⌊P·p/100⌋`` most relevant
  pixels are replaced by a noisy linear imputation (:func:`noisy_linear_impute`), and the
  curve is whether the model still predicts the target class, per percentage ``p``.
* :func:`curve_auc` — trapezoid over the x-axis normalised to [0, 1].
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np
import torch
from scipy.sparse import coo_matrix
from scipy.sparse.linalg import spsolve
from torch import Tensor, nn

from xalbench.errors import ConfigError

__all__ = [
    "relevance_order",
    "rank_of",
    "class_probabilities",
    "perturbation_curve",
    "noisy_linear_impute",
    "road_curve",
    "curve_auc",
    "imputation_weights",
]


def relevance_order(maps: Tensor, seed: int) -> Tensor:
    """Flat pixel indices ``N×P`` by decreasing map value; ties in a seeded random order."""
    flat = maps.detach().reshape(maps.shape[0], -1).to(device="cpu", dtype=torch.float64)
    if not torch.isfinite(flat).all():
        raise ConfigError("faithfulness metrics need finite saliency maps (got NaN or inf)")
    tie = torch.rand(flat.shape, generator=torch.Generator().manual_seed(int(seed)), dtype=torch.float64)
    shuffled = torch.argsort(tie, dim=1)
    by_value = torch.argsort(-torch.gather(flat, 1, shuffled), dim=1, stable=True)
    return torch.gather(shuffled, 1, by_value)


def rank_of(order: Tensor) -> Tensor:
    """Inverse permutation: ``rank[i, order[i, j]] = j`` (0 = most relevant)."""
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(order.shape[1]).expand_as(order).contiguous())
    return rank


def class_probabilities(model: nn.Module, x: Tensor, targets: Tensor, batch_size: int = 64) -> Tensor:
    """Softmax probability of ``targets`` per image (no grad; the model must be in eval mode)."""
    device = next(model.parameters()).device
    x, targets = x.to(device), targets.to(device=device, dtype=torch.long)
    out = []
    with torch.no_grad():
        for s in range(0, x.shape[0], batch_size):
            p = torch.softmax(model(x[s : s + batch_size]).float(), 1)
            out.append(p.gather(1, targets[s : s + batch_size, None])[:, 0])
    return torch.cat(out).cpu()


def perturbation_curve(model: nn.Module, images: Tensor, order: Tensor, targets: Tensor, *, steps: int,
                       baseline: float = 0.0, lerf: bool = False, batch_size: int = 64) -> np.ndarray:
    """Softmax probability of ``targets`` as pixels are removed, ``N×(steps+1)`` (column 0: intact image).

    MoRF (deletion) by default; ``lerf=True`` removes the least relevant pixels first. The
    model must already be in eval mode.
    """
    if steps < 1:
        raise ConfigError(f"steps must be >= 1, got {steps}")
    device = next(model.parameters()).device
    x = images.to(device)
    n, p = x.shape[0], order.shape[1]
    rank = rank_of(order).to(device)
    if lerf:
        rank = p - 1 - rank
    rank = rank.reshape(n, 1, *x.shape[2:])
    t = targets.to(device=device, dtype=torch.long)
    cols = []
    for k in range(steps + 1):
        removed = rank < (k * p) // steps
        cols.append(class_probabilities(model, torch.where(removed, torch.as_tensor(baseline, dtype=x.dtype), x), t,
                                  batch_size))
    return torch.stack(cols, 1).cpu().numpy().astype(np.float64)


def imputation_weights(spatial_dims: int) -> list[tuple[tuple[int, ...], float]]:
    """Neighbour offsets and weights of ROAD's imputation: ``w ∝ 1/‖o‖²``, summing to 1.

    In 2D this is ROAD's kernel (1/6 for the 4 edge neighbours, 1/12 for the 4 diagonal
    ones); in 3D the same rule gives the 26-neighbourhood (an extension: ROAD is 2D only).
    """
    offsets = [o for o in itertools.product((-1, 0, 1), repeat=spatial_dims) if any(o)]
    raw = np.array([1.0 / sum(v * v for v in o) for o in offsets])
    return list(zip(offsets, (raw / raw.sum()).tolist(), strict=True))


def noisy_linear_impute(x: np.ndarray, indices: np.ndarray, *, noise: float, rng: np.random.Generator) -> np.ndarray:
    """ROAD's noisy linear imputation of one image ``C×spatial`` at flat pixel ``indices``.

    Every removed pixel equals the weighted mean of its in-bounds neighbours (removed ones
    included, so the system is solved jointly), ``S_u x_u − Σ_{n∈U} w x_n = Σ_{n∉U} w x_n``,
    then ``noise · N(0, 1)`` is added to the imputed values (Rong et al., sec. 4.2).
    """
    spatial = x.shape[1:]
    c, npix = x.shape[0], int(np.prod(spatial))
    idx = np.asarray(indices, dtype=np.int64)
    out = np.array(x, dtype=np.float64, copy=True).reshape(c, npix)
    u = idx.size
    if u == 0:
        return out.reshape(x.shape).astype(x.dtype)
    if u >= npix:
        raise ConfigError("ROAD cannot impute every pixel of an image (use percentages below 100)")
    var_of = np.full(npix, -1, dtype=np.int64)
    var_of[idx] = np.arange(u)
    coords = np.stack(np.unravel_index(idx, spatial), 1)
    diag = np.zeros(u)
    b = np.zeros((u, c))
    rows, cols, vals = [], [], []
    bounds = np.asarray(spatial)
    for offset, w in imputation_weights(len(spatial)):
        nc = coords + np.asarray(offset)
        valid = np.all((nc >= 0) & (nc < bounds), axis=1)
        vi = np.flatnonzero(valid)
        nflat = np.ravel_multi_index(tuple(nc[valid].T), spatial)
        diag[vi] += w
        unknown = var_of[nflat] >= 0
        rows.append(vi[unknown])
        cols.append(var_of[nflat[unknown]])
        vals.append(np.full(int(unknown.sum()), -w))
        np.add.at(b, vi[~unknown], w * out[:, nflat[~unknown]].T)
    r = np.concatenate([*rows, np.arange(u)])
    k = np.concatenate([*cols, np.arange(u)])
    v = np.concatenate([*vals, diag])
    a = coo_matrix((v, (r, k)), shape=(u, u)).tocsc()
    sol = np.asarray(spsolve(a, b)).reshape(u, c)
    out[:, idx] = sol.T + noise * rng.standard_normal((c, u))
    return out.reshape(x.shape).astype(x.dtype)


def road_curve(model: nn.Module, images: Tensor, order: Tensor, targets: Tensor, *, percentages: Sequence[float],
               noise: float, seed: int, batch_size: int = 64) -> np.ndarray:
    """1 where the model still predicts ``targets`` after imputing the top ``p`` % pixels, ``N×len(percentages)``."""
    device = next(model.parameters()).device
    x = images.detach().cpu().numpy()
    n, p = x.shape[0], order.shape[1]
    rng = np.random.default_rng(int(seed))
    t = targets.to(device=device, dtype=torch.long)
    order_np = order.cpu().numpy()
    cols = []
    for pct in percentages:
        k = int(p * pct / 100)
        perturbed = np.stack([noisy_linear_impute(x[i], order_np[i, :k], noise=noise, rng=rng) for i in range(n)])
        xp = torch.from_numpy(perturbed).to(device)
        with torch.no_grad():
            pred = torch.cat([model(xp[s : s + batch_size]).argmax(1) for s in range(0, n, batch_size)])
        cols.append((pred == t).cpu().numpy())
    return np.stack(cols, 1).astype(np.float64)


def curve_auc(curve: np.ndarray, x: Sequence[float] | None = None) -> np.ndarray:
    """Per-row trapezoid area over ``x`` rescaled to [0, 1] (uniform spacing if ``None``); 1 point → its value."""
    curve = np.atleast_2d(np.asarray(curve, dtype=np.float64))
    m = curve.shape[1]
    if m == 1:
        return curve[:, 0]
    grid = np.linspace(0.0, 1.0, m) if x is None else np.asarray(x, dtype=np.float64)
    span = grid[-1] - grid[0]
    if not math.isfinite(span) or span <= 0:
        raise ConfigError("curve x-values must increase")
    return np.trapezoid(curve, x=(grid - grid[0]) / span, axis=1)
