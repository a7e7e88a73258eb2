"""xalbench-gestalt: GESTALT (graph-of-saliency ranking for multi-label active learning) and its baselines."""

from __future__ import annotations

from xalbench_gestalt.baselines import IDEAL, MCDropoutVariance, mc_variance
from xalbench_gestalt.graph import (
    cosine_graph,
    edge_columns,
    gestalt_score,
    labelled_node_stats,
    mean_rank,
    node_weights,
    weighted_node_weights,
)
from xalbench_gestalt.strategies import GestaltEdge, GestaltNode, GestaltWeightedNode

__all__ = [
    "IDEAL",
    "GestaltEdge",
    "GestaltNode",
    "GestaltWeightedNode",
    "MCDropoutVariance",
    "__version__",
    "cosine_graph",
    "edge_columns",
    "gestalt_score",
    "labelled_node_stats",
    "mc_variance",
    "mean_rank",
    "node_weights",
    "weighted_node_weights",
]
__version__ = "0.2.0"
