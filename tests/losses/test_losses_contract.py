"""Loss contracts: no-mask batches equal ce, empty ROIs, multi-label/3D, helper formulas."""

from __future__ import annotations

import pytest
import torch
from shortcut import batch, make_shortcut

from xalbench.base import Batch
from xalbench.errors import ConfigError, OptionsError
from xalbench.losses.supervision import bf_threshold, gaussian_blur3, soft_dice, ssim

ALL = ["ce", "dice", "rrr", "gradia", "haics", "res", "cyborg", "cyborg-ssim-l1"]


@pytest.fixture(scope="module")
def model(registry):
    torch.manual_seed(0)
    return registry.create("model", "small-cnn", {"width": 4, "n_blocks": 3, "dropout": 0.0}).build(1, 2, 2)


@pytest.fixture(scope="module")
def data():
    return make_shortcut(8, seed=3)


def _grads(model):
    return torch.cat([p.grad.flatten() for p in model.parameters()])


def test_registered_with_mask_flags(registry):
    assert set(ALL) <= set(registry.names("loss"))
    for name in ALL:
        cls = registry.get("loss", name)
        assert cls.needs_masks == (name != "ce")
        assert cls.paper or name == "ce"


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("how", ["roi-none", "has-roi-false", "empty-roi"])
def test_batch_without_usable_masks_equals_ce(registry, model, data, name, how):
    x, y, roi = data
    if how == "roi-none":
        b = batch(x, y, None)
    elif how == "has-roi-false":
        b = Batch(x, y, "multi-class", roi=roi, has_roi=torch.zeros(8, dtype=torch.bool))
    else:  # annotated but empty masks: documented as no explanation term
        b = Batch(x, y, "multi-class", roi=torch.zeros_like(roi), has_roi=torch.ones(8, dtype=torch.bool))
    model.train()
    ref = registry.create("loss", "ce")(model, batch(x, y, None))
    model.zero_grad()
    ref.total.backward()
    g_ref = _grads(model)
    out = registry.create("loss", name)(model, b)
    model.zero_grad()
    out.total.backward()
    assert torch.allclose(out.total, ref.total, atol=1e-6)
    assert torch.allclose(_grads(model), g_ref, atol=1e-6)
    assert out.terms.get("n_annotated", 0.0) == 0.0


@pytest.mark.parametrize("name", ALL[1:])
def test_explanation_term_averages_over_annotated_only(registry, model, data, name):
    """Adding unannotated samples changes the CE term but not the explanation term's value."""
    x, y, roi = data
    has = torch.tensor([1, 1, 1, 1, 0, 0, 0, 0], dtype=torch.bool)
    model.eval()  # deterministic BN so the CAMs of the first four samples do not depend on the others
    loss = registry.create("loss", name, {"threshold": 0.5} if name == "res" else None)
    full = loss(model, Batch(x, y, "multi-class", roi=roi, has_roi=has))
    part = loss(model, Batch(x[:4], y[:4], "multi-class", roi=roi[:4], has_roi=has[:4]))
    assert full.terms["n_annotated"] == part.terms["n_annotated"] == 4
    assert full.terms["explanation"] == pytest.approx(part.terms["explanation"], rel=1e-4, abs=1e-6)


@pytest.mark.parametrize("name", ALL)
def test_3d_multilabel_with_class_rois(registry, name):
    torch.manual_seed(0)
    net = registry.create("model", "small-cnn", {"width": 4, "n_blocks": 3}).build(1, 3, 3).train()
    x = torch.rand(4, 1, 8, 16, 16)
    labels = torch.tensor([[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 0]], dtype=torch.float32)
    class_roi = torch.zeros(4, 3, 8, 16, 16)
    class_roi[0, 0, 2:6, 2:8, 2:8] = 1
    class_roi[0, 2, 2:6, 8:14, 8:14] = 1
    class_roi[2, 1, 1:5, 4:12, 4:12] = 1  # class 0 of sample 2 is positive but has no ROI: skipped
    roi = class_roi.amax(1)
    b = Batch(x, labels, "multi-label", roi=roi, has_roi=torch.tensor([True, False, True, False]), class_roi=class_roi)
    out = registry.create("loss", name)(net, b)
    out.total.backward()
    assert torch.isfinite(out.total)
    assert float(net.body[0].weight.grad.abs().sum()) > 0
    if name != "ce":
        assert out.terms["n_annotated"] == 3 if name != "rrr" else 2  # rrr counts samples, not pairs
        assert out.terms["explanation"] > 0


