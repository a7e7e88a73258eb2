"""Captum explainers: the explainer contract, equality with Captum's own output after the documented
normalisation, maps on a network whose decision depends only on a known region, Guided Backprop's
ReLU check."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

from xalbench.base import ExplainableNet
from xalbench.errors import ConfigError, OptionsError, UnsupportedError
from xalbench.explain.captum_attr import CAPTUM_EXPLAINERS, functional_relu_calls, normalise_attribution
from xalbench.sandbox.guard import model_fingerprint
from xalbench.testing.explainer_checks import parametrize_with_explainer_checks

captum_attr = pytest.importorskip("captum.attr")

sys.path.insert(0, str(Path(__file__).parents[1] / "metrics"))
from faithful_helpers import RegionNet, region_images, region_mask  # noqa: E402

NAMES = [cls.name for cls in CAPTUM_EXPLAINERS]
FAST = {"integrated-gradients": {"n_steps": 8}, "smoothgrad": {"nt_samples": 4}, "occlusion": {"window": 8}}


@pytest.mark.slow
@parametrize_with_explainer_checks([cls(FAST.get(cls.name, {})) for cls in CAPTUM_EXPLAINERS])
def test_conformance_kit(explainer, check):
    check(explainer)


def _create(registry, name, **options):
    return registry.create("explainer", name, {**FAST.get(name, {}), **options})


def test_registered_scoring_only(registry):
    assert set(NAMES) == {"integrated-gradients", "saliency", "input-x-gradient", "guided-backprop", "occlusion",
                          "smoothgrad"}
    for name in NAMES:
        cls = registry.get("explainer", name)
        assert not cls.differentiable and cls.supports_3d and cls.summary and cls.paper
        assert registry.record("explainer", name).as_dict()["differentiable"] is False


@pytest.mark.parametrize("name", NAMES)
def test_contract_and_side_effects(registry, net2d, images2d, name):
    ex = _create(registry, name)
    targets = torch.tensor([0, 3, 1, 2, 3, 0])
    images = images2d.clone()
    net2d.train()
    net2d.zero_grad(set_to_none=True)  # the session's net2d may carry another test's gradients
    fp = model_fingerprint(net2d)
    rng = torch.get_rng_state()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # Captum's per-call warnings are filtered by the adapter
            maps = ex.explain(net2d, images, targets)
        assert net2d.training and all(m.training for m in net2d.modules())
        assert model_fingerprint(net2d) == fp
        assert all(p.grad is None for p in net2d.parameters())
        assert all(not m._forward_hooks and not m._backward_hooks and not m._forward_pre_hooks
                   for m in net2d.modules())
        assert torch.equal(torch.get_rng_state(), rng)
        assert torch.equal(images, images2d) and not images.requires_grad
        assert maps.shape == (6, 32, 32) and maps.dtype == torch.float32 and not maps.requires_grad
        assert float(maps.min()) >= 0 and float(maps.max()) <= 1 and float(maps.max()) > 0.99
        for i in (1, 4):  # one target per sample; a sample's map does not depend on its batch
            alone = ex.explain(net2d, images2d[i : i + 1], targets[i : i + 1])
            assert torch.allclose(maps[i], alone[0], atol=1e-4)
        assert torch.equal(ex.explain(net2d, images2d, targets), maps)  # repeatable
        predicted = ex.explain(net2d, images2d)
        with torch.no_grad():
            net2d.eval()
            pred = net2d(images2d).argmax(1)
        assert torch.allclose(predicted, ex.explain(net2d, images2d, pred), atol=1e-6)
    finally:
        net2d.eval()


@pytest.mark.parametrize("name", NAMES)
def test_scoring_only_and_bad_input(registry, net2d, images2d, name):
    ex = _create(registry, name)
    with pytest.raises(UnsupportedError, match="scoring-only"):
        ex.explain(net2d, images2d, create_graph=True)
    with pytest.raises(ConfigError, match="one target per sample"):
        ex.explain(net2d, images2d, torch.tensor([0, 1]))
    with pytest.raises(ConfigError, match="B×C×H×W"):
        ex.explain(net2d, images2d[0])


@pytest.mark.parametrize("name", NAMES)
def test_3d_and_all_classes(registry, net3d, images3d, name):
    ex = _create(registry, name)
    every = ex.explain(net3d, images3d, all_classes=True)
    assert every.shape == (3, 3, 16, 16, 16)
    t = torch.tensor([2, 0, 1])
    assert torch.allclose(every[torch.arange(3), t], ex.explain(net3d, images3d, t), atol=1e-5)


def _captum_reference(name, net, x, t):
    """Captum called directly with the adapter's settings (defaults of each option)."""
    ca = captum_attr
    if name == "integrated-gradients":
        return ca.IntegratedGradients(net).attribute(x, baselines=0.0, target=t, n_steps=8, method="gausslegendre",
                                                     internal_batch_size=512)
    if name == "saliency":
        return ca.Saliency(net).attribute(x, target=t)
    if name == "input-x-gradient":
        return ca.InputXGradient(net).attribute(x, target=t)
    if name == "guided-backprop":
        return ca.GuidedBackprop(net).attribute(x, target=t)
    if name == "occlusion":
        return ca.Occlusion(net).attribute(x, sliding_window_shapes=(3, 8, 8), strides=(3, 8, 8), baselines=0.0,
                                           target=t, perturbations_per_eval=16)
    out = []
    for i in range(x.shape[0]):
        with torch.random.fork_rng():
            torch.manual_seed(0)
            out.append(ca.NoiseTunnel(ca.Saliency(net)).attribute(x[i : i + 1], nt_type="smoothgrad", nt_samples=4,
                                                                   stdevs=0.15, target=t[i : i + 1]))
    return torch.cat(out)


