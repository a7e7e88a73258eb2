"""The template's own tests: discovered through its entry point, and passes xalbench's kit."""

from __future__ import annotations

from importlib.metadata import entry_points

from xalbench_plugin_template import LeastConfident

from xalbench.plugins import load_registry
from xalbench.testing import parametrize_with_checks


def test_registered_through_entry_point():
    assert any(ep.value == "xalbench_plugin_template" for ep in entry_points(group="xalbench"))
    record = load_registry().record("strategy", "template-least-confident")
    assert record.obj is LeastConfident
    assert record.distribution == "xalbench-plugin-template"


@parametrize_with_checks([LeastConfident])
def test_xalbench_conformance(strategy, check):
    check(strategy)
