"""The plugin is discovered through its entry point, passes the conformance kit and ships its suites."""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest
from xalbench_gestalt import IDEAL, GestaltEdge, GestaltNode, GestaltWeightedNode, MCDropoutVariance
from xalbench_gestalt import plugin as plugin_module

from xalbench.plugins import get_plugin_manager, load_registry
from xalbench.sandbox.guard import skip_reason
from xalbench.testing import parametrize_with_checks

ALL = [GestaltNode, GestaltEdge, GestaltWeightedNode, IDEAL, MCDropoutVariance]
NAMES = ["gestalt-edge", "gestalt-node", "gestalt-weighted-node", "ideal", "mcd-variance"]


def _registry():
    return load_registry(get_plugin_manager(load_entrypoints=False, extra=[plugin_module]))


def test_registers_the_strategies_and_suites():
    reg = _registry()
    assert reg.names("strategy") == NAMES
    assert {"gestalt-paper", "gestalt-smoke"} <= set(reg.names("suite"))


def test_entry_point_is_published_and_recorded():
    eps = {ep.name: ep.value for ep in entry_points(group="xalbench")}
    assert eps.get("gestalt") == "xalbench_gestalt.plugin"
    try:
        record = load_registry().record("strategy", "gestalt-node")
    except Exception as exc:  # another installed plugin is broken: not this package's fault
        pytest.skip(f"full registry unavailable: {exc}")
    assert record.distribution == "xalbench-gestalt"


def test_no_core_strategy_is_eq9_already():
    try:
        core = set(load_registry().names("strategy")) - set(NAMES)
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"full registry unavailable: {exc}")
    assert "mcd-variance" not in core and {"mcd-entropy", "bald"} <= core


@pytest.mark.parametrize("cls", ALL)
def test_applies_to_multilabel_multiclass_2d_3d_without_masks(cls):
    for task in ("multi-class", "multi-label"):
        for dims in (2, 3):
            assert skip_reason(cls, task=task, spatial_dims=dims, pool_masks_visible=False) is None
    assert cls.requires_pool_masks is False


def test_paper_suite_methods_datasets_and_scaling_note():
    suite = _registry().get("suite", "gestalt-paper").load()
    by_label = {m.display: m for m in suite.methods}
    strategies = {m.strategy.name for m in suite.methods}
    assert strategies == {"random", "mcd-variance", "ideal", "gestalt-node", "gestalt-edge", "gestalt-weighted-node"}
    wn = [m.strategy.options for m in suite.methods if m.strategy.name == "gestalt-weighted-node"]
    assert {o.get("alpha", "literal") for o in wn} == {"literal", "edge-scaled"}
    assert {o["fixed_alpha"] for o in wn if "fixed_alpha" in o} == {0.05, 0.75}
    assert any(o.get("invert") for o in wn) and any(o.get("features") == "image" for o in wn)
    assert any(o.get("saliency") == "deep-taylor" for o in wn)
    assert by_label["Uncertainty"].strategy.options == {"n_samples": 20}
    assert {m.loss.name for m in suite.methods} == {"ce"}
    assert suite.datasets[0].name == "synth-cxr-multilabel" and not suite.datasets[0].optional
    assert all(d.optional for d in suite.datasets[1:]) and len(suite.datasets) == 3
    assert "Scaled for CPU" in suite.description and suite.pool_masks == "hidden"
    ours = {c.name: c for c in ALL}
    for method in suite.methods:  # every option set is valid
        if method.strategy.name in ours:
            ours[method.strategy.name](method.strategy.options)


def test_paper_suite_dataset_options_are_valid():
    try:
        reg = load_registry()
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"full registry unavailable: {exc}")
    for spec in _registry().get("suite", "gestalt-paper").load().datasets:
        reg.get("dataset", spec.name)(spec.options)  # OptionsError on a bad key or value


@parametrize_with_checks(ALL)
def test_conformance(strategy, check):
    check(strategy)
