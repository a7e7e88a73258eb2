"""Every registered model: feature/head split, logits, CAM shape in 2D (and 3D); the papers' backbones'
options, channels, classes and local-only pretrained weights."""

from __future__ import annotations

import os

import pytest
import torch
from torch import nn

from xalbench.base import ExplainableNet
from xalbench.errors import OptionsError, PretrainedWeightsError, UnsupportedError
from xalbench.models.wrap import NeckWrappedNet, WrappedNet
from xalbench.plugins import load_registry

REGISTRY = load_registry()
NAMES = REGISTRY.names("model")
NAMES_3D = [n for n in NAMES if REGISTRY.get("model", n).supports_3d]
LIGHT_3D = {"monai-densenet121": {"init_features": 16, "growth_rate": 8}}  # defaults are covered in 2D
BACKBONES = ["densenet121", "resnet50", "monai-resnet18", "monai-densenet121"]


def _check_split(net: ExplainableNet, x: torch.Tensor, num_classes: int) -> None:
    net.eval()
    with torch.no_grad():
        a = net.features(x)
        logits = net(x)
        assert a.dim() == x.dim() and a.shape[0] == x.shape[0]
        assert net.embed(a).shape == (x.shape[0], net.classifier.in_features)
        torch.testing.assert_close(net.head(a), logits)
        if isinstance(net, WrappedNet):  # the wrapped architecture's own forward gives the same logits
            torch.testing.assert_close(logits, net.model(x), rtol=1e-5, atol=1e-6)
    assert logits.shape == (x.shape[0], num_classes) and net.classifier.out_features == num_classes
    maps = REGISTRY.create("explainer", "gradcam").explain(net, x, torch.arange(x.shape[0]) % num_classes)
    assert maps.shape == (x.shape[0], *x.shape[2:]) and float(maps.min()) >= 0 and float(maps.max()) <= 1


def test_papers_backbones_are_registered_by_xalbench():
    for name in BACKBONES:
        assert REGISTRY.record("model", name).distribution == "xalbench"
    assert REGISTRY.get("model", "monai-resnet18").supports_3d and not REGISTRY.get("model", "resnet50").supports_3d


@pytest.mark.parametrize("name", NAMES)
def test_every_model_splits_in_2d(name):
    torch.manual_seed(0)
    net = REGISTRY.create("model", name).build(in_channels=1, num_classes=4, spatial_dims=2)
    assert isinstance(net, ExplainableNet) and net.spatial_dims == 2
    _check_split(net, torch.rand(2, 1, 32, 32), 4)


@pytest.mark.parametrize("name", NAMES_3D)
def test_every_3d_model_splits_in_3d(name):
    torch.manual_seed(0)
    net = REGISTRY.create("model", name, LIGHT_3D.get(name)).build(in_channels=2, num_classes=3, spatial_dims=3)
    assert net.spatial_dims == 3
    _check_split(net, torch.rand(1, 2, 32, 32, 32), 3)


@pytest.mark.parametrize("name", ["densenet121", "resnet50"])
def test_torchvision_backbones_any_channels_and_classes_2d_only(name):
    model = REGISTRY.create("model", name, {"dropout": 0.0})
    for channels, classes in ((1, 7), (4, 2)):
        net = model.build(channels, classes)
        stem = net.model.get_submodule(type(model).first_conv)
        assert stem.in_channels == channels and net.classifier.out_features == classes
        assert isinstance(net.dropout, nn.Identity)  # dropout = 0: torchvision's own head
    with pytest.raises(UnsupportedError, match="2D only; use 'monai-"):
        model.build(1, 2, spatial_dims=3)