def test_multilabel_union_roi_without_class_roi(registry):
    torch.manual_seed(0)
    net = registry.create("model", "small-cnn", {"width": 4, "n_blocks": 3}).build(1, 3, 2)
    x = torch.rand(2, 1, 16, 16)
    labels = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    roi = torch.zeros(2, 16, 16)
    roi[:, 4:10, 4:10] = 1
    out = registry.create("loss", "dice")(net, Batch(x, labels, "multi-label", roi=roi))
    assert out.terms["n_annotated"] == 3  # one pair per positive class, each against the union ROI


def test_rrr_penalty_vanishes_when_roi_covers_everything(registry, model, data):
    x, y, _ = data
    full = torch.ones(8, 16, 16)
    out = registry.create("loss", "rrr")(model, batch(x, y, full))
    assert out.terms["explanation"] == 0.0 and out.terms["n_annotated"] == 8


def test_cyborg_alpha_one_is_ce_and_weights_annotated_samples(registry, model, data):
    x, y, roi = data
    model.eval()
    ce = registry.create("loss", "ce")(model, batch(x, y, None)).total
    out = registry.create("loss", "cyborg", {"alpha": 1.0})(model, batch(x, y, roi))
    assert torch.allclose(out.total, ce, atol=1e-6)
    half = registry.create("loss", "cyborg")(model, batch(x, y, roi))
    assert half.total.item() == pytest.approx(0.5 * ce.item() + 0.5 * half.terms["explanation"], rel=1e-5)


def test_options_are_validated(registry):
    with pytest.raises(OptionsError, match="valid options"):
        registry.create("loss", "dice", {"alpah": 0.2})
    with pytest.raises(OptionsError):
        registry.create("loss", "res", {"cam_target": "random"})
    assert registry.create("loss", "dice").options.alpha == 0.10


def test_bad_batch_raises(registry, model, data):
    x, y, roi = data
    with pytest.raises(ConfigError, match="int64 labels"):
        registry.create("loss", "dice")(model, Batch(x, y.float(), "multi-class", roi=roi))
    with pytest.raises(ConfigError, match="batch.roi"):
        registry.create("loss", "dice")(model, Batch(x, y, "multi-class", roi=roi[:, :8]))


def test_soft_dice_ssim_blur_formulas():
    s = torch.tensor([[1.0, 0.5, 0.0, 0.0]])
    m = torch.tensor([[1.0, 1.0, 0.0, 0.0]])
    assert soft_dice(s, m, eps=0).item() == pytest.approx(2 * 1.5 / (1.5 + 2.0))
    x = torch.rand(3, 12, 12)
    assert torch.allclose(ssim(x, x), torch.ones(3), atol=1e-5)
    assert (ssim(x, 1 - x) < 0.5).all()
    with pytest.raises(ConfigError, match="window"):
        ssim(torch.rand(1, 4, 4), torch.rand(1, 4, 4))
    point = torch.zeros(1, 5, 5)
    point[0, 2, 2] = 1
    k = gaussian_blur3(point)[0]
    assert k.sum().item() == pytest.approx(1.0, abs=1e-6) and k[2, 2] == k.max()
    assert k[1, 2].item() == pytest.approx(k[2, 1].item())


def _bf_reference(x, y, eps=1e-4):
    """RES's BF_solver loop, transcribed as a slow reference."""
    x, y = x.flatten(), y.flatten()
    g_idx, le_idx = (y < 0).nonzero()[:, 0], (y > 0).nonzero()[:, 0]
    a, a_ct = 0.0, 0.0
    for cands, shift in ((g_idx, eps), (le_idx, 0.0)):
        for idx in cands:
            v = x[idx] + shift
            v_ct = (v > x[g_idx]).float().sum() / max(len(g_idx), 1) + (v <= x[le_idx]).float().sum() / max(len(le_idx), 1)
            if v_ct > a_ct:
                a, a_ct = float(v), float(v_ct)
    return a


