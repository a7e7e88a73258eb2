"""Conformance kit for explainer plugins (scikit-learn ``check_estimator`` style).

::

    from xalbench.testing import check_explainer, parametrize_with_explainer_checks

    check_explainer("my-explainer")                           # raises on the first failed check
    rows = check_explainer(MyExplainer({"relu": False}), on_fail=None)   # instances: non-default options

    @parametrize_with_explainer_checks([MyExplainer])
    def test_conformance(explainer, check):
        check(explainer)

The checks run the explainer on a tiny ``small-cnn`` (:mod:`xalbench.testing.tiny`) and hold it
to the contract of :class:`xalbench.Explainer`: maps are float tensors in [0, 1] at input size,
``B×(D×)H×W`` per target or ``B×K×…`` for all classes; each sample's map is for *its* target;
``differentiable`` explainers keep the graph with ``create_graph=True`` (gradients reach the
model's parameters) and every explainer returns detached maps without it; the model's modes,
parameters, buffers, gradients and hooks are as they were; 3D works when ``supports_3d`` (a
2D-only explainer refuses 3D input with a clear error); ``explain_from_features`` agrees with
``explain`` when ``from_features``; any :func:`xalbench.wrap`-ped torchvision ResNet is accepted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Literal

import torch
from torch import Tensor, nn

from xalbench.base import ExplainableNet, Explainer
from xalbench.errors import XalbenchError
from xalbench.testing.component_checks import (
    assert_pickles,
    check_declarations,
    check_name_is_slug,
    check_options_defaults_and_reject_unknown,
    check_picklable_component,
    check_subclass,
)
from xalbench.testing.kit import Check, Kit, applies_if, component_class, fresh
from xalbench.testing.tiny import NUM_CLASSES, tiny_images, tiny_net

__all__ = ["EXPLAINER_CHECKS", "EXPLAINER_KIT", "ExplainerCheckFailedWarning", "check_explainer",
           "explainer_checks_generator", "parametrize_with_explainer_checks"]

ATOL = 1e-4
TARGETS = torch.tensor([0, 1, 2, 0])
OTHER = torch.tensor([1, 2, 0, 2])


class ExplainerCheckFailedWarning(UserWarning):
    """Emitted by ``check_explainer(..., on_fail="warn")`` for each failed check."""


def _label(component: Any) -> str:
    return f"explainer {component_class(component).name!r}"


def _maps(explainer: Explainer, net: ExplainableNet, images: Tensor, targets: Tensor | None = None,
          **kwargs: Any) -> Tensor:
    out = explainer.explain(net, images, targets, **kwargs)
    assert isinstance(out, Tensor), f"explain must return a torch.Tensor, got {type(out).__name__}"
    return out


def _assert_maps(maps: Tensor, shape: tuple[int, ...], who: str) -> None:
    assert tuple(maps.shape) == shape, f"{who}: maps have shape {tuple(maps.shape)}, expected {shape}"
    assert maps.dtype.is_floating_point, f"{who}: maps must be floating point, got {maps.dtype}"
    assert bool(torch.isfinite(maps).all()), f"{who}: maps contain NaN or inf"
    lo, hi = float(maps.min()), float(maps.max())
    assert lo >= 0.0 and hi <= 1.0, f"{who}: maps must lie in [0, 1], got [{lo:.4g}, {hi:.4g}]"


# ----------------------------------------------------------------------------- the checks
def check_is_explainer_subclass(explainer: Any) -> None:
    """The class subclasses ``xalbench.Explainer`` and implements ``explain``."""
    check_subclass(explainer, Explainer)


def check_maps_in_unit_range_at_input_size(explainer: Any) -> None:
    """2D: ``B×H×W`` float maps in [0, 1] for given targets and for ``targets=None`` (predicted class)."""
    ex, net, x = fresh(explainer), tiny_net(2), tiny_images(4, 2)
    _assert_maps(_maps(ex, net, x, TARGETS), (4, *x.shape[2:]), _label(explainer))
    _assert_maps(_maps(ex, net, x, None), (4, *x.shape[2:]), _label(explainer))


def check_targets_respected(explainer: Any) -> None:
    """Each sample's map is for its own target: other targets give other maps, a mixed target vector
    gives each sample the map of its target, a sample alone gets its in-batch map, ``None`` = argmax."""
    ex, net, x = fresh(explainer), tiny_net(2), tiny_images(4, 2)
    a, b = _maps(ex, net, x, TARGETS), _maps(ex, net, x, OTHER)
    assert float((a - b).abs().amax()) > 1e-3, (
        f"{_label(explainer)}: maps do not change with the target class (same maps for targets "
        f"{TARGETS.tolist()} and {OTHER.tolist()})"
    )
    pick = torch.tensor([True, False, True, False])
    mixed = _maps(ex, net, x, torch.where(pick, TARGETS, OTHER))
    expected = torch.where(pick.reshape(-1, *([1] * (a.dim() - 1))), a, b)
    assert torch.allclose(mixed, expected, atol=ATOL), f"{_label(explainer)}: sample i's map is not for targets[i]"
    alone = _maps(ex, net, x[3:4], TARGETS[3:4])
    assert torch.allclose(alone[0], a[3], atol=ATOL), (
        f"{_label(explainer)}: a sample's map depends on the rest of the batch (or targets are truncated)"
    )
    with torch.no_grad():
        pred = net(x).argmax(1)
    assert torch.allclose(_maps(ex, net, x, None), _maps(ex, net, x, pred), atol=ATOL), (
        f"{_label(explainer)}: targets=None must explain the predicted class"
    )


def check_all_classes_mode(explainer: Any) -> None:
    """``all_classes=True`` gives ``B×K×H×W`` maps in [0, 1] whose slice ``k`` is the map for target ``k``."""
    ex, net, x = fresh(explainer), tiny_net(2), tiny_images(3, 2)
    every = _maps(ex, net, x, None, all_classes=True)
    _assert_maps(every, (3, NUM_CLASSES, *x.shape[2:]), _label(explainer))
    for k in range(NUM_CLASSES):
        one = _maps(ex, net, x, torch.full((3,), k))
        assert torch.allclose(every[:, k], one, atol=ATOL), f"{_label(explainer)}: all-classes slice {k} != target {k}"


def check_detached_without_create_graph(explainer: Any) -> None:
    """Without ``create_graph`` the maps are detached, even when the model's parameters require grad."""
    ex, net, x = fresh(explainer), tiny_net(2), tiny_images(4, 2)
    maps = _maps(ex, net, x, TARGETS)
    assert not maps.requires_grad and maps.grad_fn is None, (
        f"{_label(explainer)}: maps must be detached when create_graph=False (scoring)"
    )


