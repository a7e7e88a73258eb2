"""The plugin is discovered through its entry point; the due-smoke suite runs end to end through the CLI."""

from __future__ import annotations

import json
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from xalbench_due import plugin as plugin_module

from xalbench.cli import main
from xalbench.plugins import get_plugin_manager, load_registry


def _registry():
    return load_registry(get_plugin_manager(load_entrypoints=False, extra=[plugin_module]))


def test_registers_model_losses_metrics_and_suites():
    reg = _registry()
    assert reg.names("model") == ["due-resnet18-3d"]
    assert reg.names("loss") == ["due", "due-baseline-plus", "due-paper"]
    assert {"due_exp_roc_auc", "due_exp_pr_auc", "due_exp_precision", "due_exp_precision_coded", "due_exp_recall",
            "due_exp_f1", "due_exp_f1_coded", "due_pr_auc"} == set(reg.names("metric"))
    assert {"due-paper", "due-lambda", "due-smoke"} <= set(reg.names("suite"))
    eps = {ep.name: ep.value for ep in entry_points(group="xalbench")}
    assert eps.get("due") == "xalbench_due.plugin"


def test_paper_suites_are_supervised_with_the_figure_3_sizes_and_lambda_sweep():
    reg = _registry()
    paper = reg.get("suite", "due-paper").load()
    synthetic = [d for d in paper.datasets if d.name == "synth-lesion-3d"]
    assert [d.options["n_train"] for d in synthetic] == [20, 50, 100]
    real = {d.label: d for d in paper.datasets if d.name == "volumes-3d"}
    assert set(real) == {"lidc-idri-n20", "pancreas-n20"} and all(d.optional for d in real.values())
    assert all(d.options["max_train"] == 20 for d in real.values())
    assert paper.protocol_overrides["rounds"] == 0 and paper.protocol_overrides["initial"] == 1.0
    assert {m.loss.name for m in paper.methods} == {"ce", "due-baseline-plus", "due", "due-paper"}
    assert len(paper.seeds) == 5 and paper.explainer.options == {"weight_pool": "hw"}
    lam = reg.get("suite", "due-lambda").load()
    assert sorted(m.loss.options.get("lam", 1.0) for m in lam.methods if m.loss.name == "due") == [0.001, 0.01, 0.1, 1.0]


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("due-smoke")
    assert main(["run", "--suite", "due-smoke", "--out", str(out), "--quiet", "--workers", "1"]) == 0
    return out


def _cells(run: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((run / "cells").rglob("*.json"))]


@pytest.mark.slow
def test_smoke_suite_runs_due_inside_an_al_loop(smoke_run: Path):
    cells = [c for c in _cells(smoke_run) if "rounds" in c]
    assert len(cells) == 3 and {c["status"] for c in cells} == {"ok"}
    due = next(c for c in cells if c["cell"]["loss"] == "due")
    assert [r["n_labelled"] for r in due["rounds"]] == [8, 12]
    terms = due["rounds"][0]["train_terms"]
    assert terms["n_annotated"] > 0 and "due_binary" in terms and 0 < terms["due_mean_weight"] <= 1
    metrics = due["rounds"][-1]["metrics"]
    for key in ("due_exp_roc_auc", "due_exp_pr_auc", "due_exp_recall", "due_exp_f1", "due_pr_auc", "iou"):
        assert key in metrics
    assert metrics["due_exp_precision_coded"] >= metrics["due_exp_precision"]  # the code's precision never counts FPs
