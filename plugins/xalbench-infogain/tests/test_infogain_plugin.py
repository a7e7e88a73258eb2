"""The plugin is discovered through its entry point, passes the kit and declares its limits."""

from __future__ import annotations

import pytest
from xalbench_infogain import AEIG, CFIG, EIG, UIG
from xalbench_infogain import plugin as plugin_module

from xalbench.errors import OptionsError
from xalbench.plugins import get_plugin_manager, load_registry
from xalbench.sandbox.guard import skip_reason
from xalbench.testing import parametrize_with_checks


def _registry():
    # Only this plugin: independent of what else is installed in the environment.
    pm = get_plugin_manager(load_entrypoints=False, extra=[plugin_module])
    return load_registry(pm)


def test_registers_the_four_strategies():
    assert _registry().names("strategy") == ["aeig", "cfig", "eig", "uig"]


def test_entry_point_is_published():
    from importlib.metadata import entry_points

    eps = {ep.name: ep.value for ep in entry_points(group="xalbench")}
    assert eps.get("infogain") == "xalbench_infogain.plugin"


def test_installed_registry_records_the_distribution():
    try:
        record = load_registry().record("strategy", "aeig")
    except Exception as exc:  # another installed plugin is broken: not this package's fault
        pytest.skip(f"full registry unavailable: {exc}")
    assert record.distribution == "xalbench-infogain"


def test_multilabel_skipped_with_reason_and_bad_lr_rejected():
    reason = skip_reason(AEIG, task="multi-label", spatial_dims=2, pool_masks_visible=False)
    assert reason is not None and "multi-label" in reason
    with pytest.raises(OptionsError, match="lr"):
        AEIG({"lr": 0.0})


@parametrize_with_checks([EIG, AEIG, UIG, CFIG])
def test_conformance(strategy, check):
    check(strategy)


@pytest.mark.parametrize("cls", [EIG, AEIG, UIG, CFIG])
def test_rank_through_scores_and_the_default_query(cls):
    import numpy as np

    from xalbench.base import Strategy, stable_topk
    from xalbench.testing import make_context

    assert cls.query is Strategy.query
    ctx = make_context(seed=3)
    scores = cls().scores(ctx).numpy()
    assert cls().query(make_context(seed=3), 5).tolist() == ctx.unlabelled[stable_topk(scores, 5)].tolist()
    assert np.isfinite(scores).all()
