"""EG-AL's question, registered by this plugin, on fabricated results whose answers are known."""

from __future__ import annotations

from pathlib import Path

import pytest

from xalbench.testing.findings import BASE, FabricatedRun


def test_registered_by_this_plugin() -> None:
    from xalbench.plugins import PluginSelection

    assert PluginSelection.from_env().registry().record("finding", "egal").distribution == "xalbench-egal"


@pytest.mark.parametrize("delta, verdict", [(0.08, "reproduced"), (-0.08, "contradicted"), (0.0, "not reproduced")])
def test_egal_vs_random(tmp_path: Path, delta: float, verdict: str) -> None:
    run = FabricatedRun(tmp_path)
    run.add("d", "random+dice", "random", "dice", BASE)
    run.add("d", "egal+dice", "egal", "dice", BASE, {"aulc_acc": delta})
    run.add("d", "random+ce", "random", "ce", BASE)
    block = run.blocks()["egal"]
    assert block["verdict"] == verdict and "egal+dice vs random+dice" in block["text"]
    assert "λ trend" not in block["text"]


@pytest.mark.parametrize("shape, verdict", [((0.0, 0.06, 0.02), "reproduced"), ((0.06, 0.03, 0.0), "contradicted")])
def test_egal_lambda_trend(tmp_path: Path, shape: tuple[float, ...], verdict: str) -> None:
    """An interior optimum beats both extremes; an optimum at an extreme, with the interior λ
    significantly below it, contradicts the paper's curve (and so the block, a claim about every part)."""
    run = FabricatedRun(tmp_path)
    run.add("d", "random+dice", "random", "dice", BASE)
    for lam, d in zip((0.25, 0.5, 0.75), shape, strict=True):
        run.add("d", f"egal[lam={lam}]+dice", "egal", "dice", BASE, {"aulc_acc": 0.05 + d},
                strategy_options={"lam": lam})
    block = run.blocks()["egal"]
    assert "λ trend" in block["text"]
    assert all(c["verdict"] == "reproduced" for c in block["comparisons"])  # EG-AL > random holds for each λ
    assert block["verdict"] == verdict
    assert ("interior λ=0.5" in block["text"]) == (verdict == "reproduced")


def test_not_asked_without_rois(tmp_path: Path) -> None:
    run = FabricatedRun(tmp_path)
    facts = {"task": "multi-class", "spatial_dims": 2, "has_roi": False}
    run.add("plain", "random+ce", "random", "ce", BASE, facts=facts)
    run.add("plain", "egal+ce", "egal", "ce", BASE, {"aulc_acc": 0.08}, facts=facts)
    block = run.blocks()["egal"]
    assert block["verdict"] == "inconclusive" and block["comparisons"] == [] and "plain" in block["not_asked"]
