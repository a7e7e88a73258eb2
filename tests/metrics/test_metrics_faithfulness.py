"""Faithfulness metrics: ordering on a network with a known decision region, torch vs Quantus parity,
the randomisation sanity check, subset handling and side effects."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from faithful_helpers import EdgeExplainer, FixedMapExplainer, RegionNet, make_eval, region_images, three_maps

from xalbench.errors import ConfigError
from xalbench.metrics.faithfulness import (
    FAITHFULNESS_METRICS,
    MPRT_FAIL_THRESHOLD,
    DeletionMetric,
    InsertionMetric,
    RandomisationMetric,
    ROADMetric,
    _use_quantus,
    faithfulness_inputs,
)
from xalbench.metrics.perturbation import (
    curve_auc,
    imputation_weights,
    noisy_linear_impute,
    perturbation_curve,
    relevance_order,
    road_curve,
)
from xalbench.metrics.quantus_backend import quantus_perturbation_curve, quantus_road

quantus = pytest.importorskip("quantus")

CURVE_METRICS = [DeletionMetric, InsertionMetric, ROADMetric]


def _score(cls, net, images, map_, **options):
    return cls(options).compute(make_eval(net, images, FixedMapExplainer(map_)))


def _better(cls, a: float, b: float) -> bool:
    return a < b if cls.direction == "min" else a > b


def test_registered_opt_in_with_honest_declarations(registry):
    names = {cls.name for cls in FAITHFULNESS_METRICS}
    assert names == {"deletion", "insertion", "road", "randomisation"} <= set(registry.names("metric"))
    for name in names:
        cls = registry.get("metric", name)
        assert not cls.default and cls.needs_explainer and cls.cost in ("moderate", "expensive")
        assert not cls.applies(task="multi-label", has_roi=True, has_explainer=True)
        assert not cls.applies(task="multi-class", has_roi=True, has_explainer=False)
    assert registry.get("metric", "deletion").direction == "min"
    assert registry.get("metric", "insertion").direction == "max"
    assert registry.get("metric", "road").direction == "min" and registry.get("metric", "road").cost == "expensive"
    mprt = registry.get("metric", "randomisation")
    assert mprt.scope == "cell" and not mprt.aulc and mprt.direction == "min" and mprt.bounds == (-1.0, 1.0)


@pytest.mark.parametrize("cls", CURVE_METRICS, ids=lambda c: c.name)
@pytest.mark.parametrize("dims", [2, 3])
def test_region_map_beats_random_beats_elsewhere(cls, dims, region2d, region3d):
    """The net's decision depends only on R: a map on R must score best, a random map in between."""
    net, mask, images = region2d if dims == 2 else region3d
    s = {name: _score(cls, net, images, m) for name, m in three_maps(mask).items()}
    assert _better(cls, s["region"], s["random"]) and _better(cls, s["random"], s["elsewhere"]), s
    assert all(0.0 <= v <= 1.0 for v in s.values())


def test_backend_dispatch():
    assert _use_quantus("auto", torch.zeros(2, 1, 16, 16), 16, "m")
    assert not _use_quantus("auto", torch.zeros(2, 3, 16, 16), 16, "m")  # multi-channel: Quantus mishandles it
    assert not _use_quantus("auto", torch.zeros(2, 1, 8, 8, 8), None, "m")  # 3D: Quantus rejects it
    assert not _use_quantus("auto", torch.zeros(2, 1, 10, 10), 16, "m")  # step would not divide H·W
    assert not _use_quantus("torch", torch.zeros(2, 1, 16, 16), 16, "m")
    with pytest.raises(ConfigError, match="only 2D single-channel"):
        _use_quantus("quantus", torch.zeros(2, 1, 8, 8, 8), None, "road")


