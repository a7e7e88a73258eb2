"""One tiny planned suite for every executor test, and its reference results from ``local``.

Cells are planned once per session (planning loads the dataset and hashes sources); each test
points them at its own results directory (``out_dir`` is not part of a cell's identity).
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

HELPERS = Path(__file__).parent / "helpers"

SUITE = """
name = "exec"
seeds = [0, 1]
strategies = ["entropy"]
losses = ["ce"]

[model]
name = "small-cnn"
options = { width = 8, n_blocks = 2 }

[protocol]
base = "aeig"
initial = 16
rounds = 2
query_size = 8

[training]
epochs = 1
batch_size = 16

[[datasets]]
name = "synth-lesion-2d"
options = { size = 32, n_train = 64, n_val = 16, n_test = 32 }
"""


def comparable(results: list[dict[str, Any]]) -> dict[str, Any]:
    """What must be identical between executors: status, metrics, queried indices (not timings)."""
    out = {}
    for r in results:
        rounds = [{k: v for k, v in rd.items() if k != "timings"} for rd in r["rounds"]]
        out[r["cell"]["key"]] = (r["status"], rounds, r["summary"], r.get("initial_labelled"))
    return out


def retarget(cells: list[Any], out_dir: Path) -> list[Any]:
    return [c.evolve(out_dir=str(out_dir)) for c in cells]


@pytest.fixture(scope="session")
def helpers_on_path() -> Iterator[Path]:
    """The helper modules importable here and in worker processes (spawned workers copy sys.path;
    job subprocesses read PYTHONPATH, as SLURM tasks would)."""
    if str(HELPERS) not in sys.path:
        sys.path.insert(0, str(HELPERS))
    before = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(HELPERS), before) if p)
    yield HELPERS
    if before is None:
        os.environ.pop("PYTHONPATH", None)
    else:
        os.environ["PYTHONPATH"] = before


@pytest.fixture(scope="session")
def planned(tmp_path_factory: pytest.TempPathFactory, helpers_on_path: Path) -> Any:
    """The planned cells (2: entropy × seeds 0, 1; 2 rounds) with the preemption listener loaded."""
    from xalbench.harness.runtime import Runtime
    from xalbench.planning import plan_suite
    from xalbench.plugins import PluginSelection
    from xalbench.suite import parse_suite

    selection = PluginSelection(extra=("xalbench_test_preempt",))
    registry = selection.registry()
    suite = parse_suite(SUITE, where="exec")
    return plan_suite(registry, suite, out_dir=str(tmp_path_factory.mktemp("plan")), selection=selection,
                      runtime=Runtime(registry, selection))


@pytest.fixture(scope="session")
def reference(planned: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The ``local`` executor's results (one process) — what every other executor must reproduce."""
    from xalbench.runner import run_plan

    plan = dataclasses.replace(planned, cells=retarget(planned.cells, tmp_path_factory.mktemp("local")))
    results = run_plan(plan, workers=1, quiet=True)
    assert [r["status"] for r in results] == ["ok", "ok"], [r.get("error") for r in results]
    return comparable(results)


def run_with(executor: Any, planned: Any, out_dir: Path, workers: int = 2) -> dict[str, Any]:
    """Run every planned cell with ``executor`` into ``out_dir``; comparable results."""
    from xalbench.runner import run_plan

    plan = dataclasses.replace(planned, cells=retarget(planned.cells, out_dir))
    return comparable(run_plan(plan, workers=workers, quiet=True, executor=executor))
