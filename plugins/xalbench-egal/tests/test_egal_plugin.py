"""The plugin is discovered through its entry point, passes the kit and declares what it needs."""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest
from xalbench_egal import EGAL
from xalbench_egal import plugin as plugin_module

from xalbench.errors import ConfigError, InformationAccessError, StrategyContractError
from xalbench.plugins import get_plugin_manager, load_registry
from xalbench.sandbox.guard import call_strategy, skip_reason
from xalbench.testing import parametrize_with_checks


def _registry():
    # only this plugin (plus nothing else): independent of what else is installed
    return load_registry(get_plugin_manager(load_entrypoints=False, extra=[plugin_module]))


def test_registers_strategy_and_suites_but_no_loss():
    reg = _registry()
    assert reg.names("strategy") == ["egal"]
    assert {"egal-paper", "egal-smoke", "egal-paper-full"} <= set(reg.names("suite"))
    assert reg.names("loss") == []  # eq. 4 is the core `dice` loss, not a second copy


def test_entry_point_is_published_and_recorded():
    eps = {ep.name: ep.value for ep in entry_points(group="xalbench")}
    assert eps.get("egal") == "xalbench_egal.plugin"
    try:
        record = load_registry().record("strategy", "egal")
    except Exception as exc:  # another installed plugin is broken: not this package's fault
        pytest.skip(f"full registry unavailable: {exc}")
    assert record.distribution == "xalbench-egal"


def test_paper_suite_methods_and_protocol():
    suite = _registry().get("suite", "egal-paper").load()
    assert suite.pool_masks == "visible" and suite.protocol_base == "egal"
    assert suite.protocol_overrides["initial_sampling"] == "class-balanced"
    assert len(suite.seeds) == 5
    egal = [m for m in suite.methods if m.strategy.name == "egal"]
    assert sorted({m.strategy.options["lam"] for m in egal}) == [0.0, 0.3, 0.5, 0.6, 0.9, 1.0]  # Fig. 6
    alphas = {(m.loss.name, m.loss.options.get("alpha")) for m in egal if m.strategy.options["lam"] == 0.5}
    assert alphas == {("dice", 0.1), ("ce", None)}  # α ∈ {0.1, 0}
    baseline = [m for m in suite.methods if m.strategy.name == "random" and m.loss.name == "ce"]
    assert len(baseline) == 1
    assert {d.name for d in suite.datasets if d.optional} == {"brats", "vindr-cxr", "siim-covid19"}


def test_skipped_where_pool_masks_are_hidden(context):
    reason = skip_reason(EGAL, task="multi-class", spatial_dims=2, pool_masks_visible=False)
    assert reason is not None and "pool ROI masks" in reason
    with pytest.raises(InformationAccessError):
        call_strategy(EGAL(), context(pool_masks_visible=False), 5, timeout=60)


def test_no_explainer_is_one_clear_error(context):
    with pytest.raises(StrategyContractError) as info:
        call_strategy(EGAL(), context(explainer=None), 5, timeout=60)
    assert isinstance(info.value.__cause__, ConfigError) and "[explainer]" in str(info.value.__cause__)


@parametrize_with_checks([EGAL])
def test_conformance(strategy, check):
    check(strategy)
