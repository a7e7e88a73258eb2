"""GESTALT's question, registered by this plugin, on fabricated results whose answers are known."""

from __future__ import annotations

from pathlib import Path

import pytest

from xalbench.testing.findings import BASE, FabricatedRun


def test_registered_by_this_plugin() -> None:
    from xalbench.plugins import PluginSelection

    assert PluginSelection.from_env().registry().record("finding", "gestalt").distribution == "xalbench-gestalt"


@pytest.mark.parametrize("deltas, verdict", [((0.03, 0.02, 0.04), "reproduced"), ((-0.03, -0.02, -0.04), "contradicted"),
                                             ((0.03, -0.03, 0.0), "contradicted"), ((0.03, 0.0, 0.0), "not reproduced")])
def test_gestalt_vs_uncertainty(tmp_path: Path, deltas: tuple[float, ...], verdict: str) -> None:
    """The paper claims every variant beats uncertainty: one variant below it contradicts the claim, one
    within δ of it leaves it not reproduced."""
    run = FabricatedRun(tmp_path)
    run.add("cxr", "mcd-variance+ce", "mcd-variance", "ce", BASE, multilabel=True)
    for name, d in zip(("gestalt-node", "gestalt-edge", "gestalt-weighted-node"), deltas, strict=True):
        run.add("cxr", f"{name}+ce", name, "ce", BASE, {"aulc_auc": d}, multilabel=True)
    run.add("lesion", "gestalt-node+ce", "gestalt-node", "ce", BASE)  # multi-class: not GESTALT's question
    block = run.blocks()["gestalt"]
    assert block["verdict"] == verdict and len(block["comparisons"]) == 3
    assert {c["dataset"] for c in block["comparisons"]} == {"cxr"} and block["not_asked"] == {"lesion": "not multi-label"}
    assert {c["family"] for c in block["comparisons"]} == {3}
