"""The explanation-loss base: a third-party CAM loss is its CAM settings and its term."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import pytest
import torch
from shortcut import batch, make_shortcut

from xalbench.base import Batch
from xalbench.errors import OptionsError
from xalbench.losses.base import CamLoss, CamSettings, ExplanationLoss, Term, Weights
from xalbench.losses.common import classification_loss
from xalbench.losses.supervision import CamForward
from xalbench.options import Options


class OutsideMass(CamLoss):
    """Toy loss: CE + lam · mean CAM mass outside the ROI; CE of annotated samples weighted by 2."""

    name: ClassVar[str] = "outside-mass"

    @dataclass(frozen=True)
    class Options(Options):
        lam: float = 0.5

    def cam(self) -> CamSettings:
        return CamSettings("cam", "label", "input")

    def weights(self, fw: CamForward, batch: Batch) -> Weights:
        w = torch.ones(fw.logits.shape[0])
        w[fw.pairs.idx] = 2.0
        return Weights(ce=w)

    def explanation_term(self, fw: CamForward, batch: Batch, weights: Weights) -> Term:
        return (fw.maps * (1 - fw.masks)).flatten(1).mean(1).mean(), {"pairs_seen": float(len(fw.pairs))}


@pytest.fixture(scope="module")
def model(registry):
    torch.manual_seed(0)
    return registry.create("model", "small-cnn", {"width": 4, "n_blocks": 3, "dropout": 0.0}).build(1, 2, 2).eval()


def test_builtin_explanation_losses_share_the_base(registry):
    for name in ("dice", "rrr", "gradia", "haics", "res", "cyborg", "cyborg-ssim-l1"):
        cls = registry.get("loss", name)
        assert issubclass(cls, ExplanationLoss) and "__call__" not in vars(cls)
    assert all(issubclass(registry.get("loss", n), CamLoss) for n in ("dice", "gradia", "haics", "res", "cyborg"))


def test_third_party_cam_loss_gets_the_ce_branch_weights_and_total(registry, model):
    x, y, roi = make_shortcut(6, seed=1)
    loss = OutsideMass({"lam": 0.5})
    plain = loss(model, batch(x, y, None))
    ce = registry.create("loss", "ce")(model, batch(x, y, None))
    assert torch.equal(plain.total, ce.total) and plain.terms["n_annotated"] == 0.0  # no masks: exactly ce
    has = torch.tensor([True, True, True, False, False, False])
    out = loss(model, Batch(x, y, "multi-class", roi=roi, has_roi=has))
    logits = model(x)
    weighted = classification_loss(logits, batch(x, y, None), weight=torch.tensor([2.0, 2, 2, 1, 1, 1]))
    assert out.terms["ce"] == pytest.approx(float(weighted.detach()), rel=1e-6)
    assert out.terms["n_annotated"] == 3 and out.terms["pairs_seen"] == 3
    assert out.total.item() == pytest.approx(out.terms["ce"] + 0.5 * out.terms["explanation"], rel=1e-6)
    out.total.backward()
    assert model.classifier.weight.grad is not None


def test_cyborg_alpha_checked_when_built(registry):
    with pytest.raises(OptionsError, match="loss 'cyborg': alpha must lie in"):
        registry.create("loss", "cyborg", {"alpha": 1.5})
    with pytest.raises(OptionsError, match="alpha"):
        registry.create("loss", "cyborg-ssim-l1", {"alpha": -0.1})
