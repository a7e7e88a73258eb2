"""Conformance kit for loss plugins (scikit-learn ``check_estimator`` style).

::

    from xalbench.testing import check_loss, parametrize_with_loss_checks

    check_loss("my-loss")                                    # raises on the first failed check
    rows = check_loss(MyLoss({"alpha": 0.5}), on_fail=None)   # instances: non-default options

    @parametrize_with_loss_checks([MyLoss])
    def test_conformance(loss, check):
        check(loss)

The checks train-step a tiny ``small-cnn`` (:mod:`xalbench.testing.tiny`) and hold the loss to
the contract of :class:`xalbench.Loss`: a batch without usable masks (``roi`` absent, or every
``has_roi`` False) gives **exactly** the core ``ce`` loss — the same value and the same parameter
gradients; a batch with masks gives a finite scalar whose gradients are finite and reach the
model; a loss that ``needs_masks`` really uses them; multi-label and 3D batches work when
declared (and only then are they tried); the call leaves the model's modes, parameters, hooks
and ``.grad`` alone (the harness calls ``backward``); ``on_round_start`` accepts a
:class:`~xalbench.base.RoundInfo` with the labelled set; instances pickle.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Literal

import numpy as np
import torch

from xalbench.base import Batch, ExplainableNet, Loss, LossOutput, RoundInfo, Split, Task
from xalbench.testing.component_checks import (
    assert_pickles,
    check_declarations,
    check_name_is_slug,
    check_options_defaults_and_reject_unknown,
    check_picklable_component,
    check_subclass,
)
from xalbench.testing.kit import Check, Kit, applies_if, component_class, fresh
from xalbench.testing.tiny import NUM_CLASSES, tiny_batch, tiny_net

__all__ = ["LOSS_CHECKS", "LOSS_KIT", "LossCheckFailedWarning", "check_loss", "loss_checks_generator",
           "parametrize_with_loss_checks"]

ATOL = 1e-6


class LossCheckFailedWarning(UserWarning):
    """Emitted by ``check_loss(..., on_fail="warn")`` for each failed check."""


def _label(component: Any) -> str:
    return f"loss {component_class(component).name!r}"


def _round_info(batch: Batch, spatial_dims: int) -> RoundInfo:
    labelled = Split(images=batch.images, labels=batch.labels, roi=batch.roi, has_roi=batch.has_roi,
                     class_roi=batch.class_roi, annotated_slices=batch.annotated_slices)
    n = len(labelled)
    return RoundInfo(round_index=0, n_labelled=n, labelled_fraction=0.5, seed=0, task=batch.task,
                     num_classes=NUM_CLASSES, spatial_dims=spatial_dims, labelled=labelled,
                     index=np.arange(n, dtype=np.int64))


def _call(loss: Loss, net: ExplainableNet, batch: Batch) -> tuple[LossOutput, list[torch.Tensor | None]]:
    """One training step's loss: zeroed gradients, the call, ``backward``; returns output and gradients."""
    net.zero_grad(set_to_none=True)
    out = loss(net, batch)
    assert isinstance(out, LossOutput), f"a loss returns xalbench.LossOutput, got {type(out).__name__}"
    out.total.backward()
    grads = [None if p.grad is None else p.grad.detach().clone() for p in net.parameters()]
    net.zero_grad(set_to_none=True)
    return out, grads


def _prepared(component: Any, batch: Batch, spatial_dims: int) -> Loss:
    loss = fresh(component)
    loss.on_round_start(_round_info(batch, spatial_dims))
    return loss


def _without_masks(batch: Batch, how: str) -> Batch:
    if how == "absent":
        return Batch(images=batch.images, labels=batch.labels, task=batch.task, index=batch.index)
    hidden = torch.zeros_like(batch.has_roi)  # type: ignore[arg-type]
    return Batch(images=batch.images, labels=batch.labels, task=batch.task, roi=batch.roi, has_roi=hidden,
                 class_roi=batch.class_roi, annotated_slices=batch.annotated_slices, index=batch.index)


