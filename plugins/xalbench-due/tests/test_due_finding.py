"""DUE's question, registered by this plugin, on fabricated results whose answers are known."""

from __future__ import annotations

from pathlib import Path

import pytest

from xalbench.testing.findings import BASE, FabricatedRun

SPARSE_3D = {"task": "multi-class", "spatial_dims": 3, "has_roi": True, "sparse_annotations": True}


def test_registered_by_this_plugin() -> None:
    from xalbench.plugins import PluginSelection

    assert PluginSelection.from_env().registry().record("finding", "due").distribution == "xalbench-due"


@pytest.mark.parametrize("delta, verdict", [(0.05, "reproduced"), (-0.05, "contradicted"), (0.0, "not reproduced")])
def test_due_vs_baseline_plus(tmp_path: Path, delta: float, verdict: str) -> None:
    run = FabricatedRun(tmp_path)
    run.add("vol", "random+due-baseline-plus", "random", "due-baseline-plus", BASE, facts=SPARSE_3D)
    run.add("vol", "random+due", "random", "due", BASE, {"aulc_iou": delta}, facts=SPARSE_3D)
    block = run.blocks()["due"]
    assert block["verdict"] == verdict and "ΔAULC_IoU" in block["text"]


def test_asked_only_where_slices_are_left_unannotated(tmp_path: Path) -> None:
    """2D data and fully annotated volumes: the losses are equal by construction there, so no comparison."""
    run = FabricatedRun(tmp_path)
    for ds, facts in (("flat", {"spatial_dims": 2}), ("full", {"spatial_dims": 3, "sparse_annotations": False}),
                      ("vol", SPARSE_3D)):
        run.add(ds, "random+due-baseline-plus", "random", "due-baseline-plus", BASE, facts=facts)
        run.add(ds, "random+due", "random", "due", BASE, {"aulc_iou": 0.0}, facts=facts)
    block = run.blocks()["due"]
    assert [c["dataset"] for c in block["comparisons"]] == ["vol"]
    assert set(block["not_asked"]) == {"flat", "full"} and "every slice annotated" in block["not_asked"]["full"]


def test_says_what_is_missing(tmp_path: Path) -> None:
    run = FabricatedRun(tmp_path)
    run.add("vol", "random+due", "random", "due", BASE, facts=SPARSE_3D)
    block = run.blocks()["due"]
    assert block["verdict"] == "inconclusive" and block["text"].startswith("Not tested in this run: no DUE")
    assert "the run has due" in block["text"]
