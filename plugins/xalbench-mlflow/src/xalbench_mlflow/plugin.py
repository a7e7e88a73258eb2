"""Log every cell of an xalbench run to an MLflow tracking store — a listener plugin.

Opt-in: active only when ``XALBENCH_MLFLOW_URI`` (or ``MLFLOW_TRACKING_URI``) names a tracking
store, e.g. ``sqlite:///path/to/mlflow.db`` (MLflow 3.18+ no longer accepts new ``file://`` stores) or ``http://mlflow:5000``. One MLflow experiment per
suite (``XALBENCH_MLFLOW_EXPERIMENT`` overrides its name), one MLflow run per cell (named by the
cell key, tagged with its identity hash): the cell's identity as parameters, every round's
metrics at step = labelled-set size, the summary (AULCs) when the cell ends, and the status.
When the whole xalbench run finishes, a parent MLflow run holds the markdown leaderboard as an
artifact.

Cells may run in several processes: every hook talks to the store through an explicit
``MlflowClient`` and the run id of its own cell, never through MLflow's global active run.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from xalbench import hookimpl

__all__ = ["tracking_uri"]

#: cell key → MLflow run id, for the cells running in this process
_RUNS: dict[str, str] = {}


def tracking_uri() -> str | None:
    return os.environ.get("XALBENCH_MLFLOW_URI") or os.environ.get("MLFLOW_TRACKING_URI") or None


def _client() -> Any:
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri())


def _experiment(client: Any, suite: str) -> str:
    name = os.environ.get("XALBENCH_MLFLOW_EXPERIMENT") or f"xalbench-{suite}"
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    try:
        return client.create_experiment(name)
    except Exception:  # noqa: BLE001 - another process created it meanwhile
        return client.get_experiment_by_name(name).experiment_id


def _flat(prefix: str, value: Any, out: dict[str, str]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flat(f"{prefix}.{k}" if prefix else str(k), v, out)
    else:
        out[prefix] = json.dumps(value, default=str)[:500]


def _finite(values: dict[str, Any]) -> dict[str, float]:
    out = {}
    for k, v in values.items():
        if isinstance(v, (int, float)) and not isinstance(v, bool) and v == v and abs(v) != float("inf"):
            out[k] = float(v)
    return out


@hookimpl
def cell_started(cell: Any) -> None:
    if tracking_uri() is None:
        return
    from mlflow.entities import Param, RunTag

    client = _client()
    run = client.create_run(_experiment(client, cell.suite), run_name=cell.key,
                            tags={"xalbench.cell": cell.key, "xalbench.identity_sha256": cell.identity_sha256,
                                  "xalbench.dataset": cell.dataset, "xalbench.method": cell.method,
                                  "xalbench.seed": str(cell.seed)})
    _RUNS[cell.key] = run.info.run_id
    params: dict[str, str] = {}
    _flat("", cell.identity, params)
    client.log_batch(run.info.run_id, params=[Param(k[:250], v) for k, v in sorted(params.items())],
                     tags=[RunTag("xalbench.resumed_rounds", str(cell.resumed_rounds))])


@hookimpl
def round_finished(cell: Any, round: dict[str, Any]) -> None:
    run_id = _RUNS.get(cell.key)
    if run_id is None:
        return
    from mlflow.entities import Metric

    step = int(round["n_labelled"])
    values = _finite(round.get("metrics", {}))
    values.update({f"time.{k}": v for k, v in _finite(round.get("timings", {})).items()})
    _client().log_batch(run_id, metrics=[Metric(k, v, 0, step) for k, v in sorted(values.items())])


@hookimpl
def cell_finished(cell: Any, result: dict[str, Any]) -> None:
    run_id = _RUNS.pop(cell.key, None)
    if run_id is None:
        return
    from mlflow.entities import Metric, RunTag

    client = _client()
    summary = _finite(result.get("summary", {}))
    step = int(result["rounds"][-1]["n_labelled"]) if result.get("rounds") else 0
    client.log_batch(run_id, metrics=[Metric(f"summary.{k}", v, 0, step) for k, v in sorted(summary.items())],
                     tags=[RunTag("xalbench.status", result["status"])])
    client.set_terminated(run_id, status="FINISHED" if result["status"] in ("ok", "skipped") else "FAILED")


@hookimpl
def run_finished(run: Any, results: list[dict[str, Any]]) -> None:
    if tracking_uri() is None or not results:
        return
    from xalbench.report.render import render_report

    client = _client()
    parent = client.create_run(_experiment(client, run.suite), run_name=f"{run.suite} report",
                               tags={"xalbench.suite_hash": run.suite_hash, "xalbench.out_dir": run.out_dir})
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "leaderboard.md"
        path.write_text(render_report(run.out_dir), encoding="utf-8")
        client.log_artifact(parent.info.run_id, str(path))
    client.set_terminated(parent.info.run_id)
