"""End to end through the CLI: a tiny multi-label suite with GESTALT and its baselines runs in the
strategy sandbox, records the multi-label metrics and reports against random."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from xalbench.cli import main

pytestmark = pytest.mark.slow  # four cells, each with its own strategy sandbox process

SUITE = """
name = "gestalt-e2e"
description = "Test-sized: synth-cxr-multilabel at 24 px, 60-image pool, 1 seed, 12 initial + 1 round x 6."
seeds = [0]

[model]
name = "small-cnn"
options = { width = 4, n_blocks = 2 }

[explainer]
name = "gradcam"

[protocol]
base = "aeig"
initial = 12
rounds = 1
query_size = 6

[training]
epochs = 1
batch_size = 16

[[datasets]]
name = "synth-cxr-multilabel"
options = { size = 24, n_train = 60, n_val = 20, n_test = 30 }

[[methods]]
label = "Random"
strategy = "random"

[[methods]]
label = "WeightedNode"
strategy = "gestalt-weighted-node"

[[methods]]
label = "IDEAL"
strategy = "ideal"
strategy_options = { n_estimators = 10 }

[[methods]]
label = "Uncertainty"
strategy = "mcd-variance"
"""


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("gestalt-e2e")
    suite = root / "suite.toml"
    suite.write_text(SUITE, encoding="utf-8")
    out = root / "out"
    assert main(["run", "--suite", str(suite), "--out", str(out), "--workers", "1", "--quiet"]) == 0
    return out


def test_every_cell_finishes_with_multilabel_metrics(run_dir: Path):
    cells = [json.loads(p.read_text()) for p in sorted((run_dir / "cells").glob("*.json"))]
    assert len(cells) == 4 and {c["status"] for c in cells} == {"ok"}, [c.get("error") for c in cells]
    ours = [c for c in cells if c["cell"]["strategy"] != "random"]
    assert {c["provenance"]["components"]["strategy"]["distribution"] for c in ours} == {"xalbench-gestalt"}
    for c in cells:
        assert [r["n_labelled"] for r in c["rounds"]] == [12, 18]
        for r in c["rounds"]:
            assert {"auc", "lrap", "ranking_loss"} <= set(r["metrics"])
        assert {"aulc_auc", "aulc_lrap", "aulc_rloss"} <= set(c["summary"])
        queried = c["rounds"][0]["queried"]
        assert len(queried) == 6 and len(set(queried)) == 6


def test_report_lists_gestalt_beside_random(run_dir: Path, tmp_path: Path):
    out = tmp_path / "report.json"
    assert main(["report", str(run_dir), "--format", "json", "-o", str(out)]) == 0
    rows = {r["method"] for r in json.loads(out.read_text())["leaderboard"]}
    assert rows == {"Random", "WeightedNode", "IDEAL", "Uncertainty"}