@pytest.mark.parametrize("name", NAMES)
def test_equals_captum_after_documented_normalisation(registry, net2d, images2d, name):
    t = torch.tensor([0, 3, 1, 2, 3, 0])
    ex = _create(registry, name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        raw = _captum_reference(name, net2d, images2d.clone(), t).detach()
    a = raw.sum(1)  # channels summed
    a = a.clamp_min(0) if name == "occlusion" else a.abs()  # sign: occlusion "positive", others "absolute_value"
    lo = a.flatten(1).amin(1)[:, None, None]
    hi = a.flatten(1).amax(1)[:, None, None]
    expected = (a - lo) / (hi - lo + 1e-7)  # per-sample min-max
    assert torch.allclose(ex.explain(net2d, images2d, t), expected, atol=1e-5)


def test_signs():
    raw = torch.tensor([[[[-2.0, 1.0], [0.0, 0.5]]]])
    assert torch.allclose(normalise_attribution(raw, "absolute_value")[0], torch.tensor([[1.0, 0.5], [0.0, 0.25]]),
                          atol=1e-6)
    assert torch.allclose(normalise_attribution(raw, "positive")[0], torch.tensor([[0.0, 1.0], [0.0, 0.5]]), atol=1e-6)
    assert torch.allclose(normalise_attribution(raw, "all")[0], torch.tensor([[0.0, 1.0], [2 / 3, 2.5 / 3]]), atol=1e-6)
    with pytest.raises(OptionsError):
        CAPTUM_EXPLAINERS[0]({"sign": "negative"})


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dims", [2, 3])
def test_maps_lie_on_the_only_region_the_decision_uses(registry, name, dims):
    """On a net whose output provably depends only on R, (almost) all map mass lies inside R."""
    mask = region_mask((16, 16), 4, 12) if dims == 2 else region_mask((8, 8, 8), 2, 6)
    net, images = RegionNet(mask).eval(), region_images(mask, 3, seed=2)
    maps = _create(registry, name, **({"window": None} if name == "occlusion" else {})).explain(net, images)
    inside = (maps * mask).flatten(1).sum(1) / maps.flatten(1).sum(1)
    assert bool((inside > 0.99).all()), inside


class FunctionalReluNet(ExplainableNet):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.classifier = nn.Linear(4, 4)

    def features(self, x):
        return torch.relu(self.conv(x))


class SharedReluNet(ExplainableNet):
    """Two convolutions, one in-place ``nn.ReLU`` module used after both (as torchvision's ResNet blocks do)."""

    def __init__(self, shared: bool = True) -> None:
        super().__init__()
        self.c1, self.c2 = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1)
        self.r1 = nn.ReLU(inplace=True)
        self.r2 = self.r1 if shared else nn.ReLU(inplace=True)
        self.classifier = nn.Linear(4, 4)

    def features(self, x):
        h = self.r1(self.c1(x))
        return self.r2(self.c2(h) + h)


def test_guided_backprop_refuses_functional_relu(registry, images2d):
    torch.manual_seed(0)
    net = FunctionalReluNet().eval()
    assert functional_relu_calls(net, images2d[:1]) == 1
    with pytest.raises(UnsupportedError, match="functional ReLU"):
        registry.create("explainer", "guided-backprop").explain(net, images2d)
    registry.create("explainer", "saliency").explain(net, images2d)  # the others do not care


def test_guided_backprop_handles_reused_inplace_relu_modules(registry, images2d, net2d):
    torch.manual_seed(0)
    shared, separate = SharedReluNet(True).eval(), SharedReluNet(False).eval()
    separate.load_state_dict(shared.state_dict())
    assert functional_relu_calls(shared, images2d[:1]) == 0 and functional_relu_calls(net2d, images2d[:1]) == 0
    gb = registry.create("explainer", "guided-backprop")
    t = torch.tensor([0, 1, 2, 3, 0, 1])
    a, b = gb.explain(shared, images2d, t), gb.explain(separate, images2d, t)
    assert torch.allclose(a, b, atol=1e-6)
    # sanity: Guided Backprop really modified the ReLUs (it is not the plain gradient)
    signed_grad = captum_attr.Saliency(separate).attribute(images2d.clone().requires_grad_(), target=t, abs=False)
    assert not torch.allclose(a, normalise_attribution(signed_grad), atol=1e-3)


def test_options_validated(registry):
    with pytest.raises(OptionsError):
        registry.create("explainer", "integrated-gradients", {"n_steps": 0})
    with pytest.raises(OptionsError):
        registry.create("explainer", "occlusion", {"window": 0})
    with pytest.raises(ConfigError, match="exceeds"):
        registry.create("explainer", "occlusion", {"window": 64}).explain(
            FunctionalReluNet().eval(), torch.rand(1, 3, 16, 16))


def test_missing_captum_names_the_extra(registry, net2d, images2d, monkeypatch):
    monkeypatch.setitem(sys.modules, "captum.attr", None)
    with pytest.raises(UnsupportedError, match=r"xalbench\[xai\]"):
        registry.create("explainer", "saliency").explain(net2d, images2d)


def test_smoothgrad_batch_noise_option(registry, net2d, images2d):
    """One NoiseTunnel call per batch: repeatable, but a sample's map then depends on its batch."""
    ex = registry.create("explainer", "smoothgrad", {"nt_samples": 4, "per_sample_noise": False})
    t = torch.tensor([0, 3, 1, 2, 3, 0])
    maps = ex.explain(net2d, images2d, t)
    assert torch.equal(maps, ex.explain(net2d, images2d, t))
    assert not torch.allclose(maps[4], ex.explain(net2d, images2d[4:5], t[4:5])[0], atol=1e-4)
