"""xalbench.wrap: torchvision/MONAI classifiers become ExplainableNets with unchanged logits."""

from __future__ import annotations

import copy
import pickle

import pytest
import torch
import torchvision.models as tvm
from monai.networks import nets as mnets
from torch import nn

import xalbench
from xalbench.base import ExplainableNet
from xalbench.errors import ConfigError, UnsupportedError
from xalbench.explain.cam import PostProcess, explain_images, is_gap_linear_head
from xalbench.models.wrap import NeckWrappedNet, WrappedNet, wrap
from xalbench.plugins import load_registry

REGISTRY = load_registry()

# (builder, input shape, expected target layer, expected explanation-layer activation)
ARCHS = {
    "tv-resnet18": (lambda: tvm.resnet18(num_classes=5), (2, 3, 32, 32), "layer4"),
    "tv-densenet121": (lambda: tvm.densenet121(num_classes=5), (2, 3, 32, 32), "features"),
    "tv-efficientnet_b0": (lambda: tvm.efficientnet_b0(num_classes=5), (2, 3, 32, 32), "features"),
    "tv-mobilenet_v2": (lambda: tvm.mobilenet_v2(num_classes=5), (2, 3, 32, 32), "features"),
    "tv-mobilenet_v3_small": (lambda: tvm.mobilenet_v3_small(num_classes=5), (2, 3, 32, 32), "features"),
    "tv-convnext_tiny": (lambda: tvm.convnext_tiny(num_classes=5), (2, 3, 32, 32), "features"),
    "tv-regnet_y_400mf": (lambda: tvm.regnet_y_400mf(num_classes=5), (2, 3, 32, 32), "trunk_output"),
    "monai-resnet10-3d": (lambda: mnets.resnet10(spatial_dims=3, n_input_channels=1, num_classes=5),
                          (2, 1, 16, 16, 16), "layer4"),
    "monai-resnet18-2d": (lambda: mnets.resnet18(spatial_dims=2, n_input_channels=2, num_classes=5),
                          (2, 2, 32, 32), "layer4"),
    "monai-densenet-3d": (lambda: mnets.DenseNet(spatial_dims=3, in_channels=1, out_channels=5, init_features=8,
                                                 growth_rate=4, block_config=(2, 2, 2, 2)), (2, 1, 32, 32, 32), "features"),
    "monai-efficientnet-b0": (lambda: mnets.EfficientNetBN("efficientnet-b0", spatial_dims=2, in_channels=1,
                                                           num_classes=5, pretrained=False), (2, 1, 32, 32), "_bn1"),
    "monai-seresnet50": (lambda: mnets.SEResNet50(spatial_dims=2, in_channels=1, num_classes=5, dropout_prob=0.2),
                         (2, 1, 32, 32), "layer4"),
}


FAST = {"tv-resnet18", "tv-densenet121", "monai-resnet10-3d", "monai-densenet-3d"}  # the papers' families


@pytest.mark.parametrize("arch", [a if a in FAST else pytest.param(a, marks=pytest.mark.slow) for a in ARCHS])
def test_wrapped_logits_equal_the_original_and_split_is_usable(arch):
    builder, shape, target = ARCHS[arch]
    torch.manual_seed(0)
    model = builder().eval()
    x = torch.rand(shape)
    net = wrap(model)
    assert isinstance(net, ExplainableNet) and net.target_layer == target
    assert net.spatial_dims == len(shape) - 2
    with torch.no_grad():
        ref = model(x)
        a = net.features(x)
        out = net(x)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)
    assert a.dim() == len(shape) and a.shape[0] == 2
    assert net.embed(a).shape == (2, net.classifier.in_features)
    assert isinstance(net.classifier, nn.Linear) and net.classifier.out_features == 5
    torch.testing.assert_close(net.head(a), ref, rtol=1e-5, atol=1e-6)  # the pool cache's path
    # shared, not copied: the wrapper's parameters are the model's
    assert {id(p) for p in net.parameters()} == {id(p) for p in model.parameters()}
    assert all(not m._forward_hooks for m in model.modules())  # the stop hook is removed
    if arch == "monai-seresnet50":  # MONAI applies its dropout module between pool and linear
        assert net.dropout is model.dropout


def test_head_layers_are_found_by_architecture():
    densenet = wrap(tvm.densenet121(num_classes=3))
    assert isinstance(densenet.post, nn.ReLU) and is_gap_linear_head(densenet.eval())
    effnet = wrap(tvm.efficientnet_b0(num_classes=3))
    assert isinstance(effnet.dropout, nn.Dropout) and effnet.classifier is effnet.model.classifier[1]
    mnv3 = wrap(tvm.mobilenet_v3_small(num_classes=3))
    assert isinstance(mnv3, NeckWrappedNet) and mnv3.classifier is mnv3.model.classifier[3]
    assert mnv3.dropout is mnv3.model.classifier[2] and not is_gap_linear_head(mnv3)
    monai_dense = wrap(mnets.DenseNet(spatial_dims=2, in_channels=1, out_channels=3, init_features=8, growth_rate=4,
                                      block_config=(2, 2)))
    assert monai_dense.post is monai_dense.model.class_layers.relu
    # the common fine-tuning head Sequential(Dropout, Linear) is split too
    resnet = tvm.resnet18()
    resnet.fc = nn.Sequential(nn.Dropout(0.5), nn.Linear(512, 2))
    net = wrap(resnet)
    assert net.dropout is resnet.fc[0] and net.classifier is resnet.fc[1] and is_gap_linear_head(net.eval())


