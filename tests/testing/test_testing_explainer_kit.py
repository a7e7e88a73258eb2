"""check_explainer: every built-in explainer conforms; each broken explainer fails the check that names its bug."""

from __future__ import annotations

import warnings
from typing import ClassVar

import pytest
import torch

from xalbench.explain.core import GradCAMExplainer
from xalbench.plugins import load_registry
from xalbench.testing.explainer_checks import (
    EXPLAINER_CHECKS,
    ExplainerCheckFailedWarning,
    check_3d,
    check_explainer,
    explainer_checks_generator,
    parametrize_with_explainer_checks,
)
from xalbench.testing.kit import SkipCheck

pytestmark = pytest.mark.cost(20)  # seconds on 2 cores: files start longest first (tests/conftest.py)

REGISTRY = load_registry()
BUILTIN = [r.name for r in REGISTRY if r.kind == "explainer" and r.distribution == "xalbench"]
CORE = ["cam", "gradcam", "hirescam"]
EXPECTED = {"eigencam": {"check_targets_respected": "Eigen-CAM is class-agnostic by design (first principal "
                                                    "component of the activations)"}}


def _expected(explainer):
    return EXPECTED.get(explainer if isinstance(explainer, str) else explainer.name, {})


@parametrize_with_explainer_checks(CORE, expected_failed_checks=_expected)
def test_core_explainers_conform(explainer, check):
    check(explainer)


@pytest.mark.slow
@parametrize_with_explainer_checks([n for n in BUILTIN if n not in CORE], expected_failed_checks=_expected)
def test_adapter_explainers_conform(explainer, check):
    check(explainer)


# ----------------------------------------------------------------------------- broken explainers
class _Broken(GradCAMExplainer):
    summary: ClassVar[str] = "broken on purpose"


class IgnoresTargets(_Broken):
    name: ClassVar[str] = "ignores-targets"

    def explain(self, model, images, targets=None, **kw):
        return super().explain(model, images, None, **kw)


class FirstTargetOnly(_Broken):
    name: ClassVar[str] = "first-target-only"  # a library's zip-truncation bug, in effect

    def explain(self, model, images, targets=None, **kw):
        if targets is not None:
            targets = targets[:1].expand(images.shape[0])
        return super().explain(model, images, targets, **kw)


class LeavesEvalMode(_Broken):
    name: ClassVar[str] = "leaves-eval"

    def explain(self, model, images, targets=None, **kw):
        model.eval()
        return super().explain(model, images, targets, **kw)


class LeavesHook(_Broken):
    name: ClassVar[str] = "leaves-hook"

    def explain(self, model, images, targets=None, **kw):
        model.classifier.register_forward_hook(lambda *a: None)
        return super().explain(model, images, targets, **kw)


class DetachedAnyway(_Broken):
    name: ClassVar[str] = "detached-anyway"  # declares differentiable, never keeps the graph

    def explain(self, model, images, targets=None, **kw):
        return super().explain(model, images, targets, **kw).detach()


class KeepsGraph(_Broken):
    name: ClassVar[str] = "keeps-graph"

    def explain(self, model, images, targets=None, *, all_classes=False, create_graph=False):
        return super().explain(model, images, targets, all_classes=all_classes, create_graph=True)


class Crashes3D(_Broken):
    name: ClassVar[str] = "crashes-3d"
    supports_3d: ClassVar[bool] = False

    def explain(self, model, images, targets=None, **kw):
        if images.dim() == 5:
            raise ValueError("boom")
        return super().explain(model, images, targets, **kw)


class Noisy(_Broken):
    name: ClassVar[str] = "noisy"

    def explain(self, model, images, targets=None, **kw):
        out = super().explain(model, images, targets, **kw)
        return (out * 0.9 + 0.1 * torch.rand_like(out)).clamp(0, 1)


class StaleCache(_Broken):
    name: ClassVar[str] = "stale-cache"

    def explain_from_features(self, model, features, targets=None, **kw):
        return super().explain_from_features(model, features, None, **kw)


class Unpicklable(_Broken):
    name: ClassVar[str] = "unpicklable"

    def __init__(self, options=None):
        super().__init__(options)
        self.fn = lambda x: x


def _status(rows):
    return {r["check_name"]: r["status"] for r in rows}


@pytest.mark.parametrize(("explainer", "check_name"), [
    (IgnoresTargets, "check_targets_respected"),
    (FirstTargetOnly, "check_targets_respected"),
    (GradCAMExplainer({"normalize": "none", "relu": False}), "check_maps_in_unit_range_at_input_size"),  # options used
    (GradCAMExplainer({"resize": False}), "check_maps_in_unit_range_at_input_size"),
    (LeavesEvalMode, "check_model_left_as_found"),
    (LeavesHook, "check_model_left_as_found"),
    (DetachedAnyway, "check_differentiable_maps_reach_parameters"),
    (KeepsGraph, "check_detached_without_create_graph"),
    (Crashes3D, "check_3d_refused_clearly"),
    (Noisy, "check_deterministic"),
    (StaleCache, "check_from_features_agrees"),
    (Unpicklable, "check_picklable"),
])
def test_each_broken_explainer_fails_the_right_check(explainer, check_name):
    check = next(c for c in EXPLAINER_CHECKS if c.__name__ == check_name)
    with pytest.raises(AssertionError):
        check(explainer)


def test_only_applicable_checks_are_yielded_and_direct_calls_skip():
    names = {c.__name__ for _, c in explainer_checks_generator("scorecam")}
    assert "check_3d_refused_clearly" in names and "check_3d" not in names
    assert "check_scoring_only_refuses_create_graph" in names and "check_differentiable_maps_reach_parameters" not in names
    names = {c.__name__ for _, c in explainer_checks_generator(GradCAMExplainer)}
    assert {"check_3d", "check_from_features_agrees", "check_differentiable_maps_reach_parameters"} <= names
    assert "check_3d_refused_clearly" not in names
    with pytest.raises(SkipCheck, match="supports_3d = False"):
        check_3d(REGISTRY.get("explainer", "scorecam"))


def test_rows_on_fail_modes_and_instance_ids():
    rows = check_explainer(GradCAMExplainer({"normalize": "none", "relu": False}), on_fail=None)
    assert rows[0]["explainer"] == "gradcam[relu=False,normalize='none']"
    assert _status(rows)["check_maps_in_unit_range_at_input_size"] == "failed"
    with pytest.raises(AssertionError, match="change with the target"):
        check_explainer(IgnoresTargets, on_fail="raise")
    with pytest.warns(ExplainerCheckFailedWarning) as caught:
        check_explainer(IgnoresTargets, on_fail="warn")
    assert any("check_targets_respected failed" in str(w.message) for w in caught)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rows = check_explainer(IgnoresTargets, on_fail=None, expected_failed_checks={"check_targets_respected": "x"})
    assert _status(rows)["check_targets_respected"] == "xfail"
    with pytest.raises(TypeError, match="explainer class, instance or registered name"):
        check_explainer(42)


def test_parametrize_ids_name_component_options_and_check():
    mark = parametrize_with_explainer_checks([GradCAMExplainer({"relu": False}), "cam"])
    ids = [p.id for p in mark.args[1]]
    assert "gradcam[relu=False]-check_targets_respected" in ids and "cam-check_3d" in ids
    assert mark.args[0] == "explainer, check"
