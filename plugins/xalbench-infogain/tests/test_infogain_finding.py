"""AEIG's question, registered by this plugin, on fabricated results whose answers are known."""

from __future__ import annotations

from pathlib import Path

import pytest

from xalbench.results import atomic_write_json, seal
from xalbench.testing.findings import BASE, FabricatedRun, result


def _aeig_run(root: Path, aeig: list[int], seeds: int = 5) -> FabricatedRun:
    run = FabricatedRun(root, seeds)
    imbalanced = [[14, 4, 2], [13, 5, 2]]  # random's acquisitions: classes 1 and 2 are the minority
    run.add("imb", "random+ce", "random", "ce", BASE, histograms=imbalanced)
    run.add("imb", "entropy+ce", "entropy", "ce", BASE, {"aulc_acc": 0.0}, histograms=[[12, 5, 3], [12, 6, 2]])
    for s in range(seeds):  # AEIG's own per-seed histograms (so its share varies over seeds)
        hist = [[aeig[0] + (s % 2), aeig[1] - (s % 2), aeig[2]], list(aeig)]
        atomic_write_json(root / "cells" / f"imb__aeig+ce__seed{s}.json",
                          seal(result("imb", "aeig+ce", "aeig", "ce", s, dict(BASE), histograms=hist)))
    return run


def test_registered_by_this_plugin() -> None:
    from xalbench.plugins import PluginSelection

    assert PluginSelection.from_env().registry().record("finding", "aeig").distribution == "xalbench-infogain"


@pytest.mark.parametrize("aeig, verdict", [([8, 7, 5], "reproduced"), ([18, 1, 1], "contradicted")])
def test_aeig_minority_share(tmp_path: Path, aeig: list[int], verdict: str) -> None:
    block = _aeig_run(tmp_path, aeig).blocks()["aeig"]
    assert block["verdict"] == verdict
    assert "minority classes [1, 2]" in block["text"] and "aeig+ce vs entropy+ce: Δminority share" in block["text"]
    assert {c["family"] for c in block["comparisons"]} == {2}  # Holm over entropy and random


def test_aeig_needs_seeds_and_an_imbalanced_pool(tmp_path: Path) -> None:
    assert _aeig_run(tmp_path / "a", [8, 7, 5], seeds=2).blocks()["aeig"]["verdict"] == "inconclusive"
    run = FabricatedRun(tmp_path / "b")
    run.add("bal", "random+ce", "random", "ce", BASE, histograms=[[7, 7, 6]])
    run.add("bal", "aeig+ce", "aeig", "ce", BASE, histograms=[[7, 7, 6]])
    block = run.blocks()["aeig"]
    assert block["verdict"] == "inconclusive" and "pool not imbalanced" in block["text"]


def test_not_asked_on_a_pool_known_to_be_balanced(tmp_path: Path) -> None:
    run = FabricatedRun(tmp_path)
    facts = {"task": "multi-class", "class_shares": [0.3, 0.3, 0.4]}
    run.add("bal", "random+ce", "random", "ce", BASE, histograms=[[14, 4, 2]], facts=facts)
    run.add("bal", "aeig+ce", "aeig", "ce", BASE, histograms=[[8, 7, 5]], facts=facts)
    block = run.blocks()["aeig"]
    assert block["comparisons"] == [] and block["not_asked"] == {"bal": "balanced pool (class shares 0.30, 0.30, 0.40)"}
