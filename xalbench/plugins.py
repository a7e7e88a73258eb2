"""Plugin manager factory and registry loading (pluggy's eggsample host pattern).

No module-level manager: :func:`get_plugin_manager` builds a fresh one per call, so tests
and worker processes never share state. Built-in components are *not* special: they are
published through xalbench's own ``xalbench`` entry points, exactly as a third party's.

Environment:
``XALBENCH_DISABLE_PLUGINS=a,b`` blocks the named plugins (entry-point names or
distribution names).
"""

from __future__ import annotations

import importlib.metadata
import os
from collections.abc import Iterable
from typing import Any

import pluggy

from xalbench import hookspecs
from xalbench.errors import PluginError, XalbenchError
from xalbench.registry import Registry

__all__ = ["ENTRY_POINT_GROUP", "HOOK_KINDS", "get_plugin_manager", "load_registry", "disabled_plugins"]

ENTRY_POINT_GROUP = "xalbench"
HOOK_KINDS = {
    "register_strategies": "strategy",
    "register_explainers": "explainer",
    "register_losses": "loss",
    "register_datasets": "dataset",
    "register_models": "model",
    "register_suites": "suite",
    "register_protocols": "protocol",
}


def disabled_plugins(env: dict[str, str] | None = None) -> set[str]:
    raw = (env if env is not None else os.environ).get("XALBENCH_DISABLE_PLUGINS", "")
    return {p.strip() for p in raw.split(",") if p.strip()}


def _blocked_by_distribution(disabled: set[str]) -> set[str]:
    """Entry-point names that belong to a disabled distribution name."""
    names: set[str] = set()
    if not disabled:
        return names
    for dist in importlib.metadata.distributions():
        dist_name = (dist.metadata["Name"] or "").lower()
        if dist_name in {d.lower() for d in disabled}:
            names.update(ep.name for ep in dist.entry_points if ep.group == ENTRY_POINT_GROUP)
    return names


def get_plugin_manager(
    *, load_entrypoints: bool = True, disabled: Iterable[str] | None = None, extra: Iterable[Any] = ()
) -> pluggy.PluginManager:
    """A new manager with xalbench's specs, entry-point plugins and any ``extra`` plugin objects."""
    pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
    pm.add_hookspecs(hookspecs)
    blocked = set(disabled) if disabled is not None else disabled_plugins()
    for name in blocked | _blocked_by_distribution(blocked):
        pm.set_blocked(name)
    if load_entrypoints:
        try:
            pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
        except Exception as exc:  # a broken third-party plugin must say which one
            raise PluginError(
                f"a plugin in entry-point group {ENTRY_POINT_GROUP!r} failed to import: {exc!r}; "
                "reinstall it or block it with XALBENCH_DISABLE_PLUGINS=<name>"
            ) from exc
    for obj in extra:
        pm.register(obj)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"plugin implements an unknown hook: {exc}") from exc
    return pm


def _distribution_of(pm: pluggy.PluginManager) -> dict[int, tuple[str, str]]:
    return {id(plugin): (dist.metadata["Name"], dist.version) for plugin, dist in pm.list_plugin_distinfo()}


def load_registry(pm: pluggy.PluginManager | None = None) -> Registry:
    """Call every plugin's hooks one plugin at a time, recording its distribution."""
    pm = pm if pm is not None else get_plugin_manager()
    dists = _distribution_of(pm)
    registry = Registry()
    for hook_name, kind in HOOK_KINDS.items():
        caller = getattr(pm.hook, hook_name)
        for impl in reversed(caller.get_hookimpls()):  # registration order
            plugin_name = impl.plugin_name
            distribution, version = dists.get(id(impl.plugin), ("(local)", "0"))

            def register(component: Any, /, *, name: str | None = None, _kind: str = kind,
                         _dist: str = distribution, _ver: str = version, _plugin: str = plugin_name) -> None:
                comp_name = name or getattr(component, "name", None)
                if not comp_name:
                    raise PluginError(f"{_kind} registered by {_dist} ({_plugin}) has no name; set its `name`")
                registry.add(_kind, comp_name, component, distribution=_dist, version=_ver, plugin=_plugin)

            kwargs = {arg: register for arg in impl.argnames if arg == "register"}
            try:
                impl.function(**kwargs)
            except XalbenchError:
                raise
            except Exception as exc:
                raise PluginError(
                    f"plugin {plugin_name} ({distribution} {version}) failed in {hook_name}: {exc!r}"
                ) from exc
    return registry