@pytest.fixture(scope="module")
def trained_cnn(registry):
    """small-cnn trained to tell a bright square in the left half from one in the right half."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        n = 64
        x = 0.2 * torch.rand(n, 1, 16, 16)
        y = torch.arange(n) % 2
        rows = torch.randint(0, 12, (n,))
        cols = torch.randint(0, 4, (n,)) + 8 * y
        for i in range(n):
            x[i, 0, rows[i] : rows[i] + 4, cols[i] : cols[i] + 4] = 1.0
        net = registry.create("model", "small-cnn", {"width": 8, "n_blocks": 3}).build(1, 2, 2)
        opt = torch.optim.Adam(net.parameters(), lr=0.01)
        net.train()
        for _ in range(30):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(x), y).backward()
            opt.step()
        net.eval()
        net.zero_grad(set_to_none=True)
        with torch.no_grad():
            acc = float((net(x).argmax(1) == y).float().mean())
    assert acc > 0.9
    return net, x[:24]


@pytest.fixture(scope="module")
def cnn_1ch(trained_cnn):
    """The trained CNN with tie-free maps that point at the bright square (so removal flips predictions)."""
    net, images = trained_cnn
    maps = images[:10, 0] + 0.05 * torch.rand(10, 16, 16, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        targets = net(images[:10]).argmax(1)
    return net, images[:10], maps, targets


@pytest.mark.parametrize("lerf", [False, True], ids=["deletion", "insertion"])
def test_torch_curve_equals_quantus_pixel_flipping(cnn_1ch, lerf):
    net, images, maps, targets = cnn_1ch
    order = relevance_order(maps, seed=0)
    ours = perturbation_curve(net, images, order, targets, steps=8, lerf=lerf)
    theirs = quantus_perturbation_curve(net, images, order, targets, steps=8, baseline=0.0, lerf=lerf, batch_size=64)
    assert ours.shape == (10, 9) and theirs.shape == (10, 8)
    np.testing.assert_allclose(ours[:, 1:], theirs, atol=1e-5)
    assert not np.allclose(ours[:, 1:], ours[:, :1])  # the curve moves: the comparison is not vacuous


def test_torch_road_equals_quantus_road_without_noise(cnn_1ch):
    net, images, maps, targets = cnn_1ch
    order = relevance_order(maps, seed=0)
    pct = [10, 40, 70, 90]
    ours = road_curve(net, images, order, targets, percentages=pct, noise=0.0, seed=0).mean(0)
    theirs = quantus_road(net, images, order, targets, percentages=pct, noise=0.0, seed=0, batch_size=64)
    np.testing.assert_allclose(ours, theirs, atol=1e-12)
    assert ours.min() < 1.0  # some predictions flip


def test_metric_values_agree_across_backends(region2d):
    net, mask, images = region2d
    m = three_maps(mask)["random"]
    for cls in (DeletionMetric, InsertionMetric):
        assert _score(cls, net, images, m, backend="torch") == pytest.approx(_score(cls, net, images, m, backend="quantus"),
                                                                             abs=1e-6)
    road = [_score(ROADMetric, net, images, m, backend=b, noise=0.0) for b in ("torch", "quantus")]
    assert road[0] == pytest.approx(road[1], abs=1e-12)


@pytest.mark.parametrize("channels", [1, 3])
def test_imputation_equals_quantus_noisy_linear_imputation(channels):
    from quantus.functions.perturb_func import noisy_linear_imputation

    rng = np.random.default_rng(0)
    x = rng.random((channels, 12, 10)).astype(np.float32)
    idx = rng.choice(120, 70, replace=False)
    ours = noisy_linear_impute(x, idx, noise=0.0, rng=rng)
    np.testing.assert_allclose(ours, noisy_linear_imputation(x, idx, noise=0.0), atol=1e-6)
    assert np.abs(ours - x).max() > 0.1
    keep = np.setdiff1d(np.arange(120), idx)
    np.testing.assert_array_equal(ours.reshape(channels, -1)[:, keep], x.reshape(channels, -1)[:, keep])


def test_imputation_weights_are_roads_kernel_in_2d():
    w = dict(imputation_weights(2))
    assert w[(0, 1)] == pytest.approx(1 / 6) and w[(1, 1)] == pytest.approx(1 / 12)
    w3 = dict(imputation_weights(3))
    assert len(w3) == 26 and sum(w3.values()) == pytest.approx(1.0)
    assert w3[(0, 0, 1)] == pytest.approx(2 * w3[(0, 1, 1)]) == pytest.approx(3 * w3[(1, 1, 1)])


def test_imputation_interpolates_a_3d_ramp():
    """Noiseless linear imputation reproduces a linear ramp exactly (interior voxels)."""
    z = np.arange(6, dtype=np.float64)[:, None, None] + np.zeros((6, 6, 6))
    idx = np.ravel_multi_index(([2, 3, 3], [2, 2, 3], [3, 3, 2]), (6, 6, 6))
    out = noisy_linear_impute(z[None], idx, noise=0.0, rng=np.random.default_rng(0))
    np.testing.assert_allclose(out[0], z, atol=1e-10)


def test_quantus_road_fails_on_multichannel_images():
    """Why multi-channel images use the torch backend: Quantus 0.6 ROAD indexes H·W with C·H·W indices."""
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                              torch.nn.Flatten(), torch.nn.Linear(4, 3)).eval()
    x = np.random.default_rng(0).random((2, 3, 8, 8)).astype(np.float32)
    a = np.random.default_rng(1).random((2, 1, 8, 8)).astype(np.float32)
    with pytest.raises(IndexError):
        quantus.ROAD(percentages=[50], disable_warnings=True)(model=net, x_batch=x, y_batch=np.array([0, 1]), a_batch=a,
                                                               channel_first=True, device="cpu")


def test_multichannel_region_uses_torch_backend_and_orders_maps(region2d):
    _, mask, _ = region2d
    net, images = RegionNet(mask).eval(), region_images(mask, 8, seed=4, channels=3)
    maps = three_maps(mask)
    with pytest.raises(ConfigError):
        _score(ROADMetric, net, images, maps["region"], backend="quantus")
    s = {k: _score(DeletionMetric, net, images, m) for k, m in maps.items()}
    assert s["region"] < s["random"] < s["elsewhere"]


def test_subset_is_fixed_shared_and_bounded(region2d):
    net, mask, images = region2d
    calls = []

    class Counting(FixedMapExplainer):
        def explain(self, model, images, targets=None, **kw):
            calls.append(images.shape[0])
            return super().explain(model, images, targets, **kw)

    ev = make_eval(net, images, Counting(mask), seed=5)
    DeletionMetric({"n_images": 10}).compute(ev)
    InsertionMetric({"n_images": 10}).compute(ev)
    assert calls == [10]  # one explanation pass shared by both metrics
    a = faithfulness_inputs(ev, 10, 0).index
    b = faithfulness_inputs(make_eval(net, images, Counting(mask), seed=9), 10, 0).index
    np.testing.assert_array_equal(a, b)  # the subset does not depend on the cell seed
    assert faithfulness_inputs(ev, 100, 0).index.size == images.shape[0]
    assert not np.array_equal(faithfulness_inputs(ev, 10, 1).index, a)


def test_low_resolution_maps_are_resized(region2d):
    net, mask, images = region2d
    coarse = torch.nn.functional.avg_pool2d(mask[None, None], 4)[0, 0]  # 4×4 map
    fine = _score(DeletionMetric, net, images, mask)
    assert _score(DeletionMetric, net, images, coarse) < 0.5 and fine < 0.5


def test_undefined_cases_give_nan(region2d):
    net, mask, images = region2d
    assert np.isnan(DeletionMetric().compute(make_eval(net, images, None)))
    assert np.isnan(DeletionMetric().compute(make_eval(net, images, FixedMapExplainer(mask), task="multi-label")))


def test_options_are_validated():
    from xalbench.errors import OptionsError

    for cls, bad in [(DeletionMetric, {"steps": 0}), (ROADMetric, {"percentages": [50, 100]}),
                     (ROADMetric, {"percentages": [60, 20]}), (DeletionMetric, {"n_images": 0}),
                     (DeletionMetric, {"nonsense": 1})]:
        with pytest.raises(OptionsError):
            cls(bad)


def test_road_is_repeatable(region2d):
    net, mask, images = region2d
    m = three_maps(mask)["random"]
    for backend in ("torch", "quantus"):
        opts = {"backend": backend, "percentages": [30, 70], "n_images": 8}
        assert _score(ROADMetric, net, images, m, **opts) == _score(ROADMetric, net, images, m, **opts)


def test_curve_auc():
    assert curve_auc(np.array([[1.0, 0.0]]))[0] == pytest.approx(0.5)
    assert curve_auc(np.array([[1.0, 1.0, 0.0]]), x=[10, 20, 90])[0] == pytest.approx((10 + 35) / 80)
    assert curve_auc(np.array([[0.3]]))[0] == pytest.approx(0.3)


# ----------------------------------------------------------------------------- randomisation check
def test_randomisation_passes_gradcam_and_flags_an_edge_detector(registry, trained_cnn):
    net, images = trained_cnn
    gradcam = RandomisationMetric().compute(make_eval(net, images, registry.create("explainer", "gradcam")))
    edges = RandomisationMetric().compute(make_eval(net, images, EdgeExplainer()))
    assert gradcam < MPRT_FAIL_THRESHOLD, gradcam
    assert edges >= 0.99


def test_randomisation_runs_in_3d_and_flags_fixed_maps(region3d):
    net, mask, images = region3d
    assert RandomisationMetric().compute(make_eval(net, images, FixedMapExplainer(three_maps(mask)["random"]))) \
        == pytest.approx(1.0)


def test_metrics_leave_model_and_rng_state_untouched(registry, trained_cnn):
    net, images = trained_cnn
    ev = make_eval(net, images, registry.create("explainer", "gradcam"))
    state = {k: v.clone() for k, v in net.state_dict().items()}
    net.train()
    try:
        torch.manual_seed(11)
        np.random.seed(11)
        random.seed(11)
        before = (torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate())
        for cls in FAITHFULNESS_METRICS:
            value = cls({"n_images": 8}).compute(ev)
            assert np.isfinite(value)
        assert net.training and all(m.training for m in net.modules())
        assert all(torch.equal(v, net.state_dict()[k]) for k, v in state.items())
        assert all(p.grad is None for p in net.parameters())
        assert torch.equal(torch.get_rng_state(), before[0])
        assert np.array_equal(np.random.get_state()[1], before[1])
        assert random.getstate() == before[2]
    finally:
        net.eval()


def test_missing_quantus_names_the_extra(region2d, monkeypatch):
    import sys

    from xalbench.errors import UnsupportedError

    net, mask, images = region2d
    monkeypatch.setitem(sys.modules, "quantus", None)
    with pytest.raises(UnsupportedError, match=r"xalbench\[xai\]"):
        _score(DeletionMetric, net, images, mask, backend="quantus")
    assert _score(DeletionMetric, net, images, mask, backend="torch") < 0.5  # the torch backend needs no Quantus
