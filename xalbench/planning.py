"""From a suite to cells: expand grids and CLI filters, validate everything, give each cell its identity.

:func:`plan_suite` checks every component name and option by building it (datasets included,
without generating data), the data's availability, budgets against the pool, metric names —
before any cell runs — and raises one :class:`ConfigError` line for the first problem.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from xalbench.base import DatasetBundle
from xalbench.data.names import resolve_dataset_spec
from xalbench.errors import ConfigError, DataNotFoundError
from xalbench.harness.applicability import equivalent_methods
from xalbench.harness.budget import resolve_protocol
from xalbench.harness.config import resolve_cell
from xalbench.harness.identity import CellSpec
from xalbench.harness.runtime import Runtime
from xalbench.harness.sources import SourceHashes
from xalbench.plugins import PluginSelection
from xalbench.registry import Registry
from xalbench.suite import ComponentSpec, MethodSpec, SuiteSource, SuiteSpec
from xalbench.tuning import tuned_methods

__all__ = ["Plan", "expand_methods", "load_suite", "plan_suite", "resolve_dataset_spec"]


@dataclasses.dataclass
class Plan:
    suite: SuiteSpec
    cells: list[CellSpec]
    skipped_datasets: list[tuple[str, str]]
    runtime: Runtime | None = None


def load_suite(registry: Registry, name_or_path: str) -> SuiteSpec:
    """A registered suite by name, or a TOML file path."""
    if name_or_path.endswith(".toml") or Path(name_or_path).is_file():
        if not Path(name_or_path).is_file():
            raise ConfigError(f"suite file {name_or_path} does not exist")
        return SuiteSource(name=Path(name_or_path).stem, path=name_or_path).load()
    return registry.get("suite", name_or_path).load()


def _split_names(values: Sequence[str] | None) -> list[str] | None:
    if values is None:
        return None
    out: list[str] = []
    for v in values:
        out.extend(x.strip() for x in v.split(",") if x.strip())
    if not out:
        raise ConfigError(f"the filter {list(values)!r} names nothing; give comma-separated names")
    return out


def _grid_methods(suite: SuiteSpec, registry: Registry) -> list[MethodSpec]:
    out: list[MethodSpec] = []
    for grid in suite.grids:
        strategies = ([ComponentSpec(n) for n in registry.names("strategy")] if grid.strategies == "*"
                      else list(grid.strategies))
        losses = [ComponentSpec(n) for n in registry.names("loss")] if grid.losses == "*" else list(grid.losses)
        out += [grid.method(s, lo) for s in strategies for lo in losses]
    return out


def expand_methods(suite: SuiteSpec, registry: Registry, strategies: Sequence[str] | None = None,
                   losses: Sequence[str] | None = None) -> list[MethodSpec]:
    """Explicit ``[[methods]]`` plus every grid (``"*"`` resolved against the registry), then the CLI
    filters: ``--strategies`` keeps those strategies and pairs missing ones with every loss the suite
    uses (with its options); ``--losses`` likewise."""
    methods: list[MethodSpec] = []
    seen: set[str] = set()
    for m in [*suite.methods, *_grid_methods(suite, registry)]:
        if m.display not in seen:
            seen.add(m.display)
            methods.append(m)
    want_s, want_l = _split_names(strategies), _split_names(losses)
    if want_s:
        for s in want_s:
            registry.record("strategy", s)  # unknown → did-you-mean error
        loss_specs = list({m.loss.display: m.loss for m in methods}.values()) or [ComponentSpec("ce")]
        have = {m.strategy.name for m in methods}
        methods = [m for m in methods if m.strategy.name in want_s]
        methods += [MethodSpec(ComponentSpec(s), lo) for s in want_s if s not in have for lo in loss_specs]
    if want_l:
        for lo in want_l:
            registry.record("loss", lo)
        known = {m.loss.name: m.loss for m in methods}
        strategy_specs = list({m.strategy.display: m.strategy for m in methods}.values())
        kept = [m for m in methods if m.loss.name in want_l]
        have = {(m.strategy.display, m.loss.name) for m in kept}
        kept += [MethodSpec(s, known.get(lo, ComponentSpec(lo))) for s in strategy_specs for lo in want_l
                 if (s.display, lo) not in have]
        methods = kept
    if not methods:
        raise ConfigError(f"suite {suite.name!r}: the filters leave no method to run")
    return methods


def _check_components(registry: Registry, suite: SuiteSpec, methods: list[MethodSpec]) -> None:
    for kind, spec in (("model", suite.model), ("explainer", suite.explainer)):
        if spec.name:
            registry.create(kind, spec.name, spec.options)
    for name in suite.metrics:
        registry.record("metric", name)
    done: set[tuple[str, str]] = set()
    for m in methods:
        for kind, spec in (("strategy", m.strategy), ("loss", m.loss), ("trainer", m.trainer),
                           ("mask_source", m.mask_source)):
            key = (kind, spec.display)
            if key not in done:
                registry.create(kind, spec.name, spec.options)
                done.add(key)


def _check_budget(suite: SuiteSpec, n_pool: int, dataset: str) -> None:
    overrides = suite.protocol_overrides
    where = f"suite {suite.name!r} [protocol]"
    initial, query = overrides.get("initial"), overrides.get("query_size")
    if isinstance(initial, int) and initial > n_pool:
        raise ConfigError(f"{where}: initial = {initial} exceeds the {n_pool}-sample pool of dataset {dataset!r}; "
                          "use a smaller count or a fraction of the pool")
    if isinstance(query, int) and query > n_pool - (initial if isinstance(initial, int) else 0):
        raise ConfigError(f"{where}: query_size = {query} exceeds what dataset {dataset!r}'s {n_pool}-sample pool "
                          "leaves after the initial set; use a smaller count or a fraction")


def _check_data_root(data_root: str | None, datasets: list[tuple[ComponentSpec, object]]) -> None:
    if data_root is None or Path(data_root).is_dir():
        return
    needing = [spec.display for spec, ds in datasets if not getattr(ds, "synthetic", True) and not spec.optional]
    if needing:
        raise ConfigError(f"--data-root {data_root} does not exist, and dataset(s) {', '.join(needing)} need it; "
                          "pass the folder that holds the real data (see `xalbench data list`)")
    print(f"xalbench: warning: --data-root {data_root} does not exist; optional real datasets are skipped",
          file=sys.stderr)


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
    selection: PluginSelection | None = None,
    isolation: str = "process",
    runtime: Runtime | None = None,
    tune: bool = True,
    tuning_workers: int = 1,
    sources: SourceHashes | None = None,
) -> Plan:
    """Expand a suite into cells, checking every component name, option and budget up front.

    A suite with ``[tuning]`` first runs (or reads from ``<out_dir>/tuning/``) its searches on the
    val split, in ``tuning_workers`` processes; ``tune = False`` (a dry run) never searches. ``sources``
    hashes the code each cell runs (default: the installed packages, read once by this call)."""
    runtime = runtime if runtime is not None else Runtime(registry, selection or PluginSelection())
    selection = runtime.selection
    ds_filter = _split_names(datasets)
    methods = expand_methods(suite, registry, strategies, losses)
    if seeds is not None:
        seeds = list(seeds)
        if not seeds or any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
            raise ConfigError(f"seeds {seeds} must be unique integers ≥ 0 (at least one)")
        suite = dataclasses.replace(suite, seeds=tuple(seeds))
    _check_components(registry, suite, methods)
    protocol = resolve_protocol(registry, suite)
    chosen: list[tuple[ComponentSpec, object]] = []
    for raw in suite.datasets:
        spec = resolve_dataset_spec(raw)
        if ds_filter and raw.name not in ds_filter and spec.display not in ds_filter and spec.name not in ds_filter:
            continue
        chosen.append((spec, registry.create("dataset", spec.name, spec.options)))
    if ds_filter and not chosen:
        names = ", ".join(d.display for d in suite.datasets)
        raise ConfigError(f"suite {suite.name!r} has no dataset matching {ds_filter}; its datasets: {names}")
    _check_data_root(data_root, chosen)
    sources = sources if sources is not None else SourceHashes()
    cells: list[CellSpec] = []
    skipped: list[tuple[str, str]] = []
    suite = dataclasses.replace(suite, methods=tuple(methods), grids=())
    loaded: list[tuple[ComponentSpec, DatasetBundle]] = []
    for spec, dataset in chosen:
        if not dataset.available(data_root):  # type: ignore[attr-defined]
            if spec.optional:
                skipped.append((spec.display, "data not found under the data root; see `xalbench data list`"))
                continue
            dataset.load(data_root)  # type: ignore[attr-defined]  # raises DataNotFoundError with instructions
            raise DataNotFoundError(f"dataset {spec.display!r} is not available")
        try:
            bundle = runtime.dataset(spec, data_root)
        except (ConfigError, DataNotFoundError):
            raise
        except Exception as exc:  # a generator/loader that breaks on these options: say which, before any cell
            raise ConfigError(f"dataset {spec.display!r} (options {spec.options}) failed to load: "
                              f"{type(exc).__name__}: {exc}; check its options with `xalbench plugins show "
                              f"{spec.name}`") from exc
        _check_budget(suite, len(bundle.train), spec.display)
        loaded.append((spec, bundle))
    # [tuning]: searches on the val split (cached under <out>/tuning/) decide each dataset's tuned variants
    variants = tuned_methods(runtime, suite, loaded, methods, out_dir=out_dir, protocol=protocol,
                             threads=threads, device=device, data_root=data_root, run=tune, workers=tuning_workers)
    for spec, bundle in loaded:
        equal = equivalent_methods(registry, [v.method for v in variants[spec.display]], bundle.meta)
        for variant in variants[spec.display]:
            for seed in suite.seeds:
                config = resolve_cell(registry, suite, spec, variant.method, seed, meta=bundle.meta, threads=threads,
                                      device=device, protocol=protocol, sources=sources, tuning=variant.tuning,
                                      equal_to=equal.get(variant.method.display))
                cells.append(CellSpec(config, out_dir, data_root, selection, isolation))
    return Plan(suite, cells, skipped, runtime)


def default_out_dir(suite: SuiteSpec) -> str:
    return os.path.join("results", suite.name)
