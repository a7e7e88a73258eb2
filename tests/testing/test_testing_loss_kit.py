"""check_loss: every built-in loss conforms; each broken loss fails the check that names its bug."""

from __future__ import annotations

from typing import ClassVar

import pytest
import torch
import torch.nn.functional as F

from xalbench.base import LossOutput
from xalbench.losses.ce import CrossEntropyLoss
from xalbench.losses.explanation import DiceLoss
from xalbench.plugins import load_registry
from xalbench.testing.kit import SkipCheck
from xalbench.testing.loss_checks import (
    LOSS_CHECKS,
    check_loss,
    check_masks_are_used,
    loss_checks_generator,
    parametrize_with_loss_checks,
)

REGISTRY = load_registry()
BUILTIN = [r.name for r in REGISTRY if r.kind == "loss" and r.distribution == "xalbench"]


@parametrize_with_loss_checks(BUILTIN)
def test_builtin_losses_conform(loss, check):
    check(loss)


class _Broken(DiceLoss):
    summary: ClassVar[str] = "broken on purpose"


class SmoothedCE(CrossEntropyLoss):
    name: ClassVar[str] = "smoothed-ce"
    summary: ClassVar[str] = "label smoothing: not the core ce"

    def __call__(self, model, batch):
        logits = model.head(model.features(batch.images))
        total = F.cross_entropy(logits, batch.labels, label_smoothing=0.1)
        return LossOutput(total, {"ce": float(total.detach())})


class IgnoresMasks(CrossEntropyLoss):
    name: ClassVar[str] = "ignores-masks"
    summary: ClassVar[str] = "declares needs_masks but never reads them"
    needs_masks: ClassVar[bool] = True


class NaNWithMasks(_Broken):
    name: ClassVar[str] = "nan-with-masks"

    def __call__(self, model, batch):
        out = super().__call__(model, batch)
        if batch.has_roi is not None and bool(batch.has_roi.any()):
            out.total = out.total * float("nan")
        return out


class StepsItself(_Broken):
    name: ClassVar[str] = "steps-itself"

    def __call__(self, model, batch):
        out = super().__call__(model, batch)
        out.total.backward(retain_graph=True)
        return out


class LeavesEval(_Broken):
    name: ClassVar[str] = "leaves-eval"

    def __call__(self, model, batch):
        model.eval()
        return super().__call__(model, batch)


class No3D(_Broken):
    name: ClassVar[str] = "no-3d"  # claims 3D support (the default) but crashes on volumes

    def __call__(self, model, batch):
        if batch.images.dim() == 5:
            raise RuntimeError("2D only, really")
        return super().__call__(model, batch)


class SingleLabelOnly(_Broken):
    name: ClassVar[str] = "single-label-only"

    def __call__(self, model, batch):
        if batch.task == "multi-label":
            batch.labels = batch.labels.argmax(1)
            batch.task = "multi-class"
        return super().__call__(model, batch)


class Unpicklable(_Broken):
    name: ClassVar[str] = "unpicklable"

    def on_round_start(self, info):
        self.generator = (i for i in range(3))


@pytest.mark.parametrize(("loss", "check_name"), [
    (SmoothedCE, "check_no_masks_equals_ce"),
    (IgnoresMasks, "check_masks_are_used"),
    (NaNWithMasks, "check_masks_give_finite_loss_with_gradients"),
    (StepsItself, "check_model_left_as_found"),
    (LeavesEval, "check_model_left_as_found"),
    (No3D, "check_3d"),
    (SingleLabelOnly, "check_multilabel"),
    (Unpicklable, "check_picklable"),
])
def test_each_broken_loss_fails_the_right_check(loss, check_name):
    check = next(c for c in LOSS_CHECKS if c.__name__ == check_name)
    with pytest.raises((AssertionError, RuntimeError, TypeError)):
        check(loss)


def test_only_applicable_checks_are_yielded_and_instances_keep_their_options():
    names = {c.__name__ for _, c in loss_checks_generator("ce")}
    assert "check_masks_are_used" not in names and {"check_3d", "check_multilabel"} <= names
    flat = type("Flat", (DiceLoss,), {"name": "flat", "supports_3d": False, "supports_multilabel": False})
    names = {c.__name__ for _, c in loss_checks_generator(flat)}
    assert "check_3d" not in names and "check_multilabel" not in names and "check_masks_are_used" in names
    with pytest.raises(SkipCheck, match="needs_masks = False"):
        check_masks_are_used(CrossEntropyLoss)
    rows = check_loss(DiceLoss({"alpha": 0.5}), on_fail=None)
    assert {r["status"] for r in rows} == {"passed"} and rows[0]["loss"] == "dice[alpha=0.5]"
    with pytest.raises(AssertionError, match="equal ce"):
        check_loss(SmoothedCE)


def test_the_kit_checks_gradients_not_only_values():
    """A loss whose value equals ce but whose gradient does not is caught."""

    class ScaledGrad(CrossEntropyLoss):
        name: ClassVar[str] = "scaled-grad"
        summary: ClassVar[str] = "same value, twice the gradient"

        def __call__(self, model, batch):
            out = super().__call__(model, batch)
            return LossOutput(out.total * 2 - out.total.detach(), out.terms)

    rows = check_loss(ScaledGrad, on_fail=None)
    failed = {r["check_name"]: str(r["exception"]) for r in rows if r["status"] == "failed"}
    assert "gradients must equal ce" in failed["check_no_masks_equals_ce"]
    assert torch.is_tensor(torch.zeros(1))
