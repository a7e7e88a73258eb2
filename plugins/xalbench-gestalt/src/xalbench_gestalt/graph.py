"""GESTALT's per-sample class graph and its three rank aggregations (pure numpy, float64).

One graph per sample; node ``k`` is the latent code ``z_k`` of the class-``k`` saliency map and
the edge between nodes ``k`` and ``j`` has weight ``w_kj = cos(z_k, z_j)`` (eq. 1): a symmetric
``K×K`` matrix per sample with ``K(K−1)/2`` distinct edges and no self-edges.

* Node (eqs. 2–3): ``w_k = Σ_{j≠k} w_kj``; rank each of the ``K`` node columns over the pool,
  average the ranks per sample.
* Edge (eq. 4): rank each of the ``K(K−1)/2`` edge columns over the pool, average per sample
  (the paper's shape ``N×K×(K−1)/2`` is read as ``N×(K(K−1)/2)``).
* Weighted-Node (eqs. 5–8): ``w_k = Σ_{j≠k} α_kj w_kj`` (eq. 5 prints ``j≠i``; read ``j≠k``) with
  ``α_kj = (w_kj − w̄_k)/σ_k`` (eq. 6), ``w̄_k`` / ``σ_k`` the column mean / population standard
  deviation of the labelled set's node matrix (eqs. 7–8; eq. 8 is read with the square it lacks,
  without which ``σ_k`` is always 0). :func:`weighted_node_weights` also offers the
  ``"edge-scaled"`` reading and a fixed ``α``.

**Ranking direction.** The paper prioritises samples of "overall low class distinctiveness",
i.e. *similar* class maps, i.e. large ``w``. Each column is ranked in descending order with
ties averaged (``scipy.stats.rankdata(-x)``: rank 1 = most similar) and the samples with the
**lowest** mean rank are queried; :func:`gestalt_score` returns minus the mean rank (higher =
query first), or plus the mean rank for the inverted-ranking ablation.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy.stats import rankdata

from xalbench.errors import ConfigError

__all__ = [
    "AlphaMode",
    "cosine_graph",
    "edge_columns",
    "gestalt_score",
    "labelled_node_stats",
    "mean_rank",
    "node_weights",
    "weighted_node_weights",
]

AlphaMode = Literal["literal", "edge-scaled"]
_EPS = 1e-12


def cosine_graph(z: np.ndarray, eps: float = _EPS) -> np.ndarray:
    """Edge weights ``N×K×K``: ``cos(z_k, z_j)`` (eq. 1), symmetric, diagonal set to 0 (no self-edges).

    ``z`` is ``N×K×d``. A zero latent (e.g. a constant map under the ``pixels`` encoder) has
    cosine 0 with every other node.
    """
    z = np.asarray(z, dtype=np.float64)
    if z.ndim != 3:
        raise ConfigError(f"gestalt: latent codes must be N×K×d, got shape {z.shape}")
    if z.shape[1] < 2:
        raise ConfigError(f"gestalt needs at least 2 classes (graph nodes), got K = {z.shape[1]}")
    norm = np.linalg.norm(z, axis=2)
    unit = z / np.maximum(norm, eps)[..., None]
    w = np.einsum("nkd,njd->nkj", unit, unit)
    k = z.shape[1]
    w[:, np.arange(k), np.arange(k)] = 0.0
    return np.clip(w, -1.0, 1.0)


def node_weights(w: np.ndarray) -> np.ndarray:
    """Eq. 2: ``w_k = Σ_{j≠k} w_kj`` → ``N×K`` (the graph's diagonal is ignored)."""
    w = np.asarray(w, dtype=np.float64)
    k = w.shape[1]
    return w.sum(2) - w[:, np.arange(k), np.arange(k)]


def edge_columns(w: np.ndarray) -> np.ndarray:
    """The ``K(K−1)/2`` distinct edges of each graph → ``N×K(K−1)/2`` (upper triangle, row-major)."""
    w = np.asarray(w, dtype=np.float64)
    iu, ju = np.triu_indices(w.shape[1], k=1)
    return w[:, iu, ju]


def mean_rank(columns: np.ndarray) -> np.ndarray:
    """Eqs. 3/4: rank every column over the samples in descending order (ties averaged), then
    average each sample's ranks → ``N`` (rank 1 = the largest value of a column)."""
    columns = np.asarray(columns, dtype=np.float64)
    if columns.ndim != 2 or columns.shape[1] == 0:
        raise ConfigError(f"gestalt: need an N×C matrix with C ≥ 1 columns to rank, got shape {columns.shape}")
    if columns.shape[0] == 0:
        return np.zeros(0)
    if not np.isfinite(columns).all():
        raise ConfigError("gestalt: non-finite graph weights (check the saliency maps and the encoder)")
    return rankdata(-columns, axis=0, method="average").mean(1)


def gestalt_score(columns: np.ndarray, *, invert: bool = False) -> np.ndarray:
    """Acquisition score from rank columns: ``−mean rank`` (lowest mean rank first), or ``+mean rank``."""
    r = mean_rank(columns)
    return r if invert else -r


def labelled_node_stats(w_labelled: np.ndarray, eps: float = 1e-8) -> tuple[np.ndarray, np.ndarray]:
    """Eqs. 7–8 on the labelled set's node matrix ``M×K``: column mean and population standard
    deviation ``sqrt(Σ_m (W(m,k) − w̄_k)² / M)`` (eq. 8 with its missing square), plus ``eps``."""
    wl = np.asarray(w_labelled, dtype=np.float64)
    if wl.ndim != 2 or wl.shape[0] == 0:
        raise ConfigError(f"gestalt-weighted-node: the labelled node matrix must be M×K with M ≥ 1, got {wl.shape}")
    mean = wl.mean(0)
    sd = np.sqrt(((wl - mean) ** 2).mean(0)) + eps
    return mean, sd


def weighted_node_weights(
    w: np.ndarray,
    mean: np.ndarray | None = None,
    sd: np.ndarray | None = None,
    *,
    mode: AlphaMode = "literal",
    fixed_alpha: float | None = None,
) -> np.ndarray:
    """Eq. 5: ``w_k = Σ_{j≠k} α_kj w_kj`` → ``N×K``.

    ``fixed_alpha`` (the paper's fixed-α ablation) uses one constant for every edge; a positive
    constant only rescales eq. 2, so the ranking equals Node's. Otherwise ``α`` is eq. 6:

    * ``"literal"``: ``α_kj = (w_kj − w̄_k)/σ_k`` exactly as printed. ``w̄_k`` lives on the node
      scale (a sum of ``K−1`` cosines) while ``w_kj`` is one cosine, so each term
      ``(w_kj² − w̄_k w_kj)/σ_k`` *decreases* in ``w_kj`` wherever ``w_kj < w̄_k/2``; with
      cosines in [0, 1] and a labelled node mean ``w̄_k ≥ 2`` Weighted-Node therefore ranks
      opposite to Node.
    * ``"edge-scaled"``: the node statistics brought to the edge scale,
      ``α_kj = (w_kj − w̄_k/(K−1)) / (σ_k/(K−1))``.
    """
    w = np.asarray(w, dtype=np.float64)
    k = w.shape[1]
    off = ~np.eye(k, dtype=bool)
    if fixed_alpha is not None:
        return float(fixed_alpha) * np.where(off, w, 0.0).sum(2)
    if mean is None or sd is None:
        raise ConfigError("gestalt-weighted-node: dynamic alpha needs the labelled set's node mean and sd")
    mean = np.asarray(mean, dtype=np.float64)[None, :, None]
    sd = np.asarray(sd, dtype=np.float64)[None, :, None]
    if mode == "literal":
        alpha = (w - mean) / sd
    elif mode == "edge-scaled":
        alpha = (w - mean / (k - 1)) / (sd / (k - 1))
    else:
        raise ConfigError(f"gestalt-weighted-node: alpha must be 'literal' or 'edge-scaled', got {mode!r}")
    return np.where(off, alpha * w, 0.0).sum(2)
