"""pytorch-grad-cam and zennit adapters: one target per sample, modes restored, no hooks, scoring only."""

from __future__ import annotations

import pytest
import torch

from xalbench.errors import UnsupportedError
from xalbench.sandbox.guard import model_fingerprint

LIBRARY = ["gradcam++", "xgradcam", "scorecam", "eigencam", "layercam"]
LRP = ["lrp-epsilon-plus-flat", "lrp-epsilon-gamma-box", "deep-taylor"]


def test_registered_with_differentiable_flags(registry):
    for name in ("cam", "gradcam", "hirescam"):
        assert registry.get("explainer", name).differentiable
        assert registry.record("explainer", name).as_dict()["differentiable"] is True
    for name in LIBRARY + LRP:
        assert not registry.get("explainer", name).differentiable


@pytest.mark.parametrize("name", LIBRARY + LRP)
def test_batch_maps_equal_per_sample_maps_and_side_effects(registry, net2d, images2d, name):
    ex = registry.create("explainer", name)
    targets = torch.tensor([0, 3, 1, 2, 3, 0])
    net2d.train()
    fp = model_fingerprint(net2d)
    try:
        maps = ex.explain(net2d, images2d, targets)
        assert net2d.training and all(m.training for m in net2d.modules())  # train mode restored
        assert model_fingerprint(net2d) == fp  # BN stats and (canonizer-merged) weights restored
        assert all(not m._forward_hooks and not m._backward_hooks and not m._forward_pre_hooks
                   for m in net2d.modules())
        assert maps.shape == (6, 32, 32) and maps.dtype == torch.float32
        assert float(maps.min()) >= 0 and float(maps.max()) <= 1
        # one target per sample: sample i's map equals the map computed for it alone (no zip truncation)
        for i in (1, 4):
            alone = ex.explain(net2d, images2d[i : i + 1], targets[i : i + 1])
            assert torch.allclose(maps[i], alone[0], atol=1e-4)
    finally:
        net2d.eval()


@pytest.mark.parametrize("name", LIBRARY + LRP)
def test_scoring_only(registry, net2d, images2d, name):
    with pytest.raises(UnsupportedError, match="scoring-only"):
        registry.create("explainer", name).explain(net2d, images2d, create_graph=True)


@pytest.mark.parametrize("name", ["gradcam++", "xgradcam", "layercam", "lrp-epsilon-gamma-box"])
def test_3d_and_all_classes(registry, net3d, images3d, name):
    ex = registry.create("explainer", name)
    every = ex.explain(net3d, images3d, all_classes=True)
    assert every.shape == (3, 3, 16, 16, 16)
    t = torch.tensor([2, 0, 1])
    assert torch.allclose(every[torch.arange(3), t], ex.explain(net3d, images3d, t), atol=1e-5)


def test_scorecam_is_2d_only(registry, net3d, images3d):
    with pytest.raises(UnsupportedError, match="2D only"):
        registry.create("explainer", "scorecam").explain(net3d, images3d)


def test_lrp_rejects_unknown_models_unless_allowed(registry, tanh_net, images2d):
    with pytest.raises(UnsupportedError, match="no canonizer"):
        registry.create("explainer", "deep-taylor").explain(tanh_net, images2d)
    maps = registry.create("explainer", "deep-taylor", {"allow_unknown_models": True}).explain(tanh_net, images2d)
    assert maps.shape == (6, 32, 32)


def test_library_gradcam_pp_agrees_with_core_gradcam_in_rank(registry, net2d, images2d):
    """Different methods, same evidence: Grad-CAM++ and Grad-CAM maps correlate on a GAP + linear net."""
    t = torch.tensor([0, 1, 2, 3, 0, 1])
    a = registry.create("explainer", "gradcam").explain(net2d, images2d, t).flatten(1)
    b = registry.create("explainer", "gradcam++").explain(net2d, images2d, t).flatten(1)
    corr = torch.nn.functional.cosine_similarity(a - a.mean(1, keepdim=True), b - b.mean(1, keepdim=True))
    assert float(corr.mean()) > 0.5


def test_lrp_on_an_uncanonisable_model_is_one_clear_error() -> None:
    """zennit's rules break on DenseNet's concatenations: a one-line UnsupportedError, not a raw RuntimeError."""
    import torchvision

    import xalbench
    from xalbench.errors import UnsupportedError
    from xalbench.explain.lrp import LRPEpsilonPlusFlat

    net = xalbench.wrap(torchvision.models.densenet121(num_classes=3)).eval()
    explainer = LRPEpsilonPlusFlat({"allow_unknown_models": True})
    with pytest.raises(UnsupportedError, match="gradcam"):
        explainer.explain(net, torch.rand(1, 3, 64, 64), torch.tensor([0]))
