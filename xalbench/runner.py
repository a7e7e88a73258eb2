"""Run a plan: decide finished / resume / run for every cell, then dispatch the rest to an executor.

Cells write their own result files, so a run is idempotent: running the same command again
skips finished cells and resumes unfinished ones from their checkpoints; growing a run (more
seeds, methods, datasets) runs only the new cells.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from xalbench.harness.cellfiles import CellStatus, cell_status
from xalbench.harness.identity import CellSpec
from xalbench.harness.runtime import Runtime
from xalbench.lifecycle import RunInfo
from xalbench.planning import Plan
from xalbench.progress import Progress
from xalbench.results import atomic_write_json, environment
from xalbench.sealing import Sealer

__all__ = ["classify", "run_plan"]


def classify(plan: Plan) -> dict[str, CellStatus]:
    """Every cell's status (damaged files moved aside, superseded ones kept), keyed by cell key."""
    return {c.key: cell_status(c) for c in plan.cells}


def _run_info(plan: Plan, statuses: dict[str, CellStatus]) -> RunInfo:
    out = plan.cells[0].out_dir if plan.cells else ""
    selection = plan.cells[0].selection.as_dict() if plan.cells else {}
    return RunInfo(suite=plan.suite.name, suite_hash=plan.suite.config_hash(), out_dir=out,
                   cells=tuple((c.key, statuses[c.key].status) for c in plan.cells), plugins=selection,
                   suite_spec=plan.suite)


def _write_run_json(plan: Plan, statuses: dict[str, CellStatus]) -> None:
    first = plan.cells[0]
    atomic_write_json(Path(first.out_dir) / "run.json", {
        "suite": dataclasses.asdict(plan.suite),
        "cells": [c.key for c in plan.cells],
        "status": {c.key: statuses[c.key].status for c in plan.cells},
        "skipped_datasets": plan.skipped_datasets,
        "plugins": first.selection.as_dict(),
        "isolation": first.isolation,
        "environment": environment(first.threads, first.device),
    })


def run_plan(plan: Plan, *, workers: int = 1, quiet: bool = False, executor: Any = None,
             statuses: dict[str, CellStatus] | None = None, on_status: Callable[[RunInfo], None] | None = None,
             on_result: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
    """Run every unfinished cell of ``plan``; returns all results in plan order (finished ones read back)."""
    if not plan.cells:
        return []
    runtime = plan.runtime or Runtime(plan.cells[0].selection.registry(), plan.cells[0].selection)
    registry = runtime.registry
    statuses = statuses if statuses is not None else classify(plan)
    info = _run_info(plan, statuses)
    if on_status is not None:
        on_status(info)
    _write_run_json(plan, statuses)
    Sealer.for_results(plan.cells[0].out_dir)  # the results directory's seal key, before any worker needs it
    registry.notify("run_started", run=info)
    if executor is None:
        executor = registry.create("executor", "local")
    todo: list[CellSpec] = [c for c in plan.cells if statuses[c.key].status != "finished"]
    results: dict[str, dict[str, Any]] = {c.key: statuses[c.key].result for c in plan.cells  # type: ignore[misc]
                                          if statuses[c.key].status == "finished"}
    rounds_each = {c.key: c.config.protocol.rounds + 1 for c in todo}
    with Progress(todo, rounds_each, quiet=quiet) as progress:
        for result in executor.run(todo, workers=workers, runtime=runtime):
            results[result["cell"]["key"]] = result
            progress.cell_done(result)
            if on_result:
                on_result(result)
    runtime.close()  # this process's confined cell hosts (workers' hosts go with the workers)
    ordered = [results[c.key] for c in plan.cells if c.key in results]
    registry.notify("run_finished", run=info, results=ordered)
    return ordered
