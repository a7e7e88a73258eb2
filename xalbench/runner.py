"""Plan a suite into cells and run them: sequentially or in local processes (joblib/loky).

Every cell runs with an explicit thread count (``threads``, default 1) whatever the number
of workers, so ``--workers N`` gives results identical to ``--workers 1`` (loky would
otherwise cap BLAS threads at cores/N and change bits). Cells write their own result
files, so a run is idempotent: running the same command again skips finished cells and
resumes unfinished ones from their checkpoints.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from xalbench.errors import ConfigError, DataNotFoundError
from xalbench.harness.cell import CellSpec, run_cell
from xalbench.registry import Registry
from xalbench.results import atomic_write_json, environment
from xalbench.suite import ComponentSpec, MethodSpec, SuiteSpec

__all__ = ["Plan", "plan_suite", "run_plan", "load_suite", "resolve_dataset_spec"]


@dataclasses.dataclass
class Plan:
    suite: SuiteSpec
    cells: list[CellSpec]
    skipped_datasets: list[tuple[str, str]]


def load_suite(registry: Registry, name_or_path: str) -> SuiteSpec:
    """A registered suite by name, or a TOML file path."""
    from xalbench.suite import SuiteSource

    if name_or_path.endswith(".toml") or Path(name_or_path).is_file():
        if not Path(name_or_path).is_file():
            raise ConfigError(f"suite file {name_or_path} does not exist")
        return SuiteSource(name=Path(name_or_path).stem, path=name_or_path).load()
    return registry.get("suite", name_or_path).load()


def resolve_dataset_spec(spec: ComponentSpec) -> ComponentSpec:
    """``medmnist:dermamnist@64`` style references → registered name + options."""
    if ":" not in spec.name:
        return spec
    from xalbench.data.names import parse_dataset_ref

    name, options = parse_dataset_ref(spec.name)
    return ComponentSpec(name, {**options, **spec.options}, spec.label or spec.name, spec.optional)


def _split_names(values: Sequence[str] | None) -> list[str] | None:
    if values is None:
        return None
    out: list[str] = []
    for v in values:
        out.extend(x.strip() for x in v.split(",") if x.strip())
    return out or None


def _methods(suite: SuiteSpec, registry: Registry, strategies: list[str] | None,
             losses: list[str] | None) -> list[MethodSpec]:
    methods = list(suite.methods)  # explicit [[methods]] are always kept
    if suite.wildcard_strategies:
        loss_specs = ([ComponentSpec(n) for n in registry.names("loss")] if suite.wildcard_losses
                      else [ComponentSpec(n) for n in suite.grid_losses] or [ComponentSpec("ce")])
        have = {m.display for m in methods}
        methods += [m for m in (MethodSpec(ComponentSpec(s), loss) for s in registry.names("strategy")
                                for loss in loss_specs) if m.display not in have]
    if strategies:
        known = {m.strategy.name for m in methods}
        suite_losses = sorted({m.loss.name for m in methods}) or ["ce"]
        methods = [m for m in methods if m.strategy.name in strategies]
        for s in strategies:
            if s not in known:
                registry.record("strategy", s)  # unknown → did-you-mean error
                methods.extend(MethodSpec(ComponentSpec(s), ComponentSpec(lo)) for lo in suite_losses)
    if losses:
        for lo in losses:
            registry.record("loss", lo)
        base = {m.strategy.display: m.strategy for m in methods}
        kept = [m for m in methods if m.loss.name in losses]
        have = {(m.strategy.display, m.loss.name) for m in kept}
        for disp, strat in base.items():
            for lo in losses:
                if (disp, lo) not in have:
                    kept.append(MethodSpec(strat, ComponentSpec(lo)))
        methods = kept
    return methods


def plan_suite(
    registry: Registry,
    suite: SuiteSpec,
    *,
    out_dir: str,
    datasets: Sequence[str] | None = None,
    strategies: Sequence[str] | None = None,
    losses: Sequence[str] | None = None,
    seeds: Sequence[int] | None = None,
    device: str = "cpu",
    threads: int = 1,
    data_root: str | None = None,
) -> Plan:
    """Expand a suite into cells, checking every component name and option up front."""
    ds_filter = _split_names(datasets)
    methods = _methods(suite, registry, _split_names(strategies), _split_names(losses))
    if not methods:
        raise ConfigError(f"suite {suite.name!r}: the filters leave no method to run")
    if seeds is not None:
        suite = dataclasses.replace(suite, seeds=tuple(seeds))
    for kind, spec in (("model", suite.model), ("explainer", suite.explainer)):
        registry.create(kind, spec.name, spec.options)
    registry.get("protocol", suite.protocol_base)
    for m in methods:
        registry.create("strategy", m.strategy.name, m.strategy.options)
        registry.create("loss", m.loss.name, m.loss.options)
    chosen: list[ComponentSpec] = []
    skipped: list[tuple[str, str]] = []
    for raw in suite.datasets:
        spec = resolve_dataset_spec(raw)
        if ds_filter and raw.name not in ds_filter and spec.display not in ds_filter and spec.name not in ds_filter:
            continue
        dataset = registry.create("dataset", spec.name, spec.options)
        if not dataset.available(data_root):
            if spec.optional:
                skipped.append((spec.display, "data not found under the data root; see `xalbench data list`"))
                continue
            dataset.load(data_root)  # raises DataNotFoundError with instructions
            raise DataNotFoundError(f"dataset {spec.display!r} is not available")
        chosen.append(spec)
    if ds_filter and not chosen and not skipped:
        names = ", ".join(d.display for d in suite.datasets)
        raise ConfigError(f"suite {suite.name!r} has no dataset matching {ds_filter}; its datasets: {names}")
    suite = dataclasses.replace(suite, methods=tuple(methods), wildcard_strategies=False, wildcard_losses=False)
    cells = [CellSpec(suite, d, m, s, out_dir, device, threads, data_root)
             for d in chosen for m in methods for s in suite.seeds]
    return Plan(suite, cells, skipped)


def _progress(total: int, quiet: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="cell", disable=quiet or not sys.stderr.isatty(), dynamic_ncols=True)


def run_plan(plan: Plan, *, workers: int = 1, quiet: bool = False,
             on_result: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
    """Run every cell; returns their results (finished ones are read back, not rerun)."""
    if not plan.cells:
        return []
    out_dir = Path(plan.cells[0].out_dir)
    atomic_write_json(out_dir / "run.json", {
        "suite": dataclasses.asdict(plan.suite),
        "cells": [c.key for c in plan.cells],
        "skipped_datasets": plan.skipped_datasets,
        "environment": environment(plan.cells[0].threads, plan.cells[0].device),
    })
    results: list[dict[str, Any]] = []
    bar = _progress(len(plan.cells), quiet)
    try:
        for result in _execute(plan.cells, workers):
            results.append(result)
            bar.update(1)
            bar.set_postfix_str(f"{result['cell']['method']} seed {result['cell']['seed']}: {result['status']}")
            if on_result:
                on_result(result)
    finally:
        bar.close()
    order = {c.key: i for i, c in enumerate(plan.cells)}
    return sorted(results, key=lambda r: order.get(r["cell"]["key"], 0))


def _execute(cells: list[CellSpec], workers: int) -> Iterable[dict[str, Any]]:
    if workers <= 1 or len(cells) == 1:
        for cell in cells:
            yield run_cell(cell)
        return
    from joblib import Parallel, delayed

    yield from Parallel(n_jobs=min(workers, len(cells)), backend="loky", return_as="generator_unordered")(
        delayed(run_cell)(cell) for cell in cells
    )
