"""DUE's losses, its Grad-CAM and the 3D ResNet-18 backbone."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from xalbench_due.losses import DUEBaselinePlusLoss, DUELoss, DUEPaperLoss, due_cam, sparse_roi
from xalbench_due.model import DUEResNet18

from xalbench.base import Batch, RoundInfo, Split
from xalbench.errors import ConfigError
from xalbench.losses.supervision import annotated_pairs

from .conftest import toy_volumes  # noqa: TID252

TINY_DUE = dict(fit_volumes=0, train_steps=5, train_batch=8, ddim_steps=2, n_samples=2, target_samples=1,
                predictor_volumes=2, predictor_steps=5)


def _net(widen: float = 0.125, seed: int = 0):
    torch.manual_seed(seed)
    return DUEResNet18({"widen": widen}).build(1, 2, 3)


def _data(n: int = 6, depth: int = 9, size: int = 16, negatives: int = 2) -> Split:
    vols = toy_volumes(n, depth, size, seed=3)
    roi = torch.stack([r for r, _ in vols])
    roi[n - negatives:] = 0.0  # negatives: empty masks
    flags = torch.zeros(n, depth, dtype=torch.bool)
    flags[:, ::2] = True
    g = torch.Generator().manual_seed(0)
    images = (0.3 * roi + 0.1 * torch.rand(roi.shape, generator=g))[:, None]
    labels = torch.tensor([1] * (n - negatives) + [0] * negatives)
    return Split(images, labels, roi=roi, has_roi=torch.ones(n, dtype=torch.bool), annotated_slices=flags)


def _batch(split: Split) -> Batch:
    return Batch(split.images, split.labels, "multi-class", roi=split.roi, has_roi=split.has_roi,
                 annotated_slices=split.annotated_slices, index=torch.arange(len(split)))


def _info(split: Split) -> RoundInfo:
    return RoundInfo(0, len(split), 1.0, 0, "multi-class", 2, 3, labelled=split, index=np.arange(len(split)))


# ------------------------------------------------------------------------------------------ model
@pytest.mark.parametrize(("shape", "options", "grid"), [
    ((16, 32, 32), {}, (4, 4, 4)),
    ((12, 24, 24), {}, (3, 3, 3)),
    ((12, 24, 24), {"conv1_stride": [1, 1, 1]}, (3, 6, 6)),
    ((16, 32, 32), {"no_max_pool": False, "layer4_stride": 2}, (1, 1, 1)),  # the topology that breaks DUE
])
def test_cam_grid_on_small_volumes(shape, options, grid):
    net = DUEResNet18({"widen": 0.125, **options}).build(1, 2, 3)
    assert tuple(net.features(torch.zeros(2, 1, *shape)).shape[2:]) == grid
    assert net(torch.zeros(2, 1, *shape)).shape == (2, 2)


def test_model_width_scales_and_bad_options_fail_clearly():
    small = sum(p.numel() for p in DUEResNet18({"widen": 0.125}).build(1, 2, 3).parameters())
    large = sum(p.numel() for p in DUEResNet18({"widen": 0.25}).build(1, 2, 3).parameters())
    assert large > 3 * small
    with pytest.raises(ConfigError, match="conv1_stride"):
        DUEResNet18({"conv1_stride": [1, 2]}).build(1, 2, 3)
    with pytest.raises(ConfigError, match="layer4_stride"):
        DUEResNet18({"layer4_stride": 3}).build(1, 2, 3)


# ------------------------------------------------------------------------------------------ Grad-CAM
def test_due_gradcam_is_input_shaped_in_unit_range_per_depth_and_differentiable():
    split = _data()
    net = _net()
    batch = _batch(split)
    a = net.features(batch.images)
    logits = net.head(a)
    pairs = annotated_pairs(batch, logits, "label")
    cam = due_cam(net, a, logits, batch, pairs)
    assert cam.shape == (len(pairs), 9, 16, 16)
    assert float(cam.detach().min()) >= 0.0 and float(cam.detach().max()) <= 1.0
    # per-depth weights: gradient averaged over H, W only, then ReLU(Σ_c α_c(d) A_c(d))
    g = torch.autograd.grad(logits.gather(1, batch.labels[:, None]).sum(), a, retain_graph=True)[0]
    manual = torch.relu((g.mean((-2, -1), keepdim=True) * a).sum(1))[pairs.idx]
    glob = torch.relu((g.mean((-3, -2, -1), keepdim=True) * a).sum(1))[pairs.idx]
    flat = torch.nn.functional.interpolate(manual[:, None], size=(9, 16, 16), mode="trilinear")[:, 0]
    mn = flat.flatten(1).amin(1)[:, None, None, None]
    mx = flat.flatten(1).amax(1)[:, None, None, None]
    assert torch.allclose(cam, (flat - mn) / (mx - mn + 1e-6), atol=1e-4)
    glob_cam = due_cam(net, a, logits, batch, pairs, weight_pool="spatial")
    assert not torch.allclose(cam, glob_cam, atol=1e-3) or torch.allclose(manual, glob)
    cam.sum().backward()
    assert all(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in net.layer4.parameters())


# ------------------------------------------------------------------------------------------ losses
def test_negatives_get_no_explanation_loss():
    split = _data()
    neg = split.subset([4, 5])  # empty masks
    net = _net()
    loss = DUELoss(TINY_DUE)
    loss.on_round_start(_info(split))
    out = loss(net, _batch(neg))
    ce = torch.nn.functional.cross_entropy(net(neg.images), neg.labels)
    assert out.terms["n_annotated"] == 0 and torch.allclose(out.total, ce)
    both = loss(net, _batch(split))
    assert both.terms["n_annotated"] == 4  # the positives only


def test_weight_one_and_target_mask_reproduces_baseline_plus():
    split = _data()
    net = _net()
    plus = DUEBaselinePlusLoss()
    due = DUELoss(TINY_DUE)
    due.on_round_start(_info(split))
    target, weight, nearest = due._tensors
    due._tensors = (nearest.clone(), torch.ones_like(weight), nearest)  # W ≡ 1, ĩ = m
    a, b = due(net, _batch(split)), plus(net, _batch(split))
    assert torch.allclose(a.total, b.total, atol=1e-6)
    paper = DUEPaperLoss(TINY_DUE)
    paper.on_round_start(_info(split))
    paper._tensors = due._tensors
    assert torch.allclose(paper(net, _batch(split)).total, b.total, atol=1e-6)  # eq. 2 form = code form at W = 1


def test_weights_change_the_loss_and_the_two_forms_differ():
    split = _data()
    net = _net()
    due, paper = DUELoss(TINY_DUE), DUEPaperLoss(TINY_DUE)
    for loss in (due, paper):
        loss.on_round_start(_info(split))
    target, weight, nearest = due._tensors
    half = (target, torch.full_like(weight, 0.5), nearest)
    due._tensors = paper._tensors = half
    coded, eq2 = due(net, _batch(split)), paper(net, _batch(split))
    assert coded.terms["due_mean_weight"] == pytest.approx(0.5)
    assert abs(coded.terms["explanation"] - eq2.terms["explanation"]) > 1e-3
    due._tensors = (target, torch.ones_like(weight), nearest)
    assert due(net, _batch(split)).terms["due_continuous"] == pytest.approx(2 * coded.terms["due_continuous"], rel=1e-5)


def test_binary_term_covers_the_annotated_foreground_only():
    split = _data()
    net = _net()
    loss = DUEBaselinePlusLoss()
    out = loss(net, _batch(split))
    batch = _batch(split)
    flags = batch.annotated_slices.clone()
    flags[:, 1::2] = False
    assert torch.equal(sparse_roi(batch.roi, flags), sparse_roi(batch.roi, batch.annotated_slices))
    dense = Batch(batch.images, batch.labels, "multi-class", roi=batch.roi, has_roi=batch.has_roi,
                  annotated_slices=torch.ones_like(flags), index=batch.index)
    # with every slice annotated the targets differ: the loss reads only the annotated slices
    assert abs(loss(net, dense).terms["explanation"] - out.terms["explanation"]) > 1e-4
    assert out.terms["due_binary"] >= 0 and out.terms["due_continuous"] >= 0


def test_loss_gives_gradients_and_needs_the_round_labelled_set():
    split = _data()
    net = _net()
    loss = DUELoss(TINY_DUE)
    with pytest.raises(ConfigError, match="RoundInfo.labelled"):
        loss(net, _batch(split))
    loss.on_round_start(_info(split))
    loss(net, _batch(split)).total.backward()
    assert all(p.grad is not None for p in net.parameters() if p.requires_grad)
    other = _data(n=6, negatives=0)
    other.roi[:, 4:6, 4:8, 4:8] = 1.0
    with pytest.raises(ConfigError, match="not in the round's labelled set"):
        loss(net, _batch(other))
    with pytest.raises(ConfigError, match="lam"):
        DUELoss({"lam": -1.0})


def test_two_dimensional_batches_reduce_to_weight_one():
    torch.manual_seed(0)
    from xalbench.models.small_cnn import SmallCNN

    net = SmallCNN({"width": 4, "n_blocks": 2, "dropout": 0.0}).build(1, 2, 2)
    roi = torch.zeros(4, 16, 16)
    roi[:2, 4:10, 4:10] = 1.0
    split = Split(torch.rand(4, 1, 16, 16), torch.tensor([1, 1, 0, 0]), roi=roi)
    loss = DUELoss(TINY_DUE)
    loss.on_round_start(RoundInfo(0, 4, 1.0, 0, "multi-class", 2, 2, labelled=split, index=np.arange(4)))
    batch = Batch(split.images, split.labels, "multi-class", roi=roi, has_roi=split.has_roi, index=torch.arange(4))
    a, b = loss(net, batch), DUEBaselinePlusLoss()(net, batch)
    assert a.terms["n_annotated"] == 2 and torch.allclose(a.total, b.total)


def test_later_rounds_reuse_the_interpolator_trained_on_the_initial_prefix():
    from xalbench_due import imputation

    imputation.clear_memory_cache()
    split = _data(n=6, negatives=1)
    loss = DUELoss({**TINY_DUE, "fit_volumes": 4})
    loss.on_round_start(_info(split.subset([0, 1, 2, 3])))
    assert loss.round_stats.get("interpolator_fitted") == 1.0
    loss.on_round_start(_info(split))  # the labelled set grew after its first 4 rows
    assert "interpolator_fitted" not in loss.round_stats and loss.round_stats["cache_hit"] == 0.0
    again = DUELoss({**TINY_DUE, "fit_volumes": 4})
    again.on_round_start(_info(split))  # another method, same labelled masks: served from the cache
    assert again.round_stats["cache_hit"] == 1.0
    assert all(torch.equal(a, b) for a, b in zip(loss._tensors, again._tensors, strict=True))
