"""Run one cell: skip it if finished, resume it from its checkpoint, or run it — and always
leave exactly one sealed result file.

:func:`run_cell` is a pure top-level function of a picklable :class:`CellSpec` (plus, in the
planning process, the :class:`Runtime` to reuse), so every executor — local processes, Dask,
Ray, SLURM — runs it the same way and gets the same bits. A failing plugin fails its own
cell only: the exception becomes the cell's ``error`` (with the rule name for strategy
contract violations) and the other cells go on.
"""

from __future__ import annotations

import dataclasses
import time
import traceback
from typing import Any

import torch

import xalbench.seeding as seeding
from xalbench.errors import StrategyContractError, XalbenchError
from xalbench.harness.applicability import method_skip_reason
from xalbench.harness.cellfiles import CellFiles, cell_status, read_checkpoint
from xalbench.harness.identity import CellSpec
from xalbench.harness.locks import CellLock
from xalbench.harness.loop import run_rounds
from xalbench.harness.reference import budget_to_95, full_data_reference
from xalbench.harness.runtime import Runtime, for_selection
from xalbench.harness.state import CellRun
from xalbench.harness.summary import result_dict, summarise
from xalbench.lifecycle import CellInfo
from xalbench.results import atomic_write_json, environment, seal

__all__ = ["run_cell"]


def _provenance(spec: CellSpec, run: CellRun, isolation: str) -> dict[str, Any]:
    registry, suite = run.registry, spec.suite

    def origin(kind: str, name: str) -> dict[str, str]:
        rec = registry.record(kind, name)
        return {"name": name, "distribution": rec.distribution, "version": rec.version}

    m = spec.method
    return {
        "components": {kind: origin(kind, name) for kind, name in (
            ("strategy", m.strategy.name), ("loss", m.loss.name), ("trainer", m.trainer.name),
            ("mask_source", m.mask_source.name), ("model", suite.model.name), ("dataset", spec.dataset.name))},
        "split_hash": run.bundle.split_hash(),
        "suite_hash": suite.config_hash(),
        "suite_source": suite.source,
        "protocol": dataclasses.asdict(run.protocol),
        "synthetic": run.bundle.meta.synthetic,
        "isolation": isolation,
        "plugins": spec.selection.as_dict(),
        "environment": environment(spec.threads, spec.device),
    }


def _run(spec: CellSpec, runtime: Runtime, info: CellInfo) -> dict[str, Any]:
    seeding.configure_determinism(spec.threads, torch.device(spec.device))
    registry = runtime.registry
    if spec.skip_reason:  # decided when planned
        return result_dict(spec, "skipped", reason=spec.skip_reason, rounds=[], summary={})
    bundle = runtime.dataset(spec.dataset, spec.data_root)
    reason = method_skip_reason(registry, spec.suite, spec.method, bundle.meta)
    if reason:
        return result_dict(spec, "skipped", reason=reason, rounds=[], summary={})
    from xalbench.sandbox import digest

    before = digest(bundle.train.images, bundle.val.images, bundle.val.labels)
    run = CellRun(spec, bundle, registry)
    with run.querier(spec.isolation) as querier:  # the sandbox boots while round 0 trains
        provenance = _provenance(spec, run, spec.isolation)
        out = run_rounds(run, querier, CellFiles(spec),
                         on_round=lambda record: registry.notify("round_finished", cell=info, round=record))
    if digest(bundle.train.images, bundle.val.images, bundle.val.labels) != before:
        raise StrategyContractError("pool-mutated", "the pool or val data changed during the cell (SHA-256 before "
                                    "and after differ); a component wrote into shared data")
    summary = out["summary"]
    if spec.suite.full_data_reference:
        summary.update(budget_to_95(out["rounds"], full_data_reference(run), len(bundle.train)))
    return result_dict(spec, "ok", rounds=out["rounds"], summary=summary, provenance=provenance,
                       initial_labelled=out["initial_labelled"])


def _failure(spec: CellSpec, exc: Exception) -> dict[str, Any]:
    partial = read_checkpoint(spec) or {}
    rounds = partial.get("rounds", [])
    error = {"type": type(exc).__name__, "message": str(exc), "rule": getattr(exc, "rule", None),
             "traceback": traceback.format_exc()}
    if isinstance(exc, XalbenchError) and not isinstance(exc, StrategyContractError):
        error["traceback"] = ""
    return result_dict(spec, "failed", error=error, rounds=rounds, summary=summarise(rounds),
                       provenance={"environment": environment(spec.threads, spec.device)})


def run_cell(spec: CellSpec, runtime: Runtime | None = None, *, poll_seconds: float = 2.0) -> dict[str, Any]:
    """Run (or resume, or skip if finished) one cell; always returns its sealed result dict.

    The cell is claimed with a lock file first; if another worker (or cluster) holds it, this
    one waits for that claimant's result instead of running the cell twice."""
    status = cell_status(spec)
    if status.status == "finished":
        assert status.result is not None
        return status.result
    lock = CellLock(spec.lock_path)
    while not lock.try_acquire():
        time.sleep(poll_seconds)
        waiting = cell_status(spec, retire=False)
        if waiting.status == "finished":
            assert waiting.result is not None
            return waiting.result
    with lock:
        status = cell_status(spec)  # someone may have finished it between our check and the claim
        if status.status == "finished":
            assert status.result is not None
            return status.result
        return _claimed(spec, runtime, status.rounds_done)


def _claimed(spec: CellSpec, runtime: Runtime | None, rounds_done: int) -> dict[str, Any]:
    info = CellInfo.of(spec, rounds_done)
    try:
        runtime = runtime if runtime is not None else for_selection(spec.selection)
        runtime.registry.notify("cell_started", cell=info)
        result = _run(spec, runtime, info)
    except Exception as exc:  # a failing plugin fails its own cell only
        result = _failure(spec, exc)
    result = seal(result)
    atomic_write_json(spec.result_path, result)
    for path in (spec.partial_path, spec.weights_path):
        if path.exists():
            path.unlink()
    if runtime is not None:
        runtime.registry.notify("cell_finished", cell=info, result=result)
    return result
