"""GESTALT's baselines: MC-dropout variance (eq. 9) by hand, and the approximate IDEAL's steps."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from xalbench_gestalt import IDEAL, MCDropoutVariance, mc_variance
from xalbench_gestalt.baselines import leave_cluster_out_gains, probe_auc

from xalbench.errors import OptionsError
from xalbench.sandbox.guard import call_strategy
from xalbench.strategies.bayesian import BALD, MCDropoutEntropy
from xalbench.testing import make_context


def test_eq9_variance_by_hand():
    # T = 2 passes, one binary finding: A = {.5, .5} → 0; B = {.2, .8} → mean .5, E[y²] = .34 → .09
    mc = torch.tensor([[[0.5], [0.2]], [[0.5], [0.8]]])
    assert mc_variance(mc).numpy() == pytest.approx([0.0, 0.09])
    # two findings, mean vs max over findings
    mc2 = torch.tensor([[[0.2, 0.5]], [[0.8, 0.7]]])  # variances .09 and .01
    assert float(mc_variance(mc2, "mean")[0]) == pytest.approx(0.05)
    assert float(mc_variance(mc2, "max")[0]) == pytest.approx(0.09)


def test_variance_is_neither_mcd_entropy_nor_bald():
    # T = 2, one finding. A: constant .5 (max entropy, no variance); B1: .5 ± .1; B2: .9 ± .09
    mc = torch.tensor([[[0.5], [0.4], [0.81]], [[0.5], [0.6], [0.99]]], dtype=torch.float64)
    var = mc_variance(mc).numpy()
    ent = MCDropoutEntropy().score(mc, multilabel=True).numpy()
    bald = BALD().score(mc, multilabel=True).numpy()
    assert var == pytest.approx([0.0, 0.01, 0.0081])
    assert np.argmax(ent) == 0 and np.argmax(var) == 1  # entropy prefers A, variance B1
    assert np.argmax(bald) == 2  # BALD: .054 for B2 > .020 for B1; variance: .0081 < .01


@pytest.mark.parametrize("task", ["multi-class", "multi-label"])
def test_strategy_reads_twenty_mc_dropout_passes(task):
    ctx = make_context(task=task, num_classes=4, n_pool=40)
    got = MCDropoutVariance().scores(ctx)
    assert got == pytest.approx(mc_variance(ctx.cache.mc_probs(20)).numpy())
    assert (got > 0).all()
    with pytest.raises(OptionsError, match="n_samples"):
        MCDropoutVariance({"n_samples": 1})


def _probe_data(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Cluster 0: separable labels; cluster 1: same features, random labels (uninformative)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(80, 3))
    y = (x[:, 0] > 0).astype(int)
    clusters = np.repeat([0, 1], 40)
    y[40:] = rng.integers(0, 2, 40)
    x_val = rng.normal(size=(60, 3))
    return x, y, x_val, (x_val[:, 0] > 0).astype(int), clusters


def test_probe_auc_and_leave_cluster_out_gains():
    x, y, x_val, y_val, clusters = _probe_data()
    assert probe_auc(x[:40], y[:40], x_val, y_val, task="multi-class", num_classes=2) > 0.95
    gains = leave_cluster_out_gains(clusters, x, y, x_val, y_val, task="multi-class", num_classes=2)
    assert gains[0] > gains[1]  # the informative cluster's removal costs more val AUC
    # multi-label: the same, one binary column per finding
    y_ml = np.stack([y, 1 - y], 1).astype(np.float32)
    yv_ml = np.stack([y_val, 1 - y_val], 1)
    gains_ml = leave_cluster_out_gains(clusters, x, y_ml, x_val, yv_ml, task="multi-label", num_classes=2)
    assert gains_ml[0] > gains_ml[1]
    assert probe_auc(x[:0], y[:0], x_val, y_val, task="multi-class", num_classes=2) == 0.5


@pytest.mark.parametrize("task", ["multi-class", "multi-label"])
def test_ideal_levels_and_forest_scores(task):
    ctx = make_context(task=task, num_classes=3, n_pool=60, n_labelled=20, n_val=30)
    strategy = IDEAL({"n_levels": 4, "n_estimators": 20})
    s = strategy.scores(ctx)
    assert s.shape == (40,) and np.isfinite(s).all()
    assert s.min() >= 0.0 and s.max() <= 3.0  # predicted ordinal level in [0, n_levels − 1]
    again = IDEAL({"n_levels": 4, "n_estimators": 20}).scores(
        make_context(task=task, num_classes=3, n_pool=60, n_labelled=20, n_val=30))
    assert np.array_equal(s, again)


def test_ideal_without_a_labelled_history_ties_everything():
    ctx = make_context(task="multi-label", num_classes=3, n_pool=20, n_labelled=1)
    assert np.array_equal(IDEAL().scores(ctx), np.zeros(19))
    idx = call_strategy(IDEAL(), make_context(task="multi-label", num_classes=3, n_pool=20, n_labelled=1), 3,
                        timeout=60).indices
    assert idx.shape == (3,)


def test_ideal_is_labelled_approximate():
    assert "approximate" in IDEAL.summary and "approximate" in IDEAL.paper
    with pytest.raises(OptionsError):
        IDEAL({"n_levels": 1})