def test_head_dropout_and_embedding_options():
    net = REGISTRY.create("model", "densenet121", {"dropout": 0.5, "embedding_dim": 32}).build(1, 3)
    assert isinstance(net, NeckWrappedNet) and isinstance(net.dropout, nn.Dropout) and net.dropout.p == 0.5
    net.eval()
    with torch.no_grad():
        assert net.embed(net.features(torch.rand(2, 1, 32, 32))).shape == (2, 32)
    for bad in ({"dropout": 1.0}, {"embedding_dim": -1}, {"width": 2}):
        with pytest.raises(OptionsError):
            REGISTRY.create("model", "resnet50", bad)
    with pytest.raises(OptionsError, match="'A', 'B'"):
        REGISTRY.create("model", "monai-resnet18", {"shortcut_type": "C"})
    small = REGISTRY.create("model", "monai-densenet121", {"init_features": 8, "growth_rate": 4}).build(1, 2, 3)
    assert small.model.features.conv0.out_channels == 8


def test_imagenet_weights_come_from_the_local_cache_only(tmp_path, monkeypatch):
    from torchvision.models import DenseNet121_Weights, densenet121

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(PretrainedWeightsError) as err:
        REGISTRY.create("model", "densenet121", {"pretrained": "imagenet"}).build(3, 2)
    assert "local torch cache" in str(err.value) and "IMAGENET1K_V1" in str(err.value) and "\n" not in str(err.value)
    torch.manual_seed(0)
    reference = densenet121(weights=None)
    path = os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(DenseNet121_Weights.IMAGENET1K_V1.url))
    os.makedirs(os.path.dirname(path))
    torch.save(reference.state_dict(), path)
    net = REGISTRY.create("model", "densenet121", {"pretrained": "imagenet"}).build(1, 2)
    block = net.model.features.denseblock4.denselayer16
    assert torch.equal(block.conv2.weight, reference.features.denseblock4.denselayer16.conv2.weight)
    stem = reference.features.conv0.weight
    assert torch.allclose(net.model.features.conv0.weight, stem.mean(1, keepdim=True))  # RGB averaged
    assert net.classifier.out_features == 2  # ImageNet head dropped


def test_local_checkpoints_legacy_densenet_keys_and_mismatches(tmp_path):
    from torchvision.models import densenet121

    torch.manual_seed(1)
    reference = densenet121(weights=None)
    legacy = {k.replace("norm1.", "norm.1.").replace("conv2.", "conv.2."): v for k, v in reference.state_dict().items()
              if not k.endswith("num_batches_tracked")}  # as in torchvision's 2017 file
    path = tmp_path / "densenet.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in legacy.items()}}, path)
    net = REGISTRY.create("model", "densenet121", {"pretrained": str(path)}).build(3, 5)
    assert torch.equal(net.model.features.denseblock1.denselayer1.norm1.weight,
                       reference.features.denseblock1.denselayer1.norm1.weight)
    with pytest.raises(PretrainedWeightsError, match="does not fit this architecture"):
        REGISTRY.create("model", "monai-resnet18", {"pretrained": str(path), "widen_factor": 0.25}).build(3, 5)
    with pytest.raises(PretrainedWeightsError, match="does not exist"):
        REGISTRY.create("model", "resnet50", {"pretrained": str(tmp_path / "missing.pth")}).build(3, 5)
    with pytest.raises(PretrainedWeightsError, match="no torchvision ImageNet weights"):
        REGISTRY.create("model", "monai-resnet18", {"pretrained": "imagenet"}).build(1, 2, 3)


def test_monai_checkpoint_with_other_channels_is_averaged(tmp_path):
    torch.manual_seed(2)
    source = REGISTRY.create("model", "monai-resnet18", {"dropout": 0.0, "widen_factor": 0.25}).build(2, 9, 3)
    path = tmp_path / "medicalnet-like.pt"
    torch.save(source.model.state_dict(), path)
    net = REGISTRY.create("model", "monai-resnet18", {"pretrained": str(path), "widen_factor": 0.25}).build(1, 3, 3)
    assert torch.allclose(net.model.conv1.weight, source.model.conv1.weight.mean(1, keepdim=True))
    assert torch.equal(net.model.layer3[1].conv2.weight, source.model.layer3[1].conv2.weight)
    assert net.classifier.out_features == 3
