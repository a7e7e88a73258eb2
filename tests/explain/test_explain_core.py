"""CAM core: shapes, parity with pytorch-grad-cam and MONAI, gradients, side effects."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from xalbench.errors import ConfigError
from xalbench.explain.cam import PostProcess, explain_features, explain_images, is_gap_linear_head, raw_maps
from xalbench.explain.wrappers import MarkedNet
from xalbench.sandbox.context import PoolCache


def _grad_cam_lib(cls, net, x, targets):
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    w = MarkedNet(net)
    flags = [(m, m.training) for m in net.modules()]
    with cls(model=w, target_layers=[w.marker]) as cam:
        out = cam(input_tensor=x, targets=[ClassifierOutputTarget(int(t)) for t in targets])
    for m, f in flags:
        m.training = f
    return torch.from_numpy(out)


@pytest.mark.parametrize("method", ["gradcam", "hirescam"])
@pytest.mark.parametrize("closed_form", [True, False])
def test_gradcam_matches_pytorch_grad_cam(registry, net2d, images2d, method, closed_form):
    from pytorch_grad_cam import GradCAM, HiResCAM

    targets = torch.tensor([0, 1, 2, 3, 0, 2])
    ours = registry.create("explainer", method, {"closed_form": closed_form}).explain(net2d, images2d, targets)
    lib = _grad_cam_lib(GradCAM if method == "gradcam" else HiResCAM, net2d, images2d, targets)
    assert ours.shape == lib.shape == (6, 32, 32)
    assert torch.allclose(ours, lib, atol=1e-4)


def test_generic_head_matches_pytorch_grad_cam(registry, tanh_net, images2d):
    """A non-GAP head (in-place ReLU body) uses the autograd path and still matches the library."""
    from pytorch_grad_cam import GradCAM

    assert not is_gap_linear_head(tanh_net)
    targets = torch.tensor([2, 1, 0, 2, 1, 0])
    ours = registry.create("explainer", "gradcam").explain(tanh_net, images2d, targets)
    lib = _grad_cam_lib(GradCAM, tanh_net, images2d, targets)
    assert torch.allclose(ours, lib, atol=1e-4)
    assert float(ours.max()) > 0.9  # non-degenerate maps


def test_cam_equals_gradcam_on_gap_linear(registry, net2d, images2d):
    cam = registry.create("explainer", "cam").explain(net2d, images2d, all_classes=True)
    grad = registry.create("explainer", "gradcam", {"closed_form": False}).explain(net2d, images2d, all_classes=True)
    assert torch.allclose(cam, grad, atol=1e-5)


def test_closed_form_equals_autograd_all_classes_2d_3d(net2d, images2d, net3d, images3d):
    for net, x in ((net2d, images2d), (net3d, images3d)):
        with torch.no_grad():
            a = net.features(x)
        for method in ("gradcam", "hirescam"):
            fast = raw_maps(net, a, method=method, all_classes=True, closed_form=True)
            slow = raw_maps(net, a, method=method, all_classes=True, closed_form=False)
            assert fast.shape == (x.shape[0], net.classifier.out_features, *a.shape[2:])
            assert torch.allclose(fast, slow, atol=1e-6, rtol=1e-4)


def test_shapes_ranges_and_predicted_class_default(registry, net2d, images2d, net3d, images3d):
    g = registry.create("explainer", "gradcam")
    for net, x in ((net2d, images2d), (net3d, images3d)):
        one = g.explain(net, x)
        every = g.explain(net, x, all_classes=True)
        assert one.shape == (x.shape[0], *x.shape[2:])
        assert every.shape == (x.shape[0], net.classifier.out_features, *x.shape[2:])
        assert float(one.min()) >= 0 and float(one.max()) <= 1
        pred = net(x).argmax(1)
        assert torch.equal(one, g.explain(net, x, pred))
        assert torch.allclose(every[torch.arange(x.shape[0]), pred], one, atol=1e-6)


def test_explain_from_features_equals_explain_and_pool_cache(registry, net2d, images2d):
    g = registry.create("explainer", "gradcam")
    with torch.no_grad():
        a = net2d.features(images2d)
    t = torch.tensor([3, 2, 1, 0, 1, 2])
    assert torch.allclose(g.explain_from_features(net2d, a, t, output_shape=(32, 32)), g.explain(net2d, images2d, t))
    cache = PoolCache(net2d, images2d, task="multi-class", explainer=g, device=torch.device("cpu"), batch_size=4)
    assert torch.allclose(cache.saliency("pred"), g.explain(net2d, images2d), atol=1e-6)
    assert torch.allclose(cache.saliency("all"), g.explain(net2d, images2d, all_classes=True), atol=1e-6)


def test_3d_gradcam_agrees_with_monai(net3d, images3d):
    from monai.visualize import GradCAM as MonaiGradCAM

    assert not net3d.training
    w = MarkedNet(net3d)
    assert not w.training  # MONAI restores ``w.training`` recursively after each call
    monai_cam = MonaiGradCAM(nn_module=w, target_layers="marker", postprocessing=lambda m: m)
    post = PostProcess(relu=True, resize=True, normalize="none")
    for c in range(3):  # MONAI mixes classes for per-sample class tensors: use one int class per call
        ref = monai_cam(images3d, class_idx=c)[:, 0].detach()
        ours = explain_images(net3d, images3d, torch.full((3,), c), post=post, closed_form=False)
        assert ours.shape == ref.shape == (3, 16, 16, 16)
        assert torch.allclose(ours, ref, atol=1e-6, rtol=1e-4)
    assert not any(m.training for m in net3d.modules())


def test_dues_per_depth_weights_differ_from_global(net3d, images3d):
    with torch.no_grad():
        a = net3d.features(images3d)
    t = torch.zeros(3, dtype=torch.long)
    per_depth = raw_maps(net3d, a, t, weight_pool="hw", closed_form=False)
    assert per_depth.shape == (3, 1, *a.shape[2:])
    # GAP + linear gradients are constant over space, so per-slice averages equal the global one
    assert torch.allclose(per_depth, raw_maps(net3d, a, t), atol=1e-6)
    with pytest.raises(ConfigError, match="3D"):
        raw_maps(net3d, a[:, :, 0], t, weight_pool="hw")


@pytest.mark.parametrize("closed_form", [True, False])
def test_create_graph_in_train_mode_reaches_conv_and_classifier(registry, closed_form):
    torch.manual_seed(0)
    net = registry.create("model", "small-cnn", {"width": 4}).build(1, 3, 2).train()
    x = torch.rand(4, 1, 16, 16)
    roi = torch.zeros(4, 16, 16)
    roi[:, 4:10, 4:10] = 1
    g = registry.create("explainer", "gradcam", {"closed_form": closed_form})
    maps = g.explain(net, x, torch.tensor([0, 1, 2, 0]), create_graph=True)
    assert maps.requires_grad and net.training
    ((maps - roi) ** 2).mean().backward()
    first_conv, clf = net.body[0].weight.grad, net.classifier.weight.grad
    assert first_conv is not None and clf is not None
    assert float(first_conv.abs().sum()) > 0 and float(clf.abs().sum()) > 0


def test_detach_weights_blocks_classifier_gradient(registry):
    torch.manual_seed(0)
    net = registry.create("model", "small-cnn", {"width": 4}).build(1, 3, 2).train()
    x = torch.rand(4, 1, 16, 16)
    a = net.features(x)
    maps = explain_features(net, a, torch.tensor([0, 1, 2, 0]), create_graph=True, detach_weights=True,
                            post=PostProcess(relu=False, resize=False, normalize="none"))
    maps.sum().backward()
    assert net.classifier.weight.grad is None  # GRADIA/RES/DUE pattern: constant channel weights
    assert float(net.body[0].weight.grad.abs().sum()) > 0


def test_scoring_restores_modes_and_leaves_batchnorm_and_hooks(registry, net2d, images2d):
    net2d.train()
    net2d.dropout.eval()  # mixed flags must come back per module
    bn = net2d.body[1]
    before = bn.running_mean.clone(), int(bn.num_batches_tracked)
    try:
        for name in ("gradcam", "cam", "hirescam"):
            registry.create("explainer", name).explain(net2d, images2d)
            registry.create("explainer", name).explain(net2d, images2d, all_classes=True)
        assert net2d.training and bn.training and not net2d.dropout.training
        assert torch.equal(bn.running_mean, before[0]) and int(bn.num_batches_tracked) == before[1]
        assert all(not m._forward_hooks and not m._backward_hooks for m in net2d.modules())
    finally:
        net2d.eval()


def test_postprocess_options_reproduce_paper_normalisations(net2d, images2d):
    with torch.no_grad():
        a = net2d.features(images2d)
    t = torch.zeros(6, dtype=torch.long)
    raw = raw_maps(net2d, a, t)[:, 0]
    cyborg = explain_features(net2d, a, t, post=PostProcess(relu=False, resize=False, eps=0.0))
    shifted = raw - raw.flatten(1).amin(1)[:, None, None]
    np.testing.assert_allclose(cyborg, shifted / shifted.flatten(1).amax(1)[:, None, None], rtol=1e-5)
    assert cyborg.shape == a.shape[:1] + a.shape[2:]  # feature resolution
    res = explain_features(net2d, a, t, post=PostProcess(relu=False, resize=False, eps=1e-6))
    np.testing.assert_allclose(res, shifted / (shifted.flatten(1).amax(1)[:, None, None] + 1e-6), rtol=1e-5)


def test_bad_targets_raise_clear_errors(registry, net2d, images2d):
    g = registry.create("explainer", "gradcam")
    with pytest.raises(ConfigError, match="one target per sample"):
        g.explain(net2d, images2d, torch.tensor([0, 1]))
    with pytest.raises(ConfigError, match="integer class indices"):
        g.explain(net2d, images2d, torch.zeros(6))
    with pytest.raises(ConfigError, match=r"\[0, 4\)"):
        g.explain(net2d, images2d, torch.full((6,), 7))
    with pytest.raises(ConfigError, match="B×C×H×W"):
        g.explain(net2d, images2d[0])
