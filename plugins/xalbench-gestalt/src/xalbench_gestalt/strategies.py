"""The three GESTALT strategies: ``gestalt-node`` (eqs. 2–3), ``gestalt-edge`` (eq. 4) and
``gestalt-weighted-node`` (eqs. 5–8), plus the paper's ablations as options.

Per round and unlabelled sample: saliency maps for all ``K`` classes (one batched head-only pass
from the pool cache's activations, the suite's explainer, or Deep Taylor:
:mod:`xalbench_gestalt.saliency`), each map → latent code (pluggable
encoder, :mod:`xalbench_gestalt.encoders`), edges ``w_kj = cos(z_k, z_j)``, then the variant's
rank aggregation (:mod:`xalbench_gestalt.graph`). ``scores`` returns minus the mean rank, so
the default ``query`` takes the lowest mean ranks (ties → lower pool index).

Ablations (GESTALT §VI-C): ``invert = true`` queries the highest mean ranks (least informative
first); ``features = "image"`` builds the class nodes from the image instead of the saliency
maps; ``fixed_alpha`` (Weighted-Node) replaces eq. 6 by a constant.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

import numpy as np
import torch

import xalbench
from xalbench.errors import ConfigError, OptionsError
from xalbench_gestalt.encoders import EncoderName, classifier_encoder, pixel_encoder
from xalbench_gestalt.graph import (
    AlphaMode,
    cosine_graph,
    edge_columns,
    gestalt_score,
    labelled_node_stats,
    node_weights,
    weighted_node_weights,
)
from xalbench_gestalt.saliency import SaliencySource, labelled_embeddings, labelled_maps, pool_maps

if TYPE_CHECKING:
    from xalbench.base import StrategyContext

__all__ = ["GestaltEdge", "GestaltNode", "GestaltOptions", "GestaltWeightedNode", "PAPER"]

PAPER = ("Mahapatra, Poellinger & Reyes, Graph Node Based Interpretability Guided Sample Selection for "
         "Active Learning (GESTALT), eqs. 1-8")

Features = Literal["saliency", "image"]


@dataclass(frozen=True)
class GestaltOptions(xalbench.Options):
    """Shared options; see the plugin README.

    ``encoder``: ``"classifier"`` (pooled penultimate features of the map) or ``"pixels"``;
    ``encoder_size``: resample maps to this size per axis before the classifier encoder (0 = input size);
    ``grid``: pooling grid of the ``pixels`` encoder; ``saliency``: ``"gradcam"`` (all-class
    Grad-CAM without its final ReLU, from the cache's activations), ``"suite"`` (the suite's
    explainer through the pool cache) or ``"deep-taylor"`` (see :mod:`xalbench_gestalt.saliency`);
    ``features``: ``"saliency"`` or the ``"image"`` ablation; ``invert``: the inverted-ranking ablation.
    """

    encoder: EncoderName = "classifier"
    encoder_size: int = 0
    grid: int = 8
    saliency: SaliencySource = "gradcam"
    features: Features = "saliency"
    invert: bool = False

    def __post_init__(self) -> None:
        if self.encoder_size < 0:
            raise OptionsError(f"gestalt: encoder_size must be ≥ 0 (0 = input size), got {self.encoder_size}")
        if self.grid < 1:
            raise OptionsError(f"gestalt: grid must be ≥ 1, got {self.grid}")
        if self.features == "image" and self.encoder != "classifier":
            raise OptionsError("gestalt: features = 'image' needs encoder = 'classifier' (class nodes are the "
                               "image's penultimate features times each class's classifier weights)")


class _Gestalt(xalbench.Strategy):
    """Shared pipeline: maps → latents → cosine graph → the variant's rank columns → score."""

    supports_multilabel: ClassVar[bool] = True
    supports_3d: ClassVar[bool] = True
    paper: ClassVar[str] = PAPER
    Options = GestaltOptions

    def _who(self) -> str:
        return f"strategy {self.name!r}"

    # ---------------------------------------------------------------- latents
    def encode(self, maps: torch.Tensor, ctx: StrategyContext) -> np.ndarray:
        """``N×K×spatial`` maps → ``N×K×d`` latents (override to plug in another encoder)."""
        o = self.options
        if o.encoder == "pixels":
            return pixel_encoder(maps, grid=o.grid)
        return classifier_encoder(maps, ctx.model, in_channels=int(ctx.pool_images.shape[1]),
                                  batch_size=ctx.batch_size, device=ctx.device, size=o.encoder_size)

    def _image_nodes(self, ctx: StrategyContext, embeddings: torch.Tensor) -> np.ndarray:
        """Image-feature ablation: node ``k`` = penultimate features ⊙ classifier weights of class ``k``."""
        w = ctx.model.classifier.weight.detach().to("cpu", torch.float64)
        e = embeddings.detach().to("cpu", torch.float64)
        return (e[:, None, :] * w[None]).numpy()

    def pool_latents(self, ctx: StrategyContext) -> np.ndarray:
        if self.options.features == "image":
            return self._image_nodes(ctx, ctx.cache.embeddings())
        return self.encode(pool_maps(ctx, self.options.saliency, self._who()), ctx)

    def labelled_latents(self, ctx: StrategyContext) -> np.ndarray:
        if self.options.features == "image":
            return self._image_nodes(ctx, labelled_embeddings(ctx))
        return self.encode(labelled_maps(ctx, self.options.saliency, self._who()), ctx)

    # ---------------------------------------------------------------- ranking
    def columns(self, ctx: StrategyContext, graph: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def graph(self, ctx: StrategyContext) -> np.ndarray:
        """The pool's edge weights ``U×K×K`` (eq. 1), rows aligned with ``ctx.unlabelled``."""
        if ctx.num_classes < 2:
            raise ConfigError(f"{self._who()} needs at least 2 classes (graph nodes), got {ctx.num_classes}")
        return cosine_graph(self.pool_latents(ctx))

    def scores(self, ctx: StrategyContext) -> np.ndarray:
        """Minus the mean rank per unlabelled sample (plus it with ``invert``); higher = query first."""
        if len(ctx.unlabelled) == 0:
            return np.zeros(0)
        return gestalt_score(self.columns(ctx, self.graph(ctx)), invert=self.options.invert)


class GestaltNode(_Gestalt):
    """GESTALT-Node: node weights ``w_k = Σ_{j≠k} w_kj`` (eq. 2), rank per class, mean rank (eq. 3)."""

    name: ClassVar[str] = "gestalt-node"
    summary: ClassVar[str] = ("GESTALT-Node: all-class saliency graph, node weights ranked per class over the pool, "
                              "lowest mean rank (most similar class maps) first")

    def columns(self, ctx: StrategyContext, graph: np.ndarray) -> np.ndarray:
        return node_weights(graph)


class GestaltEdge(_Gestalt):
    """GESTALT-Edge: rank each of the ``K(K−1)/2`` edges over the pool, mean rank (eq. 4)."""

    name: ClassVar[str] = "gestalt-edge"
    summary: ClassVar[str] = ("GESTALT-Edge: all-class saliency graph, each of the K(K-1)/2 edges ranked over the pool, "
                              "lowest mean rank first")

    def columns(self, ctx: StrategyContext, graph: np.ndarray) -> np.ndarray:
        return edge_columns(graph)


@dataclass(frozen=True)
class WeightedNodeOptions(GestaltOptions):
    """``alpha``: ``"literal"`` (eq. 6 as printed) or ``"edge-scaled"``; ``fixed_alpha``: a constant α
    instead of eq. 6 (ablation; ``None`` = dynamic); ``eps`` is added to σ_k (eq. 8)."""

    alpha: AlphaMode = "literal"
    fixed_alpha: float | None = None
    eps: float = 1e-8

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.eps > 0:
            raise OptionsError(f"gestalt-weighted-node: eps must be > 0, got {self.eps}")


class GestaltWeightedNode(_Gestalt):
    """GESTALT-Weighted-Node: ``w_k = Σ_{j≠k} α_kj w_kj`` with z-score weights from the labelled set (eqs. 5–8)."""

    name: ClassVar[str] = "gestalt-weighted-node"
    summary: ClassVar[str] = ("GESTALT-Weighted-Node: node weights with z-score edge weights from the labelled set's "
                              "node statistics (refreshed each round), ranked per class, lowest mean rank first")
    Options = WeightedNodeOptions

    def prior(self, ctx: StrategyContext) -> tuple[np.ndarray, np.ndarray] | None:
        """``(w̄, σ)`` per class from the labelled set's node matrix under the current model (eqs. 7–8),
        or ``None`` without labelled samples."""
        if len(ctx.labelled) == 0:
            return None
        w_lab = node_weights(cosine_graph(self.labelled_latents(ctx)))
        return labelled_node_stats(w_lab, eps=self.options.eps)

    def columns(self, ctx: StrategyContext, graph: np.ndarray) -> np.ndarray:
        o = self.options
        if o.fixed_alpha is not None:
            return weighted_node_weights(graph, fixed_alpha=o.fixed_alpha)
        stats = self.prior(ctx)
        if stats is None:  # no labelled set yet: no prior to weight by, eq. 2 unweighted
            return node_weights(graph)
        return weighted_node_weights(graph, *stats, mode=o.alpha)
