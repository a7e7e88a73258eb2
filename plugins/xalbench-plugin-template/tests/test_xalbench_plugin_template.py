"""The plugin's own tests: xalbench finds it through its entry point, and it passes the strategy kit."""

from __future__ import annotations

from xalbench.plugins import load_registry
from xalbench.testing import parametrize_with_checks

from xalbench_plugin_template.strategy import TemplateLeastConfident


def test_registered_through_its_entry_point() -> None:
    record = load_registry().record("strategy", "template-least-confident")
    assert record.obj is TemplateLeastConfident
    assert record.distribution == "xalbench-plugin-template"


@parametrize_with_checks([TemplateLeastConfident])
def test_xalbench_conformance(strategy, check) -> None:
    check(strategy)
