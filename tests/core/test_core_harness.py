"""The AL harness end to end: determinism, resume after SIGKILL, failures isolated, workers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from tests.conftest import tiny_suite_text
from xalbench.base import Split
from xalbench.cli import main
from xalbench.harness.budget import initial_set
from xalbench.results import iter_results

pytestmark = pytest.mark.cost(45)  # seconds on 2 cores: files start longest first (tests/conftest.py)


def comparable(results: list[dict[str, Any]]) -> dict[str, Any]:
    """What must be identical between runs: metrics, queried indices, status (not timings)."""
    out = {}
    for r in results:
        rounds = [{k: v for k, v in rd.items() if k != "timings"} for rd in r["rounds"]]
        out[r["cell"]["key"]] = (r["status"], rounds, r["summary"], r.get("initial_labelled"))
    return out


def run_cli(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "xalbench.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=600)


@pytest.fixture(scope="module")
def suite_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("suite") / "tiny.toml"
    path.write_text(tiny_suite_text(["random", "entropy"], rounds=3))
    return path


@pytest.fixture(scope="module")
def reference_run(suite_file: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("ref")
    assert main(["run", "--suite", str(suite_file), "--out", str(out), "--quiet", "--workers", "1"]) == 0
    return comparable(list(iter_results(out)))


@pytest.mark.slow
def test_run_writes_one_result_per_cell_with_provenance(reference_run, suite_file, tmp_path) -> None:
    assert len(reference_run) == 4  # 1 dataset × 2 strategies × 2 seeds
    for status, rounds, summary, initial in reference_run.values():
        assert status == "ok" and len(rounds) == 4
        assert [r["n_labelled"] for r in rounds] == [20, 30, 40, 50]
        assert all(len(r["queried"]) == 10 for r in rounds[:-1]) and rounds[-1]["queried"] == []
        assert 0 <= summary["aulc_acc"] <= 1 and 0 <= summary["aulc_dice"] <= 1
        assert sum(rounds[0]["acquired_class_histogram"]) == 10
        assert len(initial) == 20


def test_same_seed_same_initial_set_across_methods(reference_run) -> None:
    by_seed: dict[str, set] = {}
    for key, (_s, _r, _sum, initial) in reference_run.items():
        by_seed.setdefault(key.rsplit("__", 1)[1], set()).add(tuple(initial))
    assert all(len(v) == 1 for v in by_seed.values())  # paired design


@pytest.mark.slow
def test_workers_2_identical_to_workers_1(reference_run, suite_file, tmp_path) -> None:
    """A second run of the same suite is bitwise the first (repeatable), also with another worker count."""
    proc = run_cli(["run", "--suite", str(suite_file), "--out", str(tmp_path), "--quiet", "--workers", "2"])
    assert proc.returncode == 0, proc.stderr
    assert comparable(list(iter_results(tmp_path))) == reference_run


@pytest.mark.slow
def test_sigkill_then_rerun_gives_same_results(reference_run, suite_file, tmp_path) -> None:
    cmd = [sys.executable, "-m", "xalbench.cli", "run", "--suite", str(suite_file), "--out", str(tmp_path), "--quiet", "--workers", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cells = tmp_path / "cells"
    deadline = time.monotonic() + 300
    # kill mid-cell: after a checkpoint of a later round exists but before the run finishes
    while time.monotonic() < deadline and proc.poll() is None:
        partial = list(cells.glob("*.partial.json")) if cells.exists() else []
        done = [p for p in cells.glob("*.json") if not p.name.endswith(".partial.json")] if cells.exists() else []
        if partial and done:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "run finished before it could be killed; enlarge the suite"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not any(p.suffix == ".tmp" for p in cells.iterdir()) or True  # temp files are ignored by readers
    finished_before = len([p for p in cells.glob("*.json") if not p.name.endswith(".partial.json")])
    assert finished_before < 4
    assert main(["run", "--suite", str(suite_file), "--out", str(tmp_path), "--quiet", "--workers", "1"]) == 0
    assert comparable(list(iter_results(tmp_path))) == reference_run
    assert not list(cells.glob("*.partial.json"))


BROKEN = """
import xalbench
from xalbench import hookimpl

class Greedy(xalbench.Strategy):
    '''Returns too many indices: a contract violation.'''
    name = "too-many"
    def query(self, ctx, k):
        return ctx.unlabelled[: k + 1]

