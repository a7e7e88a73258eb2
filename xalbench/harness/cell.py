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
from collections.abc import Callable
from typing import Any, Protocol

import torch

import xalbench.seeding as seeding
from xalbench.errors import StrategyContractError, XalbenchError
from xalbench.harness.cellfiles import CellFiles, cell_status, read_checkpoint
from xalbench.harness.identity import CellSpec
from xalbench.harness.locks import CellLock
from xalbench.harness.loop import run_rounds
from xalbench.harness.reference import budget_to_95, full_data_reference
from xalbench.harness.runtime import Runtime, for_selection
from xalbench.harness.state import CellRun
from xalbench.harness.summary import result_dict, summarise
from xalbench.lifecycle import CellInfo
from xalbench.results import atomic_write_json, environment
from xalbench.sealing import Sealer

__all__ = ["CellStore", "error_of", "failure", "run_body", "run_cell"]


class CellStore(Protocol):
    """Everything a running cell keeps or shares: its progress (:class:`~xalbench.harness.loop.RoundStore`),
    round 0's model and the full-data reference — on disk (:class:`CellFiles`), or through the worker
    for a confined cell."""

    def resume(self, run: CellRun) -> Any: ...

    def checkpoint(self, run: CellRun, rounds: list[dict[str, Any]], labelled: Any) -> None: ...

    def load_round0(self, digest: str) -> dict[str, Any] | None: ...

    def save_round0(self, digest: str, saved: dict[str, Any]) -> None: ...

    def load_reference(self, name: str, digest: str) -> dict[str, float] | None: ...

    def save_reference(self, name: str, digest: str, record: dict[str, Any]) -> None: ...


def _provenance(spec: CellSpec, run: CellRun, isolation: str) -> dict[str, Any]:
    registry, config = run.registry, spec.config

    def origin(kind: str, name: str) -> dict[str, str]:
        rec = registry.record(kind, name)
        return {"name": name, "distribution": rec.distribution, "version": rec.version}

    m = config.method
    return {
        "components": {kind: origin(kind, name) for kind, name in (
            ("strategy", m.strategy.name), ("loss", m.loss.name), ("trainer", m.trainer.name),
            ("mask_source", m.mask_source.name), ("model", config.model.name), ("dataset", config.dataset.name))},
        "split_hash": run.bundle.split_hash(),
        "suite_hash": config.suite_hash,
        "suite_source": config.suite_source,
        "protocol": dataclasses.asdict(config.protocol),
        "synthetic": run.bundle.meta.synthetic,
        "isolation": isolation,
        "plugins": spec.selection.as_dict(),
        "environment": environment(config.threads, config.device),
    }


def run_body(spec: CellSpec, runtime: Runtime, store: CellStore, open_querier: Callable[[CellRun], Any],
             notify: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """The work of one cell, wherever it runs: in the worker (``process``/``inline``) or in a confined
    child (``confined``, :mod:`xalbench.harness.confined`) — ``store`` keeps its progress, ``open_querier``
    gives the strategy's querier, ``notify`` receives each round's record."""
    if spec.skip_reason:  # resolved when planned
        return result_dict(spec, "skipped", reason=spec.skip_reason, rounds=[], summary={})
    seeding.configure_determinism(spec.threads, torch.device(spec.device))
    registry = runtime.registry
    bundle = runtime.dataset(spec.dataset, spec.data_root)
    from xalbench.sandbox import digest

    before = digest(bundle.train.images, bundle.val.images, bundle.val.labels)
    run = CellRun(spec, bundle, registry, round0=store)
    with open_querier(run) as querier:  # the sandbox boots while round 0 trains
        provenance = _provenance(spec, run, spec.isolation)
        out = run_rounds(run, querier, store, on_round=notify)
        provenance["confinement"] = {"strategy": getattr(querier, "confinement", None), "cell": None}
    if digest(bundle.train.images, bundle.val.images, bundle.val.labels) != before:
        raise StrategyContractError("pool-mutated", "the pool or val data changed during the cell (SHA-256 before "
                                    "and after differ); a component wrote into shared data")
    summary = out["summary"]
    if spec.config.full_data_reference:
        summary.update(budget_to_95(out["rounds"], full_data_reference(run, store), len(bundle.train)))
    return result_dict(spec, "ok", rounds=out["rounds"], summary=summary, provenance=provenance,
                       initial_labelled=out["initial_labelled"])


def _run(spec: CellSpec, runtime: Runtime, info: CellInfo) -> dict[str, Any]:
    if spec.isolation == "confined" and not spec.skip_reason:
        from xalbench.harness.confined import run_confined

        return run_confined(spec, runtime, info)
    return run_body(spec, runtime, CellFiles(spec), lambda run: run.querier(spec.isolation),
                    lambda record: runtime.registry.notify("round_finished", cell=info, round=record))


def error_of(exc: BaseException) -> dict[str, Any]:
    """A cell file's ``error``: type, message, strategy-contract rule, traceback (none for a clear
    configuration or data error)."""
    error = {"type": type(exc).__name__, "message": str(exc), "rule": getattr(exc, "rule", None),
             "traceback": "".join(traceback.format_exception(exc))}
    if isinstance(exc, XalbenchError) and not isinstance(exc, StrategyContractError):
        error["traceback"] = ""
    return error


def failure(spec: CellSpec, error: dict[str, Any]) -> dict[str, Any]:
    """The result of a failed cell: its error and the rounds its last checkpoint holds."""
    partial = read_checkpoint(spec) or {}
    rounds = partial.get("rounds", [])
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
        result = failure(spec, error_of(exc))
    result = Sealer.for_results(spec.out_dir).seal(result)
    atomic_write_json(spec.result_path, result)
    for path in (spec.partial_path, spec.weights_path):
        if path.exists():
            path.unlink()
    if runtime is not None:
        runtime.registry.notify("cell_finished", cell=info, result=result)
    return result