def _assert_equals_ce(component: Any, task: Task, spatial_dims: int) -> None:
    from xalbench.losses.ce import CrossEntropyLoss

    full = tiny_batch(task=task, spatial_dims=spatial_dims)
    net = tiny_net(spatial_dims, dropout=0.0).train()
    ref, ref_grads = _call(CrossEntropyLoss(), net, _without_masks(full, "absent"))
    for how in ("absent", "hidden"):
        out, grads = _call(_prepared(component, full, spatial_dims), net, _without_masks(full, how))
        where = f"{_label(component)} ({task}, {spatial_dims}D, masks {how})"
        assert torch.allclose(out.total.detach(), ref.total.detach(), atol=ATOL, rtol=1e-5), (
            f"{where}: without masks the loss must equal ce: {float(out.total.detach()):.7g} vs {float(ref.total.detach()):.7g}"
        )
        same = all((a is None and b is None) or (a is not None and b is not None and torch.allclose(a, b, atol=ATOL))
                   for a, b in zip(grads, ref_grads, strict=True))
        assert same, f"{where}: without masks the gradients must equal ce's"


def _assert_finite_with_gradients(component: Any, task: Task, spatial_dims: int) -> LossOutput:
    batch = tiny_batch(task=task, spatial_dims=spatial_dims)
    net = tiny_net(spatial_dims, dropout=0.0).train()
    out, grads = _call(_prepared(component, batch, spatial_dims), net, batch)
    where = f"{_label(component)} ({task}, {spatial_dims}D, with masks)"
    assert out.total.dim() == 0, f"{where}: total must be a scalar, got shape {tuple(out.total.shape)}"
    total = float(out.total.detach())
    assert math.isfinite(total), f"{where}: total is {total}"
    assert any(g is not None and float(g.abs().sum()) > 0 for g in grads), f"{where}: no gradient reaches the model"
    assert all(g is None or bool(torch.isfinite(g).all()) for g in grads), f"{where}: non-finite gradients"
    assert all(isinstance(k, str) and isinstance(v, float) for k, v in out.terms.items()), (
        f"{where}: terms must map names to floats (detached), got {out.terms!r}"
    )
    return out


# ----------------------------------------------------------------------------- the checks
def check_is_loss_subclass(loss: Any) -> None:
    """The class subclasses ``xalbench.Loss`` and implements ``__call__``."""
    check_subclass(loss, Loss)


def check_no_masks_equals_ce(loss: Any) -> None:
    """2D multi-class batch whose masks are absent or all hidden (``has_roi`` False): the core ``ce`` value
    and gradients."""
    _assert_equals_ce(loss, "multi-class", 2)


def check_masks_give_finite_loss_with_gradients(loss: Any) -> None:
    """2D multi-class batch with masks on half the samples: finite scalar, finite gradients reaching the model,
    float terms."""
    _assert_finite_with_gradients(loss, "multi-class", 2)


@applies_if(lambda cls: cls.needs_masks, "{kind} {name!r} declares needs_masks = False")
def check_masks_are_used(loss: Any) -> None:
    """``needs_masks``: revealing the masks changes the loss value or its gradients."""
    batch = tiny_batch()
    net = tiny_net(2, dropout=0.0).train()
    with_masks, g_with = _call(_prepared(loss, batch, 2), net, batch)
    without, g_without = _call(_prepared(loss, batch, 2), net, _without_masks(batch, "absent"))
    differs = not torch.allclose(with_masks.total.detach(), without.total.detach(), atol=ATOL) or any(
        (a is None) != (b is None) or (a is not None and not torch.allclose(a, b, atol=ATOL))
        for a, b in zip(g_with, g_without, strict=True))
    assert differs, f"{_label(loss)} declares needs_masks = True but ignores the masks it is given"


@applies_if(lambda cls: cls.supports_multilabel, "{kind} {name!r} declares supports_multilabel = False")
def check_multilabel(loss: Any) -> None:
    """``supports_multilabel``: float ``N×K`` labels (with per-class ROIs) give a finite loss with gradients;
    without masks, exactly ``ce`` (mean BCE)."""
    _assert_finite_with_gradients(loss, "multi-label", 2)
    _assert_equals_ce(loss, "multi-label", 2)


@applies_if(lambda cls: cls.supports_3d, "{kind} {name!r} declares supports_3d = False")
def check_3d(loss: Any) -> None:
    """``supports_3d``: a 3D batch (with annotated slices) gives a finite loss with gradients; without masks,
    exactly ``ce``."""
    _assert_finite_with_gradients(loss, "multi-class", 3)
    _assert_equals_ce(loss, "multi-class", 3)


