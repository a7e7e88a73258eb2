"""The MLflow listener logs a real run to a local file store, through the lifecycle hooks only."""

from __future__ import annotations

import pytest

import xalbench
from xalbench.plugins import get_plugin_manager, load_registry

mlflow = pytest.importorskip("mlflow")

SUITE = """
name = "mlflow-tiny"
description = "two cells"
seeds = [0]
strategies = ["random", "entropy"]
[model]
name = "small-cnn"
options = { width = 4, n_blocks = 2 }
[protocol]
base = "aeig"
initial = 16
rounds = 1
query_size = 8
[training]
epochs = 1
batch_size = 16
[[datasets]]
name = "synth-lesion-2d"
label = "lesions"
options = { size = 32, n_train = 60, n_val = 20, n_test = 30 }
"""


def test_cells_rounds_and_report_are_logged(tmp_path, monkeypatch) -> None:
    from xalbench_mlflow import plugin

    # MLflow 3.18+ refuses new file stores; a SQLite store works on every supported version.
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.chdir(tmp_path)  # the SQLite store's default artifact root is ./mlruns
    monkeypatch.setenv("XALBENCH_MLFLOW_URI", store)
    registry = load_registry(get_plugin_manager(disabled=["mlflow"], extra=[plugin]))
    suite = tmp_path / "s.toml"
    suite.write_text(SUITE)
    results = xalbench.run(str(suite), registry=registry, out_dir=str(tmp_path / "out"), isolation="inline")
    assert [r["status"] for r in results] == ["ok", "ok"]
    client = mlflow.tracking.MlflowClient(tracking_uri=store)
    exp = client.get_experiment_by_name("xalbench-mlflow-tiny")
    runs = {r.info.run_name: r for r in client.search_runs([exp.experiment_id])}
    assert set(runs) == {"lesions__random+ce__seed0", "lesions__entropy+ce__seed0", "mlflow-tiny report"}
    cell = runs["lesions__entropy+ce__seed0"]
    history = client.get_metric_history(cell.info.run_id, "accuracy")
    assert [m.step for m in history] == [16, 24]  # one point per round, at the labelled-set size
    assert [m.value for m in history] == [r["metrics"]["accuracy"] for r in results[1]["rounds"]]
    assert cell.data.metrics["summary.aulc_acc"] == pytest.approx(results[1]["summary"]["aulc_acc"])
    assert cell.data.tags["xalbench.status"] == "ok" and cell.info.status == "FINISHED"
    assert cell.data.params["training.epochs"] == "1"
    report = runs["mlflow-tiny report"]
    artifacts = [a.path for a in client.list_artifacts(report.info.run_id)]
    assert artifacts == ["leaderboard.md"]


def test_inactive_without_a_tracking_uri(tmp_path, monkeypatch) -> None:
    from xalbench_mlflow import plugin

    monkeypatch.delenv("XALBENCH_MLFLOW_URI", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    registry = load_registry(get_plugin_manager(disabled=["mlflow"], extra=[plugin]))
    suite = tmp_path / "s.toml"
    suite.write_text(SUITE.replace('["random", "entropy"]', '["random"]'))
    xalbench.run(str(suite), registry=registry, out_dir=str(tmp_path / "out"), isolation="inline")
    assert not (tmp_path / "mlruns").exists()
