"""GESTALT's graph and rank aggregations on hand-computed numbers (eqs. 1-8)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import rankdata
from xalbench_gestalt.graph import (
    cosine_graph,
    edge_columns,
    gestalt_score,
    labelled_node_stats,
    mean_rank,
    node_weights,
    weighted_node_weights,
)

from xalbench.base import stable_topk
from xalbench.errors import ConfigError


def equal_edge_graphs(s: np.ndarray, k: int) -> np.ndarray:
    """Graphs whose every edge of sample ``n`` has weight ``s[n]`` (no self-edges)."""
    w = np.repeat(np.asarray(s, dtype=np.float64)[:, None, None], k, 1).repeat(k, 2)
    w[:, np.arange(k), np.arange(k)] = 0.0
    return w


def test_node_rank_then_average_picks_the_expected_sample():
    w = np.array([[3.0, 0.1, 0.1], [1.0, 0.5, 0.5], [0.9, 0.6, 0.6]])
    # column ranks (descending, rank 1 = most similar): [1,3,3], [2,2,2], [3,1,1]
    assert mean_rank(w) == pytest.approx([7 / 3, 2.0, 5 / 3])
    assert stable_topk(gestalt_score(w), 1).tolist() == [2]  # sample 3
    # the "less optimal" alternative (average then rank) would pick sample 1
    assert int(np.argmax(w.mean(1))) == 0


def test_ties_are_averaged_and_rank_one_is_the_largest():
    w = np.array([[0.5], [0.9], [0.5]])
    assert mean_rank(w).tolist() == [2.5, 1.0, 2.5]
    assert gestalt_score(w, invert=True).tolist() == [2.5, 1.0, 2.5]


def test_cosine_graph_is_symmetric_without_self_edges():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(6, 5, 7))
    w = cosine_graph(z)
    assert w.shape == (6, 5, 5)
    assert np.allclose(w, w.transpose(0, 2, 1))
    assert np.all(np.diagonal(w, axis1=1, axis2=2) == 0.0)
    unit = z / np.linalg.norm(z, axis=2, keepdims=True)
    assert w[2, 1, 3] == pytest.approx(float(unit[2, 1] @ unit[2, 3]))


@pytest.mark.parametrize("k", [2, 3, 5, 14])
def test_edge_variant_has_k_k_minus_1_over_2_columns(k):
    w = cosine_graph(np.random.default_rng(k).normal(size=(4, k, 3)))
    cols = edge_columns(w)
    assert cols.shape == (4, k * (k - 1) // 2)
    iu, ju = np.triu_indices(k, 1)
    assert np.array_equal(cols, w[:, iu, ju])


def test_node_weights_sum_the_k_minus_1_edges():
    w = cosine_graph(np.random.default_rng(1).normal(size=(3, 4, 6)))
    nodes = node_weights(w)
    assert nodes[1, 2] == pytest.approx(w[1, 2, 0] + w[1, 2, 1] + w[1, 2, 3])


def test_weighted_node_by_hand():
    # labelled node column [1, 2, 3] → mean 2, σ = sqrt(2/3) = 0.8165 (eq. 8 with the square, ddof 0)
    mean, sd = labelled_node_stats(np.array([[1.0, 0.0, 0.0], [2.0, 0.0, 0.0], [3.0, 0.0, 0.0]]), eps=0.0)
    assert mean[0] == 2.0 and sd[0] == pytest.approx(math.sqrt(2 / 3)) and sd[0] == pytest.approx(0.8165, abs=1e-4)
    # node 0 with edges 0.5 (to node 1) and 0.9 (to node 2): α = (−1.837, −1.347), w_0 = −2.131
    w = np.zeros((1, 3, 3))
    w[0, 0, 1] = w[0, 1, 0] = 0.5
    w[0, 0, 2] = w[0, 2, 0] = 0.9
    alpha = (np.array([0.5, 0.9]) - 2.0) / sd[0]
    assert alpha == pytest.approx([-1.837, -1.347], abs=1e-3)
    wn = weighted_node_weights(w, mean, np.where(sd > 0, sd, 1.0), mode="literal")
    assert wn[0, 0] == pytest.approx(-2.131, abs=1e-3)
    assert wn[0, 0] == pytest.approx(float(alpha @ [0.5, 0.9]))


def test_edge_scaled_alpha_brings_the_node_statistics_to_the_edge_scale():
    w = np.zeros((1, 3, 3))
    w[0, 0, 1] = w[0, 1, 0] = 0.5
    w[0, 0, 2] = w[0, 2, 0] = 0.9
    mean, sd = np.array([2.0, 1.0, 1.0]), np.array([0.8, 0.5, 0.5])
    got = weighted_node_weights(w, mean, sd, mode="edge-scaled")
    alpha = (np.array([0.5, 0.9]) - 2.0 / 2) / (0.8 / 2)  # K − 1 = 2
    assert got[0, 0] == pytest.approx(float(alpha @ [0.5, 0.9]))


@pytest.mark.parametrize("alpha", [0.05, 0.5, 0.75, 1.0])
def test_a_positive_constant_alpha_ranks_exactly_as_node(alpha):
    w = cosine_graph(np.random.default_rng(2).normal(size=(40, 5, 8)))
    fixed = weighted_node_weights(w, fixed_alpha=alpha)
    assert np.allclose(fixed, alpha * node_weights(w))
    assert np.array_equal(mean_rank(fixed), mean_rank(node_weights(w)))


def test_literal_weighted_node_ranks_opposite_to_node_once_the_labelled_node_mean_reaches_2():
    k = 4
    s = np.linspace(0.45, 1.0, 15)  # pool samples: all edges equal to s (cosines in [0, 1])
    w = equal_edge_graphs(s, k)
    node_order = np.argsort(gestalt_score(node_weights(w)), kind="stable")
    sd = np.full(k, 0.2)
    for m in (2.0, 2.5, 3.0):  # labelled node mean ≥ 2: (w² − m·w) decreases on [0, 1]
        lit = gestalt_score(weighted_node_weights(w, np.full(k, m), sd, mode="literal"))
        assert np.array_equal(np.argsort(lit, kind="stable"), node_order[::-1]), m
    # below the threshold the literal reading agrees with Node where w > m/2
    low = gestalt_score(weighted_node_weights(w, np.full(k, 0.5), sd, mode="literal"))
    assert np.array_equal(np.argsort(low, kind="stable"), node_order)
    # the edge-scaled reading keeps Node's direction for edges above half the per-edge mean
    edge = gestalt_score(weighted_node_weights(w, np.full(k, 2.5), sd, mode="edge-scaled"))
    assert np.array_equal(np.argsort(edge, kind="stable"), node_order)


def test_identical_class_maps_rank_first():
    rng = np.random.default_rng(3)
    z = rng.normal(size=(10, 5, 6))
    z[7] = z[7, :1]  # every class map of sample 7 has the same code: all cosines 1
    w = cosine_graph(z)
    for cols in (node_weights(w), edge_columns(w)):
        assert stable_topk(gestalt_score(cols), 1).tolist() == [7]
        assert mean_rank(cols)[7] == 1.0


def test_class_permutation_does_not_change_the_scores():
    rng = np.random.default_rng(4)
    z = rng.normal(size=(12, 5, 6))
    perm = np.array([3, 0, 4, 1, 2])
    for f in (node_weights, edge_columns):
        a = gestalt_score(f(cosine_graph(z)))
        b = gestalt_score(f(cosine_graph(z[:, perm])))
        assert np.allclose(a, b)
    mean, sd = labelled_node_stats(node_weights(cosine_graph(z[:4])))
    a = gestalt_score(weighted_node_weights(cosine_graph(z), mean, sd))
    b = gestalt_score(weighted_node_weights(cosine_graph(z[:, perm]), mean[perm], sd[perm]))
    assert np.allclose(a, b)


def test_scipy_rank_convention():
    x = np.array([[0.2, 0.7], [0.9, 0.7], [0.5, 0.1]])
    assert np.array_equal(mean_rank(x), rankdata(-x, axis=0).mean(1))


def test_bad_input_is_one_clear_error():
    with pytest.raises(ConfigError, match="at least 2 classes"):
        cosine_graph(np.ones((3, 1, 4)))
    with pytest.raises(ConfigError, match="N×K×d"):
        cosine_graph(np.ones((3, 4)))
    with pytest.raises(ConfigError, match="non-finite"):
        mean_rank(np.array([[np.nan], [1.0]]))
    with pytest.raises(ConfigError, match="M ≥ 1"):
        labelled_node_stats(np.zeros((0, 3)))