@applies_if(lambda cls: cls.differentiable, "{kind} {name!r} declares differentiable = False")
def check_differentiable_maps_reach_parameters(explainer: Any) -> None:
    """``differentiable``: ``create_graph=True`` in train mode gives maps in [0, 1] whose gradient reaches
    the explanation layer's parameters (a loss can train through them)."""
    ex, net, x = fresh(explainer), tiny_net(2, dropout=0.0), tiny_images(4, 2)
    net.train()
    maps = _maps(ex, net, x, TARGETS, create_graph=True)
    _assert_maps(maps.detach(), (4, *x.shape[2:]), _label(explainer))
    assert maps.requires_grad, f"{_label(explainer)} declares differentiable but create_graph=True maps have no graph"
    weight = torch.linspace(0.0, 1.0, maps[0].numel()).reshape(maps.shape[1:])
    (maps * weight).sum().backward()
    grads = [p.grad for name, p in net.named_parameters() if not name.startswith("classifier")]
    assert any(g is not None and float(g.abs().sum()) > 0 for g in grads), (
        f"{_label(explainer)}: the maps' gradient does not reach the feature extractor's parameters"
    )
    assert all(g is None or bool(torch.isfinite(g).all()) for g in grads), f"{_label(explainer)}: non-finite gradients"


@applies_if(lambda cls: not cls.differentiable, "{kind} {name!r} declares differentiable = True")
def check_scoring_only_refuses_create_graph(explainer: Any) -> None:
    """Not ``differentiable``: ``create_graph=True`` raises a clear xalbench error or returns detached maps
    (never silently a map a loss cannot train through without saying so)."""
    ex, net, x = fresh(explainer), tiny_net(2), tiny_images(2, 2)
    try:
        maps = _maps(ex, net, x, TARGETS[:2], create_graph=True)
    except XalbenchError:
        return
    assert not maps.requires_grad, (
        f"{_label(explainer)}: returns maps with a graph under create_graph=True; declare differentiable = True"
    )


