"""Built-in strategies compute the published scores and pick what those scores say."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from xalbench.base import ExplainableNet, Split
from xalbench.errors import OptionsError, StrategyContractError
from xalbench.sandbox.context import StrategyContext
from xalbench.sandbox.guard import call_strategy
from xalbench.strategies.bayesian import BALD, MCDropoutEntropy
from xalbench.strategies.common import topk_by_score
from xalbench.strategies.diversity import BADGE, CoreSet
from xalbench.strategies.uncertainty import EntropySampling, LeastConfidence, MarginSampling, RandomSampling
from xalbench.testing.contexts import make_context

P = torch.tensor([[0.5, 0.3, 0.2]], dtype=torch.float64)


def test_reference_values_for_p_5_3_2():
    """Values from the SAL reference notes: LC 0.5, margin 0.2, entropy 1.0297 nats."""
    assert EntropySampling().score(P, False).item() == pytest.approx(1.0297, abs=1e-4)
    assert LeastConfidence().score(P, False).item() == pytest.approx(0.5)
    assert MarginSampling().score(P, False).item() == pytest.approx(-0.2)


def test_multilabel_aggregation_is_mean_over_labels():
    p = torch.tensor([[0.5, 1.0], [0.9, 0.1]], dtype=torch.float64)
    ent = EntropySampling().score(p, True)
    assert ent[0].item() == pytest.approx(math.log(2) / 2)
    assert LeastConfidence().score(p, True)[1].item() == pytest.approx(0.1)
    assert MarginSampling().score(p, True)[0].item() == pytest.approx(-0.5)


class FakeCache:
    def __init__(self, probs=None, mc=None):
        self._p, self._mc = probs, mc

    def probs(self):
        return self._p

    def mc_probs(self, n_samples=20):
        assert n_samples == self.expected_t
        return self._mc


def fake_ctx(probs=None, mc=None, unlabelled=(3, 5, 8, 9), task="multi-class", t=20):
    cache = FakeCache(probs, mc)
    cache.expected_t = t
    return SimpleNamespace(cache=cache, unlabelled=np.asarray(unlabelled), task=task)


def test_uncertainty_strategies_pick_the_most_uncertain_with_stable_ties():
    probs = torch.tensor([[0.9, 0.1], [0.5, 0.5], [0.6, 0.4], [0.5, 0.5]])
    ctx = fake_ctx(probs)
    for cls in (EntropySampling, LeastConfidence, MarginSampling):
        assert cls().query(ctx, 3).tolist() == [5, 9, 8], cls.name  # tie 5/9 → lower position first


def test_bald_and_mcd_entropy_on_known_mc_samples():
    # Sample 0: passes disagree confidently (BALD = ln 2); sample 1: every pass uniform (BALD = 0).
    mc = torch.tensor([[[1.0, 0.0], [0.5, 0.5]], [[0.0, 1.0], [0.5, 0.5]]], dtype=torch.float64)
    bald = BALD().score(mc, False)
    assert bald[0].item() == pytest.approx(math.log(2), abs=1e-6) and bald[1].item() == pytest.approx(0.0, abs=1e-9)
    assert MCDropoutEntropy().score(mc, False).tolist() == pytest.approx([math.log(2)] * 2)
    assert BALD({"n_samples": 2}).query(fake_ctx(mc=mc, unlabelled=(4, 7), t=2), 1).tolist() == [4]
    with pytest.raises(OptionsError, match="n_samples"):
        BALD({"n_samples": 0})


def test_mc_strategies_are_deterministic_and_see_dropout():
    a = call_strategy(BALD(), make_context(explainer=None, seed=1, dropout=0.5), 6, timeout=60).indices
    b = call_strategy(BALD(), make_context(explainer=None, seed=1, dropout=0.5), 6, timeout=60).indices
    assert a.tolist() == b.tolist()
    ctx = make_context(explainer=None, seed=1, dropout=0.5)
    mc = ctx.cache.mc_probs(20)
    assert mc.shape == (20, len(ctx.unlabelled), 3) and mc.std(0).max() > 0


def test_topk_by_score_rejects_nan_and_misaligned_scores():
    ctx = fake_ctx()
    with pytest.raises(StrategyContractError) as info:
        topk_by_score(np.array([0.1, np.nan, 0.2, 0.3]), ctx, 2)
    assert info.value.rule == "nan"
    with pytest.raises(StrategyContractError, match="scored 3"):
        topk_by_score(np.zeros(3), ctx, 2)
    assert topk_by_score(np.array([1.0, 2.0, 0.0, 2.0]), ctx, 10).tolist() == [5, 9, 3, 8]


class PointNet(ExplainableNet):
    """Identity features: a pool image ``d×1×1`` *is* its embedding (so geometry is exact)."""

    def __init__(self, d: int, k: int) -> None:
        super().__init__()
        self.classifier = nn.Linear(d, k)

    def features(self, x):
        return x


def point_ctx(points: np.ndarray, labelled: list[int], k_cls: int = 3, seed: int = 0) -> StrategyContext:
    torch.manual_seed(seed)
    net = PointNet(points.shape[1], k_cls).eval()
    imgs = torch.as_tensor(points, dtype=torch.float32)[:, :, None, None]
    val = Split(images=imgs[:2], labels=torch.zeros(2, dtype=torch.long))
    return StrategyContext(
        model=net, pool_images=imgs, labelled=np.asarray(labelled), labelled_labels=torch.zeros(len(labelled)),
        labelled_roi=None, labelled_has_roi=None, val=val, task="multi-class", num_classes=k_cls, spatial_dims=2,
        rng=np.random.default_rng(seed), device=torch.device("cpu"), round_index=0, seed=seed,
    )


def brute_k_center(points, labelled, k):
    centres, chosen = [points[i] for i in labelled], []
    for _ in range(k):
        d = np.array([min(np.sum((p - c) ** 2) for c in centres) if i not in labelled + chosen else -1
                      for i, p in enumerate(points)])
        chosen.append(int(np.argmax(d)))
        centres.append(points[chosen[-1]])
    return chosen


def test_coreset_is_greedy_k_center_seeded_with_labelled():
    pts = np.arange(11, dtype=float)[:, None]  # 0..10 on a line, 0 labelled
    assert CoreSet().query(point_ctx(pts, [0]), 3).tolist() == [10, 5, 2]  # 2, 3, 7, 8 tie at distance 2 → lowest index
    rng = np.random.default_rng(4)
    pts = rng.normal(size=(40, 5))
    labelled = [1, 7, 20]
    got = call_strategy(CoreSet({"chunk_size": 2}), point_ctx(pts, labelled), 8, timeout=60).indices
    assert got.tolist() == brute_k_center(pts, labelled, 8)


def brute_badge(ctx, k):
    """BADGE with the explicit U×(K·d) gradient-embedding matrix (reference)."""
    e = ctx.cache.embeddings().double().numpy()
    p = ctx.cache.probs().double().numpy()
    r = p - np.eye(p.shape[1])[p.argmax(1)]
    g = (r[:, :, None] * e[:, None, :]).reshape(len(e), -1)
    chosen = [int(np.argmax((g ** 2).sum(1)))]
    d2 = ((g - g[chosen[0]]) ** 2).sum(1)
    rng = ctx.rng
    while len(chosen) < k:
        w = np.clip(d2, 0, None)
        w[chosen] = 0
        chosen.append(int(rng.choice(len(w), p=w / w.sum())))
        d2 = np.minimum(d2, ((g - g[chosen[-1]]) ** 2).sum(1))
    return ctx.unlabelled[chosen].tolist()


def test_badge_matches_explicit_gradient_embedding_kmeanspp():
    pts = np.random.default_rng(2).normal(size=(30, 4))
    got = BADGE().query(point_ctx(pts, [0, 1], seed=5), 6)
    assert got.tolist() == brute_badge(point_ctx(pts, [0, 1], seed=5), 6)
    assert len(set(got.tolist())) == 6


def test_random_uses_ctx_rng():
    a = RandomSampling().query(make_context(explainer=None, seed=2), 5)
    b = RandomSampling().query(make_context(explainer=None, seed=3), 5)
    assert a.tolist() != b.tolist()
