"""One search: ``budget`` trials of one method's space on one dataset, scored on val.

A :class:`TuningJob` is picklable (no registry, no data), like a cell, so searches run in
worker processes. Each trial evaluates the proposed values once per tuning seed
(:func:`~xalbench.tuning.objective.score_candidate`); its value is the mean over the tuning
seeds. The chosen values are the best trial's; ties (equal means) go to the values nearest the
defaults (:func:`~xalbench.tuning.space.distance_to_default`), then to the earlier trial, so a
default is kept unless another value scores strictly better.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any

import numpy as np

from xalbench.harness.applicability import pool_masks_visible
from xalbench.harness.identity import identity_hash
from xalbench.harness.runtime import Runtime, for_selection
from xalbench.plugins import PluginSelection
from xalbench.suite import ComponentSpec, MethodSpec, SuiteSpec
from xalbench.tuning.cache import record_path, write_record
from xalbench.tuning.objective import score_candidate
from xalbench.tuning.sampler import make_proposer
from xalbench.tuning.space import Param, apply_params, distance_to_default

__all__ = ["TuningJob", "choose", "run_job", "run_job_task"]


@dataclasses.dataclass(frozen=True)
class TuningJob:
    """Everything one search needs (picklable)."""

    suite: SuiteSpec
    dataset: ComponentSpec
    method: MethodSpec  #: the method searched (at round 0: any method with these loss/trainer/mask source)
    label: str  #: file name part: the method, or at round 0 the components that round 0 depends on
    params: tuple[Param, ...]
    identity: dict[str, Any]
    out_dir: str
    data_root: str | None = None
    device: str = "cpu"
    threads: int = 1
    selection: PluginSelection = dataclasses.field(default_factory=PluginSelection)

    @property
    def path(self) -> Any:
        return record_path(self.out_dir, self.dataset.display, self.label)

    @property
    def where(self) -> str:
        return f"{self.dataset.display} / {self.label}"


def choose(trials: list[dict[str, Any]], params: list[Param], direction: str) -> dict[str, Any] | None:
    """The best trial (see the module docstring), or ``None`` when no trial has a finite value."""
    finite = [t for t in trials if t["value"] is not None and math.isfinite(t["value"])]
    if not finite:
        return None
    sign = 1.0 if direction == "max" else -1.0
    best = max(sign * t["value"] for t in finite)
    tied = [t for t in finite if sign * t["value"] >= best - 1e-12]
    return min(tied, key=lambda t: (distance_to_default(params, t["params"]), t["number"]))


def run_job(job: TuningJob, runtime: Runtime) -> dict[str, Any]:
    """Run ``job``'s trials and write its sealed record; returns the record."""
    registry, tuning = runtime.registry, job.suite.tuning
    assert tuning is not None
    t0 = time.perf_counter()
    bundle = runtime.dataset(job.dataset, job.data_root)
    visible = pool_masks_visible(registry, job.suite, job.method, bundle.meta)
    direction = registry.get("metric", tuning.objective).direction
    params = list(job.params)
    proposer = make_proposer(params, tuning, direction, job.where)
    trials: list[dict[str, Any]] = []
    trainings = 0
    for number in range(tuning.budget):
        values = proposer.ask()
        candidate = apply_params(job.method, values)
        scores = []
        for seed in tuning.seeds:
            scores.append(score_candidate(registry, job.suite, job.dataset, bundle, candidate, seed,
                                          round_index=tuning.round, objective=tuning.objective,
                                          pool_masks_visible=visible, device=job.device, threads=job.threads))
            trainings += tuning.round + 1
        finite = [s for s in scores if math.isfinite(s)]
        value = float(np.mean(finite)) if len(finite) == len(scores) else float("nan")
        proposer.tell(value)
        trials.append({"number": number, "params": values, "scores": scores, "value": value})
    best = choose(trials, params, direction)
    record = {
        "schema": 1, "kind": "tuning", "identity": job.identity, "identity_sha256": identity_hash(job.identity),
        "dataset": job.dataset.display, "label": job.label, "method": job.method.display,
        "space": {p.key: p.describe() for p in params}, "sampler": proposer.config, "budget": tuning.budget,
        "seeds": list(tuning.seeds), "round": tuning.round, "objective": tuning.objective, "direction": direction,
        "trials": trials, "n_trials": len(trials), "n_trainings": trainings,
        "chosen": dict(best["params"]) if best else {p.key: p.default for p in params},
        "best_value": best["value"] if best else None, "chosen_trial": best["number"] if best else None,
        "seconds": time.perf_counter() - t0,
    }
    return write_record(job.path, record)


def run_job_task(job: TuningJob) -> dict[str, Any]:
    """:func:`run_job` in a worker process (its registry built from the job's plugin selection)."""
    return run_job(job, for_selection(job.selection))
