"""What a process needs to run cells: one registry (from one plugin selection) and its loaded datasets.

The CLI and :func:`xalbench.api.run` build a :class:`Runtime` once and pass it to every cell
they run in their own process. Worker processes (loky, Dask, SLURM tasks) receive the
picklable :class:`~xalbench.plugins.PluginSelection` instead and call :func:`for_selection`,
which builds the runtime once per process and reuses it for later cells — the role of a
pool initializer, for executors that have none. The key includes the installed plugin
distributions, so a process never reuses a registry built before a plugin was installed.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import sys
from collections.abc import Callable
from typing import Any

from xalbench.base import DatasetBundle
from xalbench.plugins import ENTRY_POINT_GROUP, PluginSelection
from xalbench.registry import Registry
from xalbench.suite import ComponentSpec

__all__ = ["Runtime", "for_selection", "installed_plugins"]


def installed_plugins() -> tuple[tuple[str, str], ...]:
    """(distribution, version) of every installed distribution with ``xalbench`` entry points."""
    out = set()
    for dist in importlib.metadata.distributions():
        if any(ep.group == ENTRY_POINT_GROUP for ep in dist.entry_points):
            out.add((dist.metadata["Name"] or "", dist.version))
    return tuple(sorted(out))


@dataclasses.dataclass
class Runtime:
    """A registry plus this process's loaded datasets (keyed by name, options and data root)."""

    registry: Registry
    selection: PluginSelection = dataclasses.field(default_factory=PluginSelection)
    _datasets: dict[tuple[str, str, str | None], DatasetBundle] = dataclasses.field(default_factory=dict, repr=False)
    _services: dict[str, Any] = dataclasses.field(default_factory=dict, repr=False)

    @classmethod
    def from_selection(cls, selection: PluginSelection) -> Runtime:
        return cls(selection.registry(), selection)

    def dataset(self, spec: ComponentSpec, data_root: str | None) -> DatasetBundle:
        """Load (once per process) the dataset a cell names."""
        key = (spec.name, json.dumps(spec.options, sort_keys=True, default=str), data_root)
        if key not in self._datasets:
            if len(self._datasets) >= 8:  # bounded: a worker runs cells of a few datasets at a time
                self._datasets.pop(next(iter(self._datasets)))
            self._datasets[key] = self.registry.create("dataset", spec.name, spec.options).load(data_root)
        return self._datasets[key]

    def service(self, name: str, factory: Callable[[], Any]) -> Any:
        """A process-lifetime helper this runtime owns (built on first use), e.g. the confined cell hosts."""
        if name not in self._services:
            self._services[name] = factory()
        return self._services[name]

    def close(self) -> None:
        """Stop the helpers this runtime started (their processes); the runtime stays usable."""
        services, self._services = self._services, {}
        for service in services.values():
            service.close()


_PROCESS_RUNTIMES: dict[tuple[Any, ...], Runtime] = {}


def for_selection(selection: PluginSelection) -> Runtime:
    """This process's runtime for ``selection`` (built on first use, then reused)."""
    key = (selection, installed_plugins(), tuple(sys.path))
    runtime = _PROCESS_RUNTIMES.get(key)
    if runtime is None:
        for stale in _PROCESS_RUNTIMES.values():
            stale.close()
        _PROCESS_RUNTIMES.clear()
        runtime = _PROCESS_RUNTIMES[key] = Runtime.from_selection(selection)
    return runtime
