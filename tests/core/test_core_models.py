"""Every registered model: explanation layer + head split, 2D/3D, pretrained weights only from cache."""

from __future__ import annotations

import os

import pytest
import torch

from xalbench.base import ExplainableNet
from xalbench.errors import PretrainedWeightsError, UnsupportedError
from xalbench.plugins import load_registry

REGISTRY = load_registry()


@pytest.mark.parametrize("name", REGISTRY.names("model"))
def test_model_splits_into_features_and_head(name: str) -> None:
    net = REGISTRY.create("model", name).build(in_channels=1, num_classes=4, spatial_dims=2)
    assert isinstance(net, ExplainableNet)
    x = torch.rand(2, 1, 32, 32)
    net.eval()
    a = net.features(x)
    assert a.dim() == 4 and a.shape[0] == 2
    assert torch.allclose(net.head(a), net(x))
    assert net.classifier.out_features == 4
    assert net.embed(a).shape == (2, net.classifier.in_features)


def test_small_cnn_3d() -> None:
    net = REGISTRY.create("model", "small-cnn", {"width": 4, "n_blocks": 3}).build(1, 3, spatial_dims=3)
    out = net(torch.rand(2, 1, 8, 16, 16))
    assert out.shape == (2, 3) and net.features(torch.rand(1, 1, 8, 16, 16)).dim() == 5


def test_resnet18_is_2d_only() -> None:
    with pytest.raises(UnsupportedError, match="small-cnn"):
        REGISTRY.create("model", "resnet18").build(1, 3, spatial_dims=3)


def test_resnet18_pretrained_needs_local_cache(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(PretrainedWeightsError) as err:
        REGISTRY.create("model", "resnet18", {"pretrained": True}).build(3, 2)
    assert "local torch cache" in str(err.value) and "pretrained = false" in str(err.value)


def test_resnet18_pretrained_loads_cached_file(tmp_path, monkeypatch) -> None:
    from torchvision.models import ResNet18_Weights, resnet18

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    torch.manual_seed(0)
    reference = resnet18(weights=None)
    path = os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(ResNet18_Weights.IMAGENET1K_V1.url))
    os.makedirs(os.path.dirname(path))
    torch.save(reference.state_dict(), path)
    net = REGISTRY.create("model", "resnet18", {"pretrained": True}).build(1, 2)
    assert torch.equal(net.layer4[0].conv1.weight, reference.layer4[0].conv1.weight)
    # single-channel stem = RGB weights averaged
    assert torch.allclose(net.stem[0].weight, reference.conv1.weight.mean(1, keepdim=True))