def test_bf_threshold_matches_res_reference():
    gen = torch.Generator().manual_seed(0)
    for _ in range(5):
        x = torch.rand(40, generator=gen)
        y = torch.randint(-1, 2, (40,), generator=gen).float()
        assert bf_threshold(x, y).item() == pytest.approx(_bf_reference(x, y), abs=1e-7)
    x = torch.tensor([0.1, 0.2, 0.8, 0.9])
    y = torch.tensor([-1.0, -1.0, 1.0, 1.0])
    a = bf_threshold(x, y).item()
    assert 0.2 < a <= 0.8  # separates the two groups


@pytest.mark.parametrize("name", ALL)
def test_float64_model_trains_with_every_loss(registry, data, name):
    """A float64 model gets a float64 loss equal to the float32 one (SSIM/blur windows follow the maps' dtype)."""
    x, y, roi = data
    torch.manual_seed(0)
    net32 = registry.create("model", "small-cnn", {"width": 4, "n_blocks": 3, "dropout": 0.0}).build(1, 2, 2)
    net64 = registry.create("model", "small-cnn", {"width": 4, "n_blocks": 3, "dropout": 0.0}).build(1, 2, 2)
    net64.load_state_dict(net32.state_dict())
    net64.double()
    ref = registry.create("loss", name)(net32, batch(x, y, roi))
    out = registry.create("loss", name)(net64, batch(x.double(), y, roi.double()))
    out.total.backward()
    assert out.total.dtype == torch.float64
    assert all(p.grad is not None and p.grad.dtype == torch.float64 for p in net64.parameters())
    assert out.total.item() == pytest.approx(ref.total.item(), abs=1e-4)


def test_ssim_and_blur_windows_follow_the_maps_dtype():
    x = torch.rand(2, 9, 9, dtype=torch.float64)
    assert ssim(x, x.float(), win_size=3).dtype == torch.float64
    assert torch.allclose(ssim(x, x, win_size=3), torch.ones(2, dtype=torch.float64))
    assert gaussian_blur3(x).dtype == torch.float64


def test_bce_leaves_unknown_labels_out(registry):
    """CheXpert's U-Ignore: BCE is the mean over the known labels only, Σ m·BCE / Σ m; an unknown
    label's value cannot move the loss and its logit gets no gradient."""
    from xalbench.losses.common import classification_loss

    logits = torch.tensor([[2.0, -1.0, 0.5], [0.0, 1.5, -2.0]], requires_grad=True)
    labels = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    mask = torch.tensor([[1.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
    b = Batch(torch.zeros(2, 1, 4, 4), labels, "multi-label", label_mask=mask)
    loss = classification_loss(logits, b)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels, reduction="none")
    by_hand = (bce[0, 0] + bce[0, 2] + bce[1, 0] + bce[1, 1]) / 4
    assert loss.item() == pytest.approx(by_hand.item())
    loss.backward()
    assert logits.grad[0, 1] == 0 and logits.grad[1, 2] == 0 and logits.grad[0, 0] != 0
    flipped = Batch(b.images, torch.where(mask > 0, labels, 1 - labels), "multi-label", label_mask=mask)
    assert classification_loss(logits, flipped).item() == pytest.approx(loss.item())
    unmasked = Batch(b.images, labels, "multi-label")
    ones = Batch(b.images, labels, "multi-label", label_mask=torch.ones_like(mask))
    assert classification_loss(logits, ones).item() == pytest.approx(classification_loss(logits, unmasked).item())
    with pytest.raises(ConfigError, match="label_mask"):
        registry.create("loss", "ce")(None, Batch(b.images, torch.tensor([0, 1]), "multi-class", label_mask=mask))


def test_unknown_labels_get_no_explanation_pairs():
    from xalbench.losses.supervision import annotated_pairs

    labels = torch.tensor([[1.0, 1.0], [1.0, 0.0]])
    roi = torch.ones(2, 4, 4)
    b = Batch(torch.zeros(2, 1, 4, 4), labels, "multi-label", roi=roi, has_roi=torch.ones(2, dtype=torch.bool),
              label_mask=torch.tensor([[1.0, 0.0], [1.0, 1.0]]))
    pairs = annotated_pairs(b, torch.ones(2, 2), "pred")  # predicted positive everywhere
    assert sorted(zip(pairs.idx.tolist(), pairs.cls.tolist(), strict=True)) == [(0, 0), (1, 0), (1, 1)]
    pairs = annotated_pairs(b, torch.ones(2, 2), "label")
    assert sorted(zip(pairs.idx.tolist(), pairs.cls.tolist(), strict=True)) == [(0, 0), (1, 0)]
