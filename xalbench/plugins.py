"""Plugin manager factory, plugin selection and registry loading (pluggy's eggsample host pattern).

No module-level manager: :func:`get_plugin_manager` builds a fresh one per call. What a run
loads is a :class:`PluginSelection` — a small, picklable value (allow-list, block-list,
extra plugin modules) that the CLI or API builds once, records in every result, and hands
to worker processes and strategy sandboxes so they build *the same* registry.

Environment (read only by :meth:`PluginSelection.from_env`, i.e. by the CLI and the API):

* ``XALBENCH_PLUGINS=a,b`` — load exactly these plugins (entry-point or distribution
  names); xalbench's own built-ins are always loaded unless blocked. Reproduces a
  leaderboard entry with exactly the plugins it used.
* ``XALBENCH_DISABLE_PLUGINS=a,b`` — block the named plugins.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.metadata
import os
from collections.abc import Iterable, Mapping
from typing import Any

import pluggy

from xalbench import hookspecs
from xalbench.errors import PluginError, XalbenchError
from xalbench.registry import Registry

__all__ = [
    "ENTRY_POINT_GROUP",
    "HOOK_KINDS",
    "LIFECYCLE_HOOKS",
    "PluginSelection",
    "disabled_plugins",
    "get_plugin_manager",
    "load_registry",
]

ENTRY_POINT_GROUP = "xalbench"
CORE_DISTRIBUTION = "xalbench"
HOOK_KINDS = hookspecs.HOOK_KINDS
LIFECYCLE_HOOKS = ("run_started", "cell_started", "round_finished", "cell_finished", "run_finished")


def _names(raw: str | None) -> tuple[str, ...]:
    return tuple(sorted({p.strip() for p in (raw or "").split(",") if p.strip()}))


def disabled_plugins(env: Mapping[str, str] | None = None) -> set[str]:
    return set(_names((env if env is not None else os.environ).get("XALBENCH_DISABLE_PLUGINS")))


def _norm(name: str) -> str:
    return name.lower().replace("_", "-")


@dataclasses.dataclass(frozen=True)
class PluginSelection:
    """Which plugins a run loads: picklable, hashable, recorded in results.

    ``allow`` (``None`` = every installed plugin) and ``block`` hold entry-point or
    distribution names; ``extra`` are importable module names registered as plugins in
    addition (how a programmatic user adds plugins that are not installed as distributions).
    """

    allow: tuple[str, ...] | None = None
    block: tuple[str, ...] = ()
    extra: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, extra: Iterable[str] = ()) -> PluginSelection:
        env = env if env is not None else os.environ
        allow = _names(env.get("XALBENCH_PLUGINS")) or None
        return cls(allow=allow, block=_names(env.get("XALBENCH_DISABLE_PLUGINS")), extra=tuple(extra))

    def as_dict(self) -> dict[str, Any]:
        return {"allow": None if self.allow is None else list(self.allow), "block": list(self.block),
                "extra": list(self.extra)}

    def blocked_entry_points(self) -> set[str]:
        """Entry-point names to block: the block-list (by entry-point or distribution name) and,
        with an allow-list, every third-party plugin not on it."""
        names: set[str] = set(self.block)
        if self.allow is None and not self.block:
            return names
        block = {_norm(b) for b in self.block}
        allow = None if self.allow is None else {_norm(a) for a in self.allow}
        for dist in importlib.metadata.distributions():  # every copy, as pluggy loads them
            ours = [ep for ep in dist.entry_points if ep.group == ENTRY_POINT_GROUP]
            if not ours:  # read a distribution's metadata only when it has plugins (parsing all costs ~50 ms)
                continue
            dist_name = _norm(dist.metadata["Name"] or "")
            for ep in ours:
                ep_name = _norm(ep.name)
                if dist_name in block or ep_name in block:
                    names.add(ep.name)
                elif allow is not None and dist_name != CORE_DISTRIBUTION and not ({dist_name, ep_name} & allow):
                    names.add(ep.name)
        return names

    def plugin_manager(self) -> pluggy.PluginManager:
        modules = [importlib.import_module(name) for name in self.extra]
        return get_plugin_manager(disabled=self.blocked_entry_points(), extra=modules)

    def registry(self) -> Registry:
        return load_registry(self.plugin_manager())


def get_plugin_manager(
    *, load_entrypoints: bool = True, disabled: Iterable[str] | None = None, extra: Iterable[Any] = ()
) -> pluggy.PluginManager:
    """A new manager with xalbench's specs, entry-point plugins and any ``extra`` plugin objects."""
    pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
    pm.add_hookspecs(hookspecs)
    blocked = set(disabled) if disabled is not None else PluginSelection.from_env().blocked_entry_points()
    for name in blocked:
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
    """Call every plugin's registration hooks one plugin at a time, recording its distribution.

    The registry keeps the plugin manager (``registry.hook``) so lifecycle hooks reach the
    same plugins."""
    pm = pm if pm is not None else get_plugin_manager()
    dists = _distribution_of(pm)
    registry = Registry(pm)
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
