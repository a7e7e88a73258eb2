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

import os
from collections.abc import Sequence
from typing import Any

from xalbench.harness.runtime import Runtime
from xalbench.planning import load_suite, plan_suite
from xalbench.plugins import PluginSelection
from xalbench.registry import Registry
from xalbench.runner import run_plan
from xalbench.suite import SuiteSpec

__all__ = ["run"]


def run(suite: str | SuiteSpec, *, registry: Registry | None = None, selection: PluginSelection | None = None,
        out_dir: str | None = None, datasets: Sequence[str] | None = None, strategies: Sequence[str] | None = None,
        losses: Sequence[str] | None = None, seeds: Sequence[int] | None = None, device: str = "cpu",
        threads: int = 1, workers: int = 1, data_root: str | None = None, isolation: str = "auto",
        executor: str = "local", quiet: bool = True) -> list[dict[str, Any]]:
    """Plan and run ``suite`` (a registered name, a TOML path or a :class:`SuiteSpec`); returns the
    cell results in plan order. Same validation, identities and files as ``xalbench run``; ``isolation``
    as ``--isolation`` (``auto``: ``confined`` where the kernel offers it, else ``process``)."""
    from xalbench.confinement import resolve_isolation

    isolation = resolve_isolation(isolation)
    selection = selection or PluginSelection.from_env()
    registry = registry if registry is not None else selection.registry()
    runtime = Runtime(registry, selection)
    spec = load_suite(registry, suite) if isinstance(suite, str) else suite
    plan = plan_suite(registry, spec, out_dir=out_dir or os.path.join("results", spec.name), datasets=datasets,
                      strategies=strategies, losses=losses, seeds=seeds, device=device, threads=threads,
                      data_root=data_root, isolation=isolation, runtime=runtime, tuning_workers=workers)
    return run_plan(plan, workers=workers, quiet=quiet, executor=registry.create("executor", executor))
