"""The programmatic entry point: ``xalbench.run(suite, registry=..., out_dir=...)``.

Example — a registry with an extra, uninstalled plugin module::

    import xalbench
    from xalbench.plugins import PluginSelection

    selection = PluginSelection(extra=("my_package.plugin",))   # importable in worker processes too
    results = xalbench.run("smoke", selection=selection, out_dir="runs/smoke", workers=2)

With ``workers = 1`` every cell runs in this process on the registry you pass (``registry=``),
which may hold plugin objects registered by hand; with more workers each worker builds its
registry from ``selection``, so extra plugins must be importable modules listed there.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from typing import Any

from xalbench.harness.runtime import Runtime
from xalbench.planning import Plan, load_suite, plan_suite
from xalbench.plugins import PluginSelection
from xalbench.registry import Registry
from xalbench.runner import run_plan
from xalbench.suite import SuiteSpec

__all__ = ["load_run_suite", "plan_run", "results_dir", "run"]


def load_run_suite(registry: Registry, suite: str | SuiteSpec, protocol: str | None = None) -> SuiteSpec:
    """``suite`` (a registered name, a TOML path or a :class:`SuiteSpec`) as a run takes it: under the
    registered budget protocol ``protocol`` as published (the suite's overrides dropped), if given."""
    spec = load_suite(registry, suite) if isinstance(suite, str) else suite
    if protocol:
        registry.get("protocol", protocol)  # unknown → did-you-mean
        spec = dataclasses.replace(spec, protocol_base=protocol, protocol_overrides={})
    return spec


def results_dir(suite: SuiteSpec, out_dir: str | None = None) -> str:
    """Where a run of ``suite`` writes its results: ``out_dir``, else ``results/<suite name>``."""
    return out_dir or os.path.join("results", suite.name)


def plan_run(runtime: Runtime, suite: str | SuiteSpec, *, out_dir: str | None = None,
             datasets: Sequence[str] | None = None, strategies: Sequence[str] | None = None,
             losses: Sequence[str] | None = None, seeds: Sequence[int] | None = None, device: str = "cpu",
             threads: int = 1, workers: int = 1, data_root: str | None = None, isolation: str = "auto",
             protocol: str | None = None, tune: bool = True,
             choose_seeds: Callable[[Plan], Sequence[int]] | None = None) -> Plan:
    """The plan of a run, made the one way ``xalbench run`` and :func:`run` make it: the suite loaded by
    :func:`load_run_suite`, ``isolation`` resolved (``auto``: ``confined`` where the kernel offers it, else
    ``process``), every cell planned on ``runtime`` (tuning searches in ``workers`` processes unless
    ``tune`` is false). ``choose_seeds`` picks the seeds from a plan of seed 0 that never tunes
    (``--n-seeds auto``) instead of ``seeds``."""
    from xalbench.confinement import resolve_isolation

    spec = load_run_suite(runtime.registry, suite, protocol)
    isolation = resolve_isolation(isolation)

    def plan(seeds: Sequence[int] | None, tune: bool) -> Plan:
        return plan_suite(runtime.registry, spec, out_dir=results_dir(spec, out_dir), datasets=datasets,
                          strategies=strategies, losses=losses, seeds=seeds, device=device, threads=threads,
                          data_root=data_root, isolation=isolation, runtime=runtime, tune=tune,
                          tuning_workers=workers)

    if choose_seeds is not None:
        seeds = list(choose_seeds(plan([0], tune=False)))
    return plan(seeds, tune)


def run(suite: str | SuiteSpec, *, registry: Registry | None = None, selection: PluginSelection | None = None,
        out_dir: str | None = None, datasets: Sequence[str] | None = None, strategies: Sequence[str] | None = None,
        losses: Sequence[str] | None = None, seeds: Sequence[int] | None = None, device: str = "cpu",
        threads: int = 1, workers: int = 1, data_root: str | None = None, isolation: str = "auto",
        executor: str = "local", quiet: bool = True) -> list[dict[str, Any]]:
    """Plan and run ``suite`` (a registered name, a TOML path or a :class:`SuiteSpec`); returns the
    cell results in plan order. Same validation, identities and files as ``xalbench run`` (the same
    :func:`plan_run`); ``isolation`` as ``--isolation`` (``auto``: ``confined`` where the kernel offers
    it, else ``process``)."""
    selection = selection or PluginSelection.from_env()
    runtime = Runtime(registry if registry is not None else selection.registry(), selection)
    plan = plan_run(runtime, suite, out_dir=out_dir, datasets=datasets, strategies=strategies, losses=losses,
                    seeds=seeds, device=device, threads=threads, workers=workers, data_root=data_root,
                    isolation=isolation)
    return run_plan(plan, workers=workers, quiet=quiet, executor=runtime.registry.create("executor", executor))
