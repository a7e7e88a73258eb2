"""Eq. 1-3 on hand-computed numbers, and the λ = 1 / λ = 0 limits of the ranking."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from xalbench_egal import EGAL, egal_score, entropy_term, misalignment

import xalbench
from xalbench.base import stable_topk
from xalbench.errors import OptionsError
from xalbench.sandbox.guard import call_strategy
from xalbench.strategies.uncertainty import EntropySampling

# three 2×2 samples, two classes (numbers worked out by hand in the comments)
PROBS = torch.tensor([[0.5, 0.5], [0.9, 0.1], [0.6, 0.4]], dtype=torch.float64)
MAPS = torch.tensor([[[1.0, 0.0], [0.0, 0.0]],    # A: Σs = 1
                     [[0.0, 0.5], [0.5, 0.0]],    # B: Σs = 1
                     [[0.2, 0.0], [0.0, 0.0]]], dtype=torch.float64)
ROI = torch.tensor([[[1.0, 1.0], [0.0, 0.0]],     # A: Σm = 2, Σsm = 1 → Dice 2/3 → D = 1/3
                    [[1.0, 0.0], [0.0, 0.0]],     # B: Σsm = 0 → D = 1
                    [[0.0, 0.0], [0.0, 0.0]]], dtype=torch.float64)  # C: no ROI
H_A, H_B, H_C = math.log(2), -(0.9 * math.log(0.9) + 0.1 * math.log(0.1)), -(0.6 * math.log(0.6) + 0.4 * math.log(0.4))


def test_entropy_is_unnormalised_nats_and_optionally_divided_by_log_k():
    h = entropy_term(PROBS)
    assert h.numpy() == pytest.approx([H_A, H_B, H_C], abs=1e-12)  # 0.693147, 0.325083, 0.673012
    assert entropy_term(PROBS, normalise=True).numpy() == pytest.approx(np.array([H_A, H_B, H_C]) / math.log(2))


def test_misalignment_is_one_minus_soft_dice():
    d = misalignment(MAPS[:2], ROI[:2])
    assert d.numpy() == pytest.approx([1 / 3, 1.0], abs=1e-12)


def test_composite_score_hand_computed():
    d = misalignment(MAPS, ROI)
    has = torch.tensor([True, True, False])
    s = egal_score(entropy_term(PROBS), d, has, 0.5)
    # A: 0.5·0.693147 + 0.5·(1/3) = 0.513240; B: 0.5·0.325083 + 0.5·1 = 0.662541; C (no ROI): 0.5·0.673012
    assert s.numpy() == pytest.approx([0.5132402, 0.6625415, 0.3365058], abs=1e-6)
    assert stable_topk(s.numpy(), 3).tolist() == [1, 0, 2]


def test_empty_roi_rules():
    d = misalignment(MAPS, ROI)  # C: 1 − 0/0.2 = 1 (eq. 2 literally)
    has = torch.tensor([True, True, False])
    h = entropy_term(PROBS)
    assert float(egal_score(h, d, has, 0.5, "entropy-term")[2]) == pytest.approx(0.5 * H_C)
    assert float(egal_score(h, d, has, 0.5, "entropy")[2]) == pytest.approx(H_C)
    assert float(egal_score(h, d, has, 0.5, "literal")[2]) == pytest.approx(0.5 * H_C + 0.5)
    # ROI samples are scored the same way under every rule
    for rule in ("entropy-term", "entropy", "literal"):
        assert egal_score(h, d, has, 0.5, rule)[:2].numpy() == pytest.approx([0.5132402, 0.6625415], abs=1e-6)


def test_lambda_outside_unit_interval_rejected():
    with pytest.raises(OptionsError, match="lam"):
        EGAL({"lam": 1.5})


@pytest.mark.parametrize("task", ["multi-class", "multi-label"])
def test_lambda_one_ranks_exactly_as_entropy(context, task):
    n = 60
    a = call_strategy(EGAL({"lam": 1.0}), context(task=task, num_classes=4), n, timeout=60).indices
    b = call_strategy(EntropySampling(), context(task=task, num_classes=4), n, timeout=60).indices
    assert len(a) == n - 8 and a.tolist() == b.tolist()


def test_lambda_zero_ranks_by_misalignment(context):
    ctx = context()
    maps = ctx.cache.saliency("pred").double()
    roi = ctx.pool_roi.double()
    s, m = maps.flatten(1), roi.flatten(1)
    d = 1 - 2 * (s * m).sum(1) / (s.sum(1) + m.sum(1))  # eq. 2, written out independently
    expected = ctx.unlabelled[stable_topk(d.numpy(), 10)]
    got = EGAL({"lam": 0.0}).query(context(), 10)
    assert got.tolist() == expected.tolist()


def test_lambda_zero_queries_the_planted_misaligned_samples_first(context, rebuilt):
    """ROIs on the attended region for half of the pool, on the unattended region for the other half."""
    base = context()
    maps = base.cache.saliency("pred")
    roi = base._pool_roi.clone()
    misaligned = base.unlabelled[1::2]
    for pos, i in enumerate(base.unlabelled):
        m = maps[pos]
        roi[i] = (m >= m.median()).float() if i not in misaligned else (m < m.median()).float()
    ctx = rebuilt(base, pool_roi=roi)
    got = EGAL({"lam": 0.0}).query(ctx, len(misaligned))
    assert sorted(got.tolist()) == sorted(misaligned.tolist())


def test_default_ignores_misalignment_of_roi_less_samples(context, rebuilt):
    base = context()
    roi = base._pool_roi.clone()
    empty = base.unlabelled[:10]
    roi[torch.as_tensor(empty)] = 0.0
    ctx = rebuilt(base, pool_roi=roi)
    strat = EGAL({"lam": 0.5})
    terms = strat.scores(ctx)
    h = terms.entropy
    assert not terms.has_roi[:10].any() and terms.has_roi[10:].all()
    assert np.isnan(terms.misalignment[:10]).all()
    assert terms.score[:10] == pytest.approx(0.5 * h[:10])
    assert terms.score[10:] == pytest.approx(0.5 * h[10:] + 0.5 * terms.misalignment[10:])
    only_h = EGAL({"lam": 0.5, "empty_roi": "entropy"}).scores(rebuilt(base, pool_roi=roi))
    assert only_h.score[:10] == pytest.approx(h[:10])
    # at λ = 0 the ROI-less samples score 0 and are queried last
    last = EGAL({"lam": 0.0}).query(rebuilt(base, pool_roi=roi), len(base.unlabelled))
    assert sorted(last[-10:].tolist()) == sorted(empty.tolist())


def test_feature_resolution_maps_are_compared_with_area_resampled_rois(context):
    from xalbench.explain.core import GradCAMExplainer

    ctx = context(explainer=GradCAMExplainer({"resize": False}))
    maps = ctx.cache.saliency("pred").double()
    assert maps.shape[1:] != ctx.pool_roi.shape[1:]  # feature grid, not 16×16
    pooled = torch.nn.functional.adaptive_avg_pool2d(ctx.pool_roi.double()[:, None], maps.shape[1:])[:, 0]
    s, m = maps.flatten(1), pooled.flatten(1)
    d = 1 - 2 * (s * m).sum(1) / (s.sum(1) + m.sum(1))
    terms = EGAL({"lam": 0.0}).scores(ctx)
    assert terms.misalignment == pytest.approx(d.numpy(), abs=1e-12)


def test_default_query_takes_the_top_k_of_the_array_like_terms(context):
    assert EGAL.query is xalbench.Strategy.query  # ranks only through scores()
    ctx = context()
    terms = EGAL({"lam": 0.4}).scores(ctx)
    assert np.array_equal(np.asarray(terms), terms.score) and len(terms) == len(ctx.unlabelled)
    assert np.asarray(terms, dtype=np.float32).dtype == np.float32
    picks = EGAL({"lam": 0.4}).query(context(), 7)
    assert picks.tolist() == ctx.unlabelled[stable_topk(terms.score, 7)].tolist()
