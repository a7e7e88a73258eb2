"""Planning suites into cells: wildcards, CLI filters, optional datasets."""

from __future__ import annotations

from xalbench.planning import plan_suite
from xalbench.plugins import load_registry
from xalbench.suite import parse_suite

BASE = """
name = "p"
{grid}
[[datasets]]
name = "synth-lesion-2d"
options = {{ size = 32, n_train = 60, n_val = 20, n_test = 20 }}
[[datasets]]
name = "medmnist:dermamnist@28"
optional = true
{methods}
"""


def test_wildcard_keeps_explicit_methods_and_every_strategy(tmp_path) -> None:
    reg = load_registry()
    text = BASE.format(grid='strategies = "*"\nlosses = ["ce"]',
                       methods='[[methods]]\nlabel = "E+dice"\nstrategy = "entropy"\nloss = "dice"')
    plan = plan_suite(reg, parse_suite(text, where="t"), out_dir=str(tmp_path), data_root=str(tmp_path))
    methods = {c.method.display for c in plan.cells}
    assert "E+dice" in methods
    assert {f"{s}+ce" for s in reg.names("strategy")} <= methods
    assert plan.skipped_datasets and "dermamnist" in plan.skipped_datasets[0][0]


def test_cli_filters_add_and_restrict(tmp_path) -> None:
    reg = load_registry()
    text = BASE.format(grid='strategies = ["random", "entropy"]\nlosses = ["ce"]', methods="")
    suite = parse_suite(text, where="t")
    plan = plan_suite(reg, suite, out_dir=str(tmp_path), strategies=["margin,random"], losses=["ce", "dice"],
                      seeds=[3], data_root=str(tmp_path))
    assert sorted({c.method.display for c in plan.cells}) == ["margin+ce", "margin+dice", "random+ce", "random+dice"]
    assert {c.seed for c in plan.cells} == {3}
