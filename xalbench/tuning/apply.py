"""From a suite's ``[tuning]`` to the methods each dataset's cells run: searches, cache, tuned variants.

:func:`tuned_methods` is what planning calls before it computes cell identities. Per dataset
and method with a non-empty search space it finds the search (one per distinct identity: at
``round = 0`` every strategy paired with the same loss, trainer and mask source shares one
search, because round 0 trains the same model for all of them), reuses its cached record or
runs it (in parallel over searches with ``workers`` > 1), and returns the method list with a
``<method>[tuned]`` variant carrying the chosen values in its options — beside the default
method when ``keep_default`` is true, instead of it otherwise. The variant's ``tuning`` entry
(chosen values, the record's identity hash, sampler and budget) goes into each cell's identity,
so tuned cells are never confused with default ones and a changed search redoes them.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Sequence
from typing import Any

from xalbench.base import DatasetBundle, DatasetMeta
from xalbench.harness.applicability import method_skip_reason
from xalbench.harness.budget import Protocol
from xalbench.harness.config import resolve_cell
from xalbench.harness.identity import identity_hash, training_identity
from xalbench.harness.runtime import Runtime
from xalbench.harness.sources import SourceHashes
from xalbench.suite import ComponentSpec, MethodSpec, SuiteSpec
from xalbench.tuning.cache import read_record
from xalbench.tuning.space import Param, apply_params, method_space
from xalbench.tuning.tuner import TuningJob, run_job, run_job_task

__all__ = ["TUNED_SUFFIX", "Variant", "tuned_methods"]

TUNED_SUFFIX = "[tuned]"


@dataclasses.dataclass(frozen=True)
class Variant:
    """A method to plan cells for, with its tuning entry for the cell identity (``None``: default)."""

    method: MethodSpec
    tuning: dict[str, Any] | None = None


def _job_label(method: MethodSpec, round_index: int) -> str:
    if round_index > 0:
        return method.display
    out = method.loss.display
    if method.trainer.name != "standard" or method.trainer.options:
        out += f"+{method.trainer.display}"
    if method.mask_source.name != "none" or method.mask_source.options:
        out += f"+masks={method.mask_source.display}"
    return out


def _identity(runtime: Runtime, suite: SuiteSpec, dataset: ComponentSpec, method: MethodSpec, params: list[Param],
              *, protocol: Protocol, meta: DatasetMeta, threads: int, device: str,
              sources: SourceHashes) -> dict[str, Any]:
    tuning = suite.tuning
    assert tuning is not None
    full = resolve_cell(runtime.registry, suite, dataset, method, 0, meta=meta, protocol=protocol, threads=threads,
                        device=device, sources=sources).identity()
    if tuning.round == 0:
        base = training_identity(full)
        base["explainer"] = full["explainer"]
    else:
        base = {k: v for k, v in full.items() if k != "evaluation"}
    base.pop("seed", None)
    package, digest = sources.of(runtime.registry.get("metric", tuning.objective))
    return {**base, "kind": "tuning",
            "tuning": {"sampler": tuning.sampler, "budget": tuning.budget, "seeds": list(tuning.seeds),
                       "sampler_seed": tuning.sampler_seed, "round": tuning.round, "objective": tuning.objective,
                       "objective_source": f"{package}:{digest}"},
            "space": {p.key: p.describe() for p in params}}


def _log(message: str) -> None:
    print(f"xalbench: {message}", file=sys.stderr)


def _run_all(jobs: list[TuningJob], runtime: Runtime, workers: int) -> list[dict[str, Any]]:
    if workers <= 1 or len(jobs) <= 1:
        return [run_job(job, runtime) for job in jobs]
    from xalbench.utils.processes import map_in_processes

    return list(map_in_processes(run_job_task, ((j,) for j in jobs), min(workers, len(jobs)), ordered=True))


def tuned_methods(runtime: Runtime, suite: SuiteSpec, datasets: Sequence[tuple[ComponentSpec, DatasetBundle]],
                  methods: Sequence[MethodSpec], *, out_dir: str, protocol: Protocol, threads: int = 1,
                  device: str = "cpu", data_root: str | None = None, run: bool = True, workers: int = 1,
                  log: Callable[[str], None] = _log) -> dict[str, list[Variant]]:
    """Per dataset (display name), the methods to plan cells for (see the module docstring).
    ``run = False`` (a dry run) never searches: an uncached search leaves a ``pending`` variant."""
    tuning = suite.tuning
    if tuning is None:
        return {spec.display: [Variant(m) for m in methods] for spec, _ in datasets}
    registry = runtime.registry
    registry.record("metric", tuning.objective)  # unknown objective → did-you-mean error
    sources = SourceHashes()
    spaces = {m.display: method_space(registry, m, tuning) for m in methods}
    jobs: dict[str, TuningJob] = {}
    plan: dict[str, list[tuple[MethodSpec, str | None, str | None]]] = {}  # dataset → (method, job sha, skip)
    for spec, bundle in datasets:
        rows = plan.setdefault(spec.display, [])
        for m in methods:
            params = spaces[m.display]
            if not params:
                rows.append((m, None, None))
                continue
            skip = method_skip_reason(registry, suite, m, bundle.meta)
            if skip:
                rows.append((m, None, skip))
                continue
            identity = _identity(runtime, suite, spec, m, params, protocol=protocol, meta=bundle.meta,
                                 threads=threads, device=device, sources=sources)
            sha = identity_hash(identity)
            jobs.setdefault(sha, TuningJob(suite, spec, m, _job_label(m, tuning.round), tuple(params), identity,
                                           out_dir, data_root, device, threads, runtime.selection))
            rows.append((m, sha, None))
    records: dict[str, dict[str, Any]] = {}
    todo: list[TuningJob] = []
    for sha, job in jobs.items():
        cached = read_record(job.path, job.identity)
        if cached is not None:
            records[sha] = cached
        else:
            todo.append(job)
    if jobs:
        log(f"tuning: {len(jobs)} search(es) — {len(records)} cached, {len(todo)} to run"
            + ("" if run else " (not run: dry run)")
            + f"; {tuning.budget} trial(s) x {len(tuning.seeds)} tuning seed(s) each, sampler {tuning.sampler}, "
            f"scored by val {tuning.objective} after round {tuning.round}")
    if run and todo:
        for record in _run_all(todo, runtime, workers):
            records[record["identity_sha256"]] = record
            log(f"tuned {record['dataset']} / {record['label']}: {record['chosen']} "
                f"(val {record['objective']} {record['best_value']})")
    out: dict[str, list[Variant]] = {}
    for dataset, rows in plan.items():
        variants: list[Variant] = []
        for m, sha, skip in rows:
            if sha is None and skip is None:
                variants.append(Variant(m))
                continue
            if tuning.keep_default:
                variants.append(Variant(m))
            label = m.display + TUNED_SUFFIX
            if skip is not None:
                variants.append(Variant(dataclasses.replace(m, label=label), {"not_applicable": skip}))
                continue
            assert sha is not None
            record = records.get(sha)
            if record is None:
                variants.append(Variant(dataclasses.replace(m, label=label), {"pending": sha}))
                continue
            tuned = dataclasses.replace(apply_params(m, record["chosen"]), label=label)
            variants.append(Variant(tuned, {"chosen": record["chosen"], "record": sha, "sampler": tuning.sampler,
                                            "budget": tuning.budget, "objective": tuning.objective,
                                            "best_value": record["best_value"]}))
        out[dataset] = variants
    return out