def check_model_left_as_found(loss: Any) -> None:
    """The call itself leaves module modes, parameters, ``requires_grad`` flags, hooks and ``.grad`` alone
    (no ``backward``/optimizer step inside; BatchNorm statistics may move, as in any training forward)."""
    batch = tiny_batch()
    inst = _prepared(loss, batch, 2)
    for mode in (True, False):
        net = tiny_net(2, dropout=0.0).train(mode)
        modes = [m.training for m in net.modules()]
        params = {k: v.detach().clone() for k, v in net.named_parameters()}
        flags = [p.requires_grad for p in net.parameters()]
        hooks = [(len(m._forward_hooks), len(m._forward_pre_hooks), len(m._backward_hooks)) for m in net.modules()]
        inst(net, batch)
        who = f"{_label(loss)} (model in {'train' if mode else 'eval'} mode)"
        assert [m.training for m in net.modules()] == modes, f"{who}: module train/eval modes were not restored"
        assert all(torch.equal(v, params[k]) for k, v in net.named_parameters()), f"{who}: changed parameters"
        assert [p.requires_grad for p in net.parameters()] == flags, f"{who}: changed requires_grad flags"
        assert all(p.grad is None for p in net.parameters()), (
            f"{who}: wrote parameter .grad (return the total; the harness calls backward)"
        )
        assert [(len(m._forward_hooks), len(m._forward_pre_hooks), len(m._backward_hooks))
                for m in net.modules()] == hooks, f"{who}: left hooks registered on the model"


def check_deterministic(loss: Any) -> None:
    """Same model, same batch, eval mode: the same total twice."""
    batch = tiny_batch()
    net = tiny_net(2, dropout=0.0)
    a = _prepared(loss, batch, 2)(net, batch).total.detach()
    b = _prepared(loss, batch, 2)(net, batch).total.detach()
    assert torch.allclose(a, b, atol=ATOL), f"{_label(loss)}: same inputs gave {float(a)} then {float(b)}"


def check_picklable(loss: Any) -> None:
    """Instances pickle before and after ``on_round_start`` and a call (cells run in worker processes)."""
    inst = check_picklable_component(loss)
    batch = tiny_batch()
    inst.on_round_start(_round_info(batch, 2))
    inst(tiny_net(2, dropout=0.0), batch)
    assert_pickles(inst, _label(loss))


LOSS_CHECKS: tuple[Check, ...] = (
    check_is_loss_subclass,
    check_name_is_slug,
    check_declarations,
    check_options_defaults_and_reject_unknown,
    check_no_masks_equals_ce,
    check_masks_give_finite_loss_with_gradients,
    check_masks_are_used,
    check_multilabel,
    check_3d,
    check_model_left_as_found,
    check_deterministic,
    check_picklable,
)

LOSS_KIT = Kit("loss", Loss, LOSS_CHECKS, LossCheckFailedWarning)


def check_loss(
    loss: str | type[Loss] | Loss,
    *,
    on_fail: Literal["raise", "warn"] | None = "raise",
    expected_failed_checks: Mapping[str, str] | None = None,
    callback: Callable[..., None] | None = None,
) -> list[dict[str, Any]]:
    """Run every applicable check on a loss (registered name, class or instance); rows
    ``{loss, check_name, status, exception, expected_to_fail_reason}`` (see :meth:`Kit.run`)."""
    return LOSS_KIT.run(loss, on_fail=on_fail, expected_failed_checks=expected_failed_checks, callback=callback)


def loss_checks_generator(
    loss: str | type[Loss] | Loss,
    *,
    expected_failed_checks: Mapping[str, str] | None = None,
    mark: Literal["xfail", "skip"] | None = None,
) -> Iterator[Any]:
    """Yield ``(loss, check)`` for every applicable check (marked ``pytest.param`` for expected failures)."""
    return LOSS_KIT.generator(loss, expected_failed_checks=expected_failed_checks, mark=mark)


def parametrize_with_loss_checks(
    losses: Iterable[str | type[Loss] | Loss],
    *,
    expected_failed_checks: Callable[[Any], Mapping[str, str]] | None = None,
) -> Any:
    """``pytest.mark.parametrize("loss, check", ...)`` over every applicable check of every loss."""
    return LOSS_KIT.parametrize(losses, expected_failed_checks=expected_failed_checks)