def _state(net: nn.Module) -> dict[str, Any]:
    return {
        "modes": [m.training for m in net.modules()],
        "tensors": {k: v.detach().clone() for k, v in [*net.named_parameters(), *net.named_buffers()]},
        "requires_grad": [p.requires_grad for p in net.parameters()],
        "grads": [None if p.grad is None else p.grad.clone() for p in net.parameters()],
        "hooks": [(len(m._forward_hooks), len(m._forward_pre_hooks), len(m._backward_hooks),
                   len(m._backward_pre_hooks)) for m in net.modules()],
    }


def _assert_state(before: dict[str, Any], net: nn.Module, who: str) -> None:
    after = _state(net)
    assert after["modes"] == before["modes"], f"{who}: module train/eval modes were not restored"
    changed = [k for k, v in after["tensors"].items() if not torch.equal(v, before["tensors"][k])]
    assert not changed, f"{who}: changed model parameters/buffers {changed[:3]} (BatchNorm statistics?)"
    assert after["requires_grad"] == before["requires_grad"], f"{who}: changed requires_grad flags"
    same_grads = all((a is None and b is None) or (a is not None and b is not None and torch.equal(a, b))
                     for a, b in zip(after["grads"], before["grads"], strict=True))
    assert same_grads, f"{who}: wrote parameter .grad (zero them or use torch.autograd.grad)"
    assert after["hooks"] == before["hooks"], f"{who}: left hooks registered on the model"


def check_model_left_as_found(explainer: Any) -> None:
    """From train and from eval mode, a scoring call (no ``create_graph``) leaves every module's mode, the
    parameters, buffers, ``requires_grad`` flags, ``.grad`` and hooks as they were."""
    ex, x = fresh(explainer), tiny_images(4, 2)
    for mode in (True, False):
        net = tiny_net(2)
        net.train(mode)
        before = _state(net)
        _maps(ex, net, x, TARGETS)
        _maps(ex, net, x, None, all_classes=True)
        _assert_state(before, net, f"{_label(explainer)} (model in {'train' if mode else 'eval'} mode)")


def check_deterministic(explainer: Any) -> None:
    """Two calls with the same inputs give the same maps."""
    ex, net, x = fresh(explainer), tiny_net(2), tiny_images(4, 2)
    assert torch.allclose(_maps(ex, net, x, TARGETS), _maps(ex, net, x, TARGETS), atol=1e-6), (
        f"{_label(explainer)}: same inputs gave different maps (seed any randomness locally)"
    )


@applies_if(lambda cls: cls.supports_3d, "{kind} {name!r} declares supports_3d = False")
def check_3d(explainer: Any) -> None:
    """``supports_3d``: 3D images give ``B×D×H×W`` maps (``B×K×D×H×W`` for all classes) in [0, 1]."""
    ex, net, x = fresh(explainer), tiny_net(3), tiny_images(2, 3)
    _assert_maps(_maps(ex, net, x, TARGETS[:2]), (2, *x.shape[2:]), _label(explainer))
    _assert_maps(_maps(ex, net, x, None, all_classes=True), (2, NUM_CLASSES, *x.shape[2:]), _label(explainer))


@applies_if(lambda cls: not cls.supports_3d, "{kind} {name!r} declares supports_3d = True")
def check_3d_refused_clearly(explainer: Any) -> None:
    """2D only: 3D images raise an :class:`~xalbench.errors.XalbenchError` (one clear line), not a crash."""
    ex, net, x = fresh(explainer), tiny_net(3), tiny_images(2, 3)
    try:
        _maps(ex, net, x, TARGETS[:2])
    except XalbenchError:
        return
    except Exception as exc:
        raise AssertionError(f"{_label(explainer)} declares supports_3d = False but 3D input raised "
                             f"{type(exc).__name__} instead of an xalbench UnsupportedError: {exc}") from exc
    raise AssertionError(f"{_label(explainer)} declares supports_3d = False but explained 3D input; "
                         "declare supports_3d = True")


