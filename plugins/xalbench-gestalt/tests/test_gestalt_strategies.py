"""The GESTALT strategies end to end on tiny contexts: invariances, Weighted-Node's prior and
direction, the ablation options, the explainer sources and the encoders."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from scipy.stats import rankdata
from xalbench_gestalt import GestaltEdge, GestaltNode, GestaltWeightedNode
from xalbench_gestalt.encoders import classifier_encoder, normalise_maps
from xalbench_gestalt.graph import cosine_graph, labelled_node_stats, node_weights
from xalbench_gestalt.saliency import pool_maps

from xalbench.errors import ConfigError, OptionsError, StrategyContractError
from xalbench.explain.core import GradCAMExplainer
from xalbench.sandbox.context import StrategyContext
from xalbench.sandbox.guard import call_strategy
from xalbench.testing import make_context

VARIANTS = [GestaltNode, GestaltEdge, GestaltWeightedNode]


def ml_context(**kw: object) -> StrategyContext:
    kw.setdefault("task", "multi-label")
    kw.setdefault("num_classes", 4)
    kw.setdefault("n_pool", 48)
    return make_context(**kw)  # type: ignore[arg-type]


def rebuilt(ctx: StrategyContext, **changes: object) -> StrategyContext:
    """The same world as ``ctx`` with some constructor arguments replaced (fresh cache and rng)."""
    args = dict(model=ctx.model, pool_images=ctx.pool_images, labelled=ctx.labelled,
                labelled_labels=ctx.labelled_labels, labelled_roi=None, labelled_has_roi=None, val=ctx.val,
                task=ctx.task, num_classes=ctx.num_classes, spatial_dims=ctx.spatial_dims,
                rng=np.random.default_rng(ctx.seed), device=ctx.device, round_index=ctx.round_index,
                seed=ctx.seed, explainer=ctx.explainer, batch_size=ctx.batch_size)
    args.update(changes)
    return StrategyContext(**args)  # type: ignore[arg-type]


class ScaledGradCAM(GradCAMExplainer):
    """Grad-CAM maps times 8 (an explainer with another map scale)."""

    def explain(self, *a, **kw):  # type: ignore[no-untyped-def]
        return 8.0 * super().explain(*a, **kw)

    def explain_from_features(self, *a, **kw):  # type: ignore[no-untyped-def]
        return 8.0 * super().explain_from_features(*a, **kw)


@pytest.mark.parametrize("cls", VARIANTS)
def test_invariant_to_the_scale_of_the_saliency_maps(cls):
    base = ml_context()
    suite = {"saliency": "suite"}  # maps from the context's explainer, whatever it is
    a = cls(suite).scores(base)
    b = cls(suite).scores(rebuilt(base, explainer=ScaledGradCAM({"normalize": "none"})))
    c = cls(suite).scores(rebuilt(base, explainer=GradCAMExplainer({"normalize": "none"})))
    assert np.array_equal(b, c)  # ×8 (exact in floating point) changes nothing after min-max
    assert np.allclose(a, c)  # normalised vs raw maps: same codes up to rounding, same mean ranks


@pytest.mark.parametrize("cls", VARIANTS)
def test_invariant_to_a_permutation_of_the_classes(cls):
    base = ml_context()
    perm = torch.tensor([2, 0, 3, 1])
    model = copy.deepcopy(base.model)
    with torch.no_grad():  # the same network with its output classes reordered
        model.classifier.weight.copy_(base.model.classifier.weight[perm])
        model.classifier.bias.copy_(base.model.classifier.bias[perm])
    permuted = rebuilt(base, model=model, labelled_labels=base.labelled_labels[:, perm])
    assert np.allclose(cls().scores(base), cls().scores(permuted))


def test_scores_are_minus_the_mean_rank_and_invert_flips_them():
    ctx = ml_context()
    s = GestaltNode().scores(ctx)
    assert s.max() <= -1.0 and s.min() >= -len(ctx.unlabelled)
    assert np.array_equal(GestaltNode({"invert": True}).scores(ml_context()), -s)
    top = GestaltNode().query(ml_context(), 5)
    assert top.tolist() == ctx.unlabelled[np.argsort(-s, kind="stable")[:5]].tolist()


def test_weighted_node_prior_is_the_labelled_sets_node_statistics_under_the_current_model():
    ctx = ml_context()
    images = ctx.pool_images[torch.as_tensor(ctx.labelled)]
    maps = GradCAMExplainer({"relu": False}).explain(ctx.model, images, all_classes=True)
    z = classifier_encoder(maps, ctx.model, in_channels=1, batch_size=7, device=ctx.device)
    mean, sd = labelled_node_stats(node_weights(cosine_graph(z)))
    got_mean, got_sd = GestaltWeightedNode().prior(ctx)
    assert got_mean == pytest.approx(mean) and got_sd == pytest.approx(sd)
    # refreshed from whatever the labelled set is this round
    other = rebuilt(ctx, labelled=np.arange(20), labelled_labels=torch.zeros(20, 4))
    assert not np.allclose(GestaltWeightedNode().prior(other)[0], mean)


class EqualCosineWeightedNode(GestaltWeightedNode):
    """Encoder override: every pair of class codes of a sample has cosine ``s = 0.7 + 0.3·mean(map)``."""

    def encode(self, maps: torch.Tensor, ctx: StrategyContext) -> np.ndarray:
        n, k = maps.shape[:2]
        s = 0.7 + 0.3 * normalise_maps(maps.reshape(n, -1)).double().mean(1).numpy()
        common = np.zeros(k + 1)
        common[0] = 1.0
        basis = np.eye(k + 1)[1:]
        return np.sqrt(s)[:, None, None] * common + np.sqrt(1 - s)[:, None, None] * basis[None]


def test_literal_weighted_node_ranks_opposite_to_node_when_the_labelled_node_mean_is_at_least_2():
    ctx = ml_context()
    mean, _ = EqualCosineWeightedNode().prior(ctx)
    assert (mean >= 2.0).all()  # K = 4, every cosine ≥ 0.7 → node weights ≥ 2.1
    n = len(ctx.unlabelled)
    node = EqualCosineWeightedNode({"fixed_alpha": 1.0}).scores(ctx)  # = Node on these codes
    literal = EqualCosineWeightedNode().scores(ctx)
    scaled = EqualCosineWeightedNode({"alpha": "edge-scaled"}).scores(ctx)
    assert np.unique(node).size == n  # no ties: the orders are strict
    assert np.array_equal(np.argsort(literal), np.argsort(node)[::-1])
    assert np.array_equal(np.argsort(scaled), np.argsort(node))


@pytest.mark.parametrize("alpha", [0.05, 0.75])
def test_fixed_alpha_queries_exactly_what_node_queries(alpha):
    n = 40
    a = call_strategy(GestaltWeightedNode({"fixed_alpha": alpha}), ml_context(), n, timeout=60).indices
    b = call_strategy(GestaltNode(), ml_context(), n, timeout=60).indices
    assert a.tolist() == b.tolist()


def test_dynamic_alpha_differs_from_node_here():
    a = GestaltWeightedNode().scores(ml_context())
    b = GestaltNode().scores(ml_context())
    assert not np.array_equal(np.argsort(a, kind="stable"), np.argsort(b, kind="stable"))


@pytest.mark.parametrize("cls", [GestaltNode, GestaltWeightedNode])
def test_image_feature_ablation_needs_no_saliency(cls):
    ctx = ml_context(explainer=None)
    s = cls({"features": "image"}).scores(ctx)
    assert s.shape == (len(ctx.unlabelled),) and np.isfinite(s).all()
    e = ctx.cache.embeddings().double()
    nodes = (e[:, None, :] * ctx.model.classifier.weight.detach().double()[None]).numpy()  # e ⊙ W_k
    expected = -rankdata(-node_weights(cosine_graph(nodes)), axis=0).mean(1)
    opts = {"features": "image"} | ({"fixed_alpha": 1.0} if cls is GestaltWeightedNode else {})
    assert np.allclose(cls(opts).scores(ml_context(explainer=None)), expected)
    with pytest.raises(OptionsError, match="encoder = 'classifier'"):
        cls({"features": "image", "encoder": "pixels"})


def test_default_maps_are_all_class_gradcam_without_relu_from_the_cache():
    ctx = ml_context(explainer=None)  # the default needs no suite explainer
    maps = pool_maps(ctx, "gradcam", "test")
    expected = GradCAMExplainer({"relu": False}).explain(ctx.model, ctx.unlabelled_images, all_classes=True)
    assert maps.shape == (40, 4, 16, 16) and torch.allclose(maps, expected, atol=1e-6)
    assert call_strategy(GestaltNode(), ml_context(explainer=None), 5, timeout=60).indices.shape == (5,)


def test_relu_gradcam_collapses_the_graph_where_the_signed_default_does_not():
    base = ml_context()
    model = copy.deepcopy(base.model)
    with torch.no_grad():  # every class's evidence is negative everywhere: ReLU'd Grad-CAM maps are all zero
        model.classifier.weight.copy_(-model.classifier.weight.abs())
    relu = GestaltNode({"saliency": "suite"}).scores(rebuilt(base, model=model))
    signed = GestaltNode().scores(rebuilt(base, model=model))
    assert np.unique(relu).size == 1  # identical codes for every map: one big tie
    assert np.unique(signed).size > 20


def test_suite_saliency_without_an_explainer_is_one_clear_error():
    with pytest.raises(StrategyContractError) as info:
        call_strategy(GestaltNode({"saliency": "suite"}), ml_context(explainer=None), 5, timeout=60)
    assert isinstance(info.value.__cause__, ConfigError) and "[explainer]" in str(info.value.__cause__)


@pytest.mark.parametrize("cls", [GestaltNode, GestaltWeightedNode])
def test_deep_taylor_maps_are_built_from_ctx_whatever_the_suite_explainer(cls):
    ctx = ml_context(explainer=None, n_pool=24)
    s = cls({"saliency": "deep-taylor"}).scores(ctx)
    assert s.shape == (len(ctx.unlabelled),) and np.isfinite(s).all()
    assert not np.array_equal(s, cls().scores(ml_context(n_pool=24)))  # other maps, other ranking


def test_pixels_encoder_and_reduced_encoder_size():
    for opts in ({"encoder": "pixels", "grid": 4}, {"encoder_size": 8}):
        s = GestaltNode(opts).scores(ml_context())
        assert np.isfinite(s).all() and s.shape == (40,)
    ctx = ml_context()
    z = GestaltNode({"encoder": "pixels", "grid": 4}).encode(ctx.cache.saliency("all"), ctx)
    assert z.shape == (40, 4, 16)


def test_multiclass_and_3d():
    for kw in ({"task": "multi-class", "num_classes": 3}, {"spatial_dims": 3, "n_pool": 16, "n_labelled": 4}):
        for cls in VARIANTS:
            idx = call_strategy(cls(), ml_context(**kw), 3, timeout=60).indices
            assert idx.shape == (3,)


def test_bad_options_are_rejected():
    for bad in ({"encoder_size": -1}, {"grid": 0}, {"encoder": "vae"}, {"alpha": "other"}, {"eps": 0.0}):
        with pytest.raises(OptionsError):
            GestaltWeightedNode(bad)
    with pytest.raises(OptionsError):
        GestaltNode({"fixed_alpha": 0.5})  # only Weighted-Node has alpha
