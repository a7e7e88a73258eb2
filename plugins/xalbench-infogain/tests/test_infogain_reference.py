"""The closed-form scores equal the literal Algorithm 1 (copy head, one SGD step, re-evaluate)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from xalbench_infogain import AEIG, CFIG, EIG, UIG, class_frequencies, ig_scores, reference_ig_scores
from xalbench_infogain.core import weights_for

from xalbench.sandbox.guard import call_strategy
from xalbench.testing.contexts import make_context


@pytest.fixture(scope="module")
def ctx():
    return make_context(n_pool=16, n_labelled=4, n_val=10, num_classes=3, explainer=None)


def _double_embeddings(ctx):
    m = copy.deepcopy(ctx.model).double().eval()
    pool = ctx.pool_images[torch.as_tensor(ctx.unlabelled)].double()
    with torch.no_grad():
        return m, m.embed(m.features(pool)), m.embed(m.features(ctx.val.images.double()))


@pytest.mark.parametrize("weighting", ["eig", "aeig", "uig", "cfig"])
@pytest.mark.parametrize("lr", [5e-4, 0.05, 1.0])
def test_closed_form_matches_literal_reference(ctx, weighting, lr):
    m, eu, ev = _double_embeddings(ctx)
    freq = class_frequencies(ctx.val.labels, ctx.num_classes)
    fast = ig_scores(m.classifier.weight, m.classifier.bias, eu, ev, freq, weighting=weighting, lr=lr, chunk_size=5)
    pool = ctx.pool_images[torch.as_tensor(ctx.unlabelled)]
    slow = reference_ig_scores(ctx.model, pool, ctx.val.images, freq, weighting=weighting, lr=lr)
    assert torch.allclose(fast, slow, rtol=0, atol=1e-10)
    if lr == 1.0:  # scores are informative, not constant, for a visible step
        assert slow.std() > 1e-6


def test_closed_form_matches_reference_without_bias(ctx):
    model = copy.deepcopy(ctx.model)
    model.classifier = torch.nn.Linear(model.classifier.in_features, ctx.num_classes, bias=False)
    torch.nn.init.normal_(model.classifier.weight, std=3.0, generator=torch.Generator().manual_seed(1))
    m = copy.deepcopy(model).double().eval()
    pool = ctx.pool_images[torch.as_tensor(ctx.unlabelled)]
    with torch.no_grad():
        eu, ev = m.embed(m.features(pool.double())), m.embed(m.features(ctx.val.images.double()))
    freq = class_frequencies(ctx.val.labels, ctx.num_classes)
    fast = ig_scores(m.classifier.weight, None, eu, ev, freq, weighting="aeig", lr=0.3)
    slow = reference_ig_scores(model, pool, ctx.val.images, freq, weighting="aeig", lr=0.3)
    assert torch.allclose(fast, slow, rtol=0, atol=1e-10)


def test_strategy_ranks_like_reference(ctx):
    """End to end (float32 cache → float64 scores): the strategy queries the reference's top-k."""
    for cls in (EIG, AEIG, UIG, CFIG):
        strategy = cls({"lr": 1.0})
        got = call_strategy(strategy, ctx, 4, timeout=60).indices
        pool = ctx.pool_images[torch.as_tensor(ctx.unlabelled)]
        freq = class_frequencies(ctx.val.labels, ctx.num_classes)
        ref = reference_ig_scores(ctx.model, pool, ctx.val.images, freq, weighting=cls.weighting, lr=1.0).numpy()
        fast = strategy.scores(ctx).numpy()
        np.testing.assert_allclose(fast, ref, atol=1e-6)
        expected = ctx.unlabelled[np.lexsort((np.arange(len(ref)), -fast))[:4]]
        assert got.tolist() == expected.tolist()


def test_weights_follow_the_paper():
    probs = torch.tensor([[0.7, 0.2, 0.1]], dtype=torch.float64)
    freq = class_frequencies(torch.tensor([0, 0, 0, 1]), 3)  # [0.75, 0.25, 0]
    assert torch.allclose(weights_for("eig", probs, freq), probs)
    assert torch.allclose(weights_for("aeig", probs, freq), torch.tensor([[0.525, 0.05, 0.0]], dtype=torch.float64))
    assert torch.allclose(weights_for("uig", probs, freq), torch.full((1, 3), 1 / 3, dtype=torch.float64))
    assert torch.allclose(weights_for("cfig", probs, freq), freq[None])


def test_aeig_prefers_samples_predicted_in_rare_val_classes():
    """Eq. (2) unnormalised: with a val set that is 90 % class 0, AEIG queries class-1/2-looking samples."""
    gen = torch.Generator().manual_seed(0)
    w = torch.eye(3, dtype=torch.float64) * 6.0
    eu = torch.eye(3, dtype=torch.float64).repeat(10, 1) + 0.05 * torch.randn(30, 3, generator=gen, dtype=torch.float64)
    ev = torch.eye(3, dtype=torch.float64)[torch.tensor([0] * 9 + [1])]
    freq = class_frequencies(torch.tensor([0] * 9 + [1]), 3)
    scores = ig_scores(w, torch.zeros(3, dtype=torch.float64), eu, ev, freq, weighting="aeig", lr=5e-4)
    top = torch.topk(scores, 10).indices
    predicted = (eu[top] @ w.T).argmax(1)
    assert (predicted != 0).all()