@applies_if(lambda cls: cls.from_features, "{kind} {name!r} declares from_features = False")
def check_from_features_agrees(explainer: Any) -> None:
    """``from_features``: maps from cached activations (the pool cache's path) equal ``explain``'s, per target and
    for all classes, and are detached."""
    ex, net, x = fresh(explainer), tiny_net(2), tiny_images(4, 2)
    with torch.no_grad():
        feats = net.features(x)
    shape = tuple(x.shape[2:])
    cached = ex.explain_from_features(net, feats, TARGETS, output_shape=shape)
    assert not cached.requires_grad, f"{_label(explainer)}: explain_from_features must return detached maps"
    assert torch.allclose(cached, _maps(ex, net, x, TARGETS), atol=ATOL), (
        f"{_label(explainer)}: explain_from_features differs from explain"
    )
    every = ex.explain_from_features(net, feats, None, all_classes=True, output_shape=shape)
    assert torch.allclose(every, _maps(ex, net, x, None, all_classes=True), atol=ATOL), (
        f"{_label(explainer)}: explain_from_features(all_classes=True) differs from explain"
    )


def check_accepts_wrapped_torchvision_model(explainer: Any) -> None:
    """A :func:`xalbench.wrap`-ped torchvision ResNet (not a small-cnn) is explained like any ExplainableNet."""
    from torchvision.models.resnet import BasicBlock, ResNet

    from xalbench.models.wrap import wrap

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = wrap(ResNet(BasicBlock, [1, 1, 1, 1], num_classes=NUM_CLASSES)).eval()
    x = torch.rand((1, 3, 32, 32), generator=torch.Generator().manual_seed(0))
    _assert_maps(_maps(fresh(explainer), net, x, TARGETS[2:3]), (1, 32, 32), f"{_label(explainer)} on a wrapped ResNet")


def check_picklable(explainer: Any) -> None:
    """Instances pickle before and after explaining (cells run in worker processes)."""
    inst = check_picklable_component(explainer)
    inst.explain(tiny_net(2), tiny_images(2, 2), TARGETS[:2])
    assert_pickles(inst, _label(explainer))


EXPLAINER_CHECKS: tuple[Check, ...] = (
    check_is_explainer_subclass,
    check_name_is_slug,
    check_declarations,
    check_options_defaults_and_reject_unknown,
    check_maps_in_unit_range_at_input_size,
    check_targets_respected,
    check_all_classes_mode,
    check_detached_without_create_graph,
    check_differentiable_maps_reach_parameters,
    check_scoring_only_refuses_create_graph,
    check_model_left_as_found,
    check_deterministic,
    check_3d,
    check_3d_refused_clearly,
    check_from_features_agrees,
    check_accepts_wrapped_torchvision_model,
    check_picklable,
)

EXPLAINER_KIT = Kit("explainer", Explainer, EXPLAINER_CHECKS, ExplainerCheckFailedWarning)


def check_explainer(
    explainer: str | type[Explainer] | Explainer,
    *,
    on_fail: Literal["raise", "warn"] | None = "raise",
    expected_failed_checks: Mapping[str, str] | None = None,
    callback: Callable[..., None] | None = None,
) -> list[dict[str, Any]]:
    """Run every applicable check on an explainer (registered name, class or instance); rows
    ``{explainer, check_name, status, exception, expected_to_fail_reason}`` (see :meth:`Kit.run`)."""
    return EXPLAINER_KIT.run(explainer, on_fail=on_fail, expected_failed_checks=expected_failed_checks,
                             callback=callback)


def explainer_checks_generator(
    explainer: str | type[Explainer] | Explainer,
    *,
    expected_failed_checks: Mapping[str, str] | None = None,
    mark: Literal["xfail", "skip"] | None = None,
) -> Iterator[Any]:
    """Yield ``(explainer, check)`` for every applicable check (marked ``pytest.param`` for expected failures)."""
    return EXPLAINER_KIT.generator(explainer, expected_failed_checks=expected_failed_checks, mark=mark)


def parametrize_with_explainer_checks(
    explainers: Iterable[str | type[Explainer] | Explainer],
    *,
    expected_failed_checks: Callable[[Any], Mapping[str, str]] | None = None,
) -> Any:
    """``pytest.mark.parametrize("explainer, check", ...)`` over every applicable check of every explainer."""
    return EXPLAINER_KIT.parametrize(explainers, expected_failed_checks=expected_failed_checks)
