"""Every registered strategy (built-in or installed plugin) passes the conformance kit (timm-style)."""

from __future__ import annotations

import pytest

from xalbench.plugins import load_registry
from xalbench.strategies.plugin import BUILTIN_STRATEGIES
from xalbench.testing import parametrize_with_checks

pytestmark = pytest.mark.cost(55)  # seconds on 2 cores: files start longest first (tests/conftest.py)

REGISTRY = load_registry()
NAMES = REGISTRY.names("strategy")


def test_every_builtin_is_registered_by_xalbench():
    for cls in BUILTIN_STRATEGIES:
        record = REGISTRY.record("strategy", cls.name)
        assert record.obj is cls and record.distribution == "xalbench"
    assert {c.name for c in BUILTIN_STRATEGIES} == {
        "random", "entropy", "margin", "least-confidence", "mcd-entropy", "bald", "coreset", "badge"
    }


@parametrize_with_checks(NAMES)
def test_registered_strategy_conforms(strategy, check):
    check(strategy)