def test_modes_training_copies_and_pickles_follow_the_model():
    torch.manual_seed(0)
    model = tvm.resnet18(num_classes=3)
    net = wrap(model)
    net.eval()
    assert not model.training and not any(m.training for m in model.modules())
    net.train()
    x = torch.rand(4, 3, 32, 32)
    net.head(net.features(x)).sum().backward()  # gradients land on the model's own parameters
    assert model.layer1[0].conv1.weight.grad is not None and model.fc.weight.grad is not None
    net.eval()
    clone = copy.deepcopy(net)
    with torch.no_grad():
        before = clone(x)
        model.layer4[1].conv2.weight.mul_(0.0)  # editing the original does not reach the copy
        torch.testing.assert_close(clone(x), before)
        torch.testing.assert_close(pickle.loads(pickle.dumps(net))(x), net(x))
    state = net.state_dict()
    fresh = wrap(tvm.resnet18(num_classes=3)).eval()
    fresh.load_state_dict(state)
    with torch.no_grad():
        torch.testing.assert_close(fresh(x), net(x))


class TinyNet(nn.Module):
    """An unknown architecture: conv body, max pool + GAP head."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU())
        self.fc = nn.Linear(8, 3)

    def forward(self, x):
        return self.fc(self.body(x).mean((2, 3)))


def test_unknown_architectures_need_target_layer_and_say_so_in_one_line():
    with pytest.raises(UnsupportedError) as err:
        wrap(TinyNet())
    msg = str(err.value)
    assert "\n" not in msg and "target_layer='body'" in msg and "classifier='fc'" in msg
    x = torch.rand(2, 1, 8, 8)
    net = wrap(TinyNet(), target_layer="body", example=x)
    assert net.arch == "custom" and net.classifier is net.model.fc
    model = TinyNet()
    net = wrap(model, target_layer=model.body, classifier=model.fc)
    assert net.target_layer == "body"
    with pytest.raises(UnsupportedError, match="no convolution"):
        wrap(nn.Sequential(nn.Flatten(), nn.Linear(64, 3)))
    with pytest.raises(ConfigError, match="has no module 'nope'"):
        wrap(TinyNet(), target_layer="nope")
    with pytest.raises(ConfigError, match="not a submodule"):
        wrap(TinyNet(), target_layer=nn.Conv2d(1, 1, 1))


def test_wrong_splits_fail_with_what_to_pass():
    x = torch.rand(2, 3, 32, 32)
    with pytest.raises(ConfigError, match="global average pool of target_layer 'layer3'"):
        wrap(tvm.resnet18(num_classes=3), target_layer="layer3", example=x)
    headless = mnets.resnet10(spatial_dims=2, n_input_channels=1, num_classes=3, feed_forward=False)
    with pytest.raises(UnsupportedError, match="pass classifier="):
        wrap(headless)
    odd = tvm.resnet18()
    odd.fc = nn.Sequential(nn.Linear(512, 3), nn.Softmax(1))
    with pytest.raises(UnsupportedError, match="not an nn.Linear.*pass classifier="):
        wrap(odd)
    net = wrap(TinyNet(), target_layer="body")
    assert wrap(net) is net  # an ExplainableNet is returned unchanged
    with pytest.raises(UnsupportedError, match="'fc' gives \\(1, 3\\), not a B×C×"):
        wrap(TinyNet(), target_layer="fc").features(torch.rand(1, 1, 8, 8))
    unused = TinyNet()
    unused.spare = nn.Conv2d(8, 8, 1)
    with pytest.raises(UnsupportedError, match="never called target_layer 'spare'"):
        wrap(unused, target_layer="spare").features(torch.rand(1, 1, 8, 8))


def _library_gradcam(model, layer, x, targets):
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    with GradCAM(model=model, target_layers=[layer]) as cam:
        out = cam(input_tensor=x, targets=[ClassifierOutputTarget(int(t)) for t in targets])
    return torch.from_numpy(out)


@pytest.mark.parametrize("arch", ["resnet50", "densenet121"])
def test_gradcam_on_wrapped_torchvision_nets_equals_pytorch_grad_cam(arch):
    """Random init (no download): core Grad-CAM on the wrapped net = the library on the same layer."""
    torch.manual_seed(3)
    model = getattr(tvm, arch)(num_classes=4).eval()
    net = xalbench.wrap(model)
    x = torch.rand(2, 3, 96, 96, generator=torch.Generator().manual_seed(0))
    targets = torch.tensor([1, 3])
    ours = REGISTRY.create("explainer", "gradcam").explain(net, x, targets)
    # ResNet: the library on the untouched torchvision model (its documented layer4[-1]);
    # DenseNet: torchvision applies F.relu after norm5 functionally, so the library targets the wrapper's ReLU
    lib = (_library_gradcam(model, model.layer4[-1], x, targets) if arch == "resnet50"
           else _library_gradcam(net, net.post, x, targets))
    assert ours.shape == lib.shape == (2, 96, 96)
    assert torch.allclose(ours, lib, atol=1e-4)
    assert float(ours.amax()) > 0.9  # non-degenerate maps


@pytest.mark.parametrize("arch", ["resnet", "densenet"])
def test_gradcam_on_wrapped_monai_3d_nets_equals_monai_gradcam(arch):
    from monai.visualize import GradCAM as MonaiGradCAM

    torch.manual_seed(1)
    if arch == "resnet":
        model = mnets.resnet10(spatial_dims=3, n_input_channels=1, num_classes=3, conv1_t_stride=2, widen_factor=0.25)
        layer = "layer4"
        x = torch.rand(2, 1, 48, 48, 48)  # a 2×2×2 explanation layer
    else:  # MONAI's own documented layer for DenseNet: the ReLU after norm5 (a short DenseNet: same classes)
        model = mnets.DenseNet(spatial_dims=3, in_channels=1, out_channels=3, init_features=8, growth_rate=4,
                               block_config=(2, 2, 2, 2))
        layer, x = "class_layers.relu", torch.rand(2, 1, 64, 64, 64)
    model.eval()
    net = wrap(model)
    post = PostProcess(relu=True, resize=True, normalize="none")
    peaks = []
    for c in range(3):
        ref = MonaiGradCAM(nn_module=model, target_layers=layer, postprocessing=lambda m: m)(x, class_idx=c)[:, 0]
        ours = explain_images(net, x, torch.full((2,), c), post=post)
        assert ours.shape == ref.shape == x.shape[:1] + x.shape[2:]
        assert torch.allclose(ours, ref.detach(), atol=1e-6, rtol=1e-4)
        peaks.append(float(ours.amax()))
    assert max(peaks) > 0  # not all classes give all-zero maps


@pytest.mark.slow
@pytest.mark.parametrize("name", ["cam", "gradcam", "hirescam", "gradcam++", "xgradcam", "layercam", "eigencam",
                                  "lrp-epsilon-plus-flat", "deep-taylor"])
def test_every_core_and_adapter_explainer_accepts_a_wrapped_model(name):
    torch.manual_seed(0)
    net = wrap(tvm.resnet18(num_classes=3)).eval()
    x = torch.rand(2, 3, 64, 64)
    maps = REGISTRY.create("explainer", name).explain(net, x, torch.tensor([0, 2]))
    assert maps.shape == (2, 64, 64) and float(maps.min()) >= 0 and float(maps.max()) <= 1


def test_lrp_on_wrapped_densenet_is_refused_clearly():
    """zennit has no DenseNet canonizer (BatchNorm after concatenations): one clear error."""
    net = wrap(tvm.densenet121(num_classes=3)).eval()
    with pytest.raises(UnsupportedError, match="no canonizer"):
        REGISTRY.create("explainer", "deep-taylor").explain(net, torch.rand(1, 3, 32, 32))


def test_differentiable_gradcam_through_wrapped_3d_net_reaches_its_weights():
    torch.manual_seed(0)
    model = mnets.resnet10(spatial_dims=3, n_input_channels=1, num_classes=2, widen_factor=0.25)
    net = wrap(model).train()
    x = torch.rand(2, 1, 32, 32, 32)  # a 2×2×2 explanation layer (1×1×1 maps are constant: no gradient)
    maps = REGISTRY.create("explainer", "gradcam").explain(net, x, torch.tensor([0, 1]), create_graph=True)
    maps.sum().backward()
    assert model.layer1[0].conv1.weight.grad is not None and model.layer1[0].conv1.weight.grad.abs().sum() > 0


def test_explain_your_own_model_readme_example():
    """The README's "Explain your own model" example, verbatim apart from sizes."""
    import torchvision

    import xalbench
    from xalbench.plugins import load_registry

    registry = load_registry()
    net = xalbench.wrap(torchvision.models.resnet50(num_classes=4)).eval()  # any torchvision/MONAI CNN
    x = torch.rand(2, 3, 64, 64)  # B×C×H×W in [0, 1]
    targets = torch.tensor([0, 3])  # one class per image
    maps = registry.create("explainer", "gradcam").explain(net, x, targets)  # B×H×W in [0, 1]
    assert maps.shape == (2, 64, 64) and float(maps.min()) >= 0 and float(maps.max()) <= 1
    assert isinstance(net, WrappedNet) and net.target_layer == "layer4"