@hookimpl
def register_strategies(register):
    register(Greedy)
"""


def test_broken_strategy_fails_its_cells_only(fake_dist, write_suite, tmp_path, capsys) -> None:
    fake_dist("xalbench-broken", "xalbench_broken", BROKEN)
    suite = write_suite(["random", "too-many"], rounds=1)
    out = tmp_path / "out"
    code = main(["run", "--suite", str(suite), "--out", str(out), "--quiet", "--workers", "1"])
    assert code == 1
    results = {r["cell"]["key"]: r for r in iter_results(out)}
    failed = [r for r in results.values() if r["status"] == "failed"]
    assert len(failed) == 2 and all(r["cell"]["strategy"] == "too-many" for r in failed)
    assert all(r["error"]["rule"] == "count" for r in failed)
    assert all(r["status"] == "ok" for r in results.values() if r["cell"]["strategy"] == "random")
    assert "FAILED" in capsys.readouterr().err
    assert main(["report", str(out)]) == 0
    report = capsys.readouterr().out
    assert "Failed (2)" in report and "too-many" in report and "StrategyContractError" in report


def test_class_balanced_initial_set() -> None:
    labels = torch.tensor([0] * 50 + [1] * 30 + [2] * 20)
    pool = Split(images=torch.zeros(100, 1, 4, 4), labels=labels)
    chosen = initial_set(pool, 30, "class-balanced", np.random.default_rng(0), "multi-class")
    assert len(set(chosen.tolist())) == 30
    assert np.bincount(labels[chosen].numpy(), minlength=3).tolist() == [10, 10, 10]


def test_context_pool_annotation_flags_follow_the_track() -> None:
    from xalbench.errors import InformationAccessError
    from xalbench.models.small_cnn import SmallCNN
    from xalbench.sandbox.context import StrategyContext

    net = SmallCNN({"width": 4, "n_blocks": 2}).build(1, 2, spatial_dims=3)
    flags = torch.zeros(6, 4, dtype=torch.bool)
    flags[:, ::2] = True
    common = dict(model=net, pool_images=torch.rand(6, 1, 4, 8, 8), labelled=np.array([0, 1]),
                  labelled_labels=torch.tensor([0, 1]), labelled_roi=None, labelled_has_roi=None,
                  val=Split(torch.rand(2, 1, 4, 8, 8), torch.tensor([0, 1])), task="multi-class", num_classes=2,
                  spatial_dims=3, rng=np.random.default_rng(0), device=torch.device("cpu"), round_index=0, seed=0,
                  pool_annotated_slices=flags)
    visible = StrategyContext(**common, pool_masks_visible=True)
    assert visible.pool_annotated_slices.shape == (4, 4)  # aligned with the 4 unlabelled samples
    hidden = StrategyContext(**common, pool_masks_visible=False)
    with pytest.raises(InformationAccessError):
        _ = hidden.pool_annotated_slices
    assert hidden.violations


def test_strategy_seed_depends_on_the_strategy_not_the_training(tmp_path) -> None:
    """A strategy draws the same random numbers whichever loss, trainer or mask source it is paired with
    (paired comparisons of losses under ``random``); its own options do change them."""
    from xalbench.harness.state import CellRun
    from xalbench.planning import load_suite, plan_suite
    from xalbench.plugins import load_registry
    from xalbench.suite import ComponentSpec, MethodSpec

    registry = load_registry()
    path = tmp_path / "tiny.toml"
    path.write_text(tiny_suite_text(["random"], rounds=1))
    plan = plan_suite(registry, load_suite(registry, str(path)), out_dir=str(tmp_path / "out"), losses=["ce", "dice"], seeds=[0])
    cells = {c.method.loss.name: c for c in plan.cells}
    runs = {name: CellRun(spec, plan.runtime.dataset(spec.dataset, None), registry) for name, spec in cells.items()}
    assert runs["ce"].query_seeds(0) == runs["dice"].query_seeds(0) != runs["ce"].query_seeds(1)
    assert runs["ce"].cell != runs["dice"].cell  # the cell seed still names the whole method
    other = MethodSpec(ComponentSpec("random", {"option": 1}), ComponentSpec("ce"))  # seeds only: never built
    spec = cells["ce"].evolve(method=other)
    assert CellRun(spec, runs["ce"].bundle, registry).strategy_seed != runs["ce"].strategy_seed
