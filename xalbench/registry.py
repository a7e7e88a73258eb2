"""Named components with provenance; duplicates raise, unknown names suggest.

A :class:`Registry` maps ``(kind, name)`` to a :class:`ComponentRecord` that remembers
the registering distribution (name + version) and plugin module, so ``xalbench plugins``
and every result file can say where each component came from.
"""

from __future__ import annotations

import dataclasses
import re
import warnings
from collections.abc import Iterator
from typing import Any

from xalbench.errors import DuplicateComponentError, PluginError, UnknownComponentError
from xalbench.hookspecs import HOOK_KINDS
from xalbench.options import did_you_mean

__all__ = ["KINDS", "ComponentRecord", "Registry", "SLUG"]

KINDS = tuple(HOOK_KINDS.values())  #: every component kind, in registration order (from the hookspecs)
SLUG = re.compile(r"^[a-z0-9][a-z0-9._+-]*$")


@dataclasses.dataclass(frozen=True)
class ComponentRecord:
    kind: str
    name: str
    obj: Any
    distribution: str
    version: str
    plugin: str

    @property
    def summary(self) -> str:
        text = getattr(self.obj, "summary", "") or (getattr(self.obj, "__doc__", "") or "")
        return text.strip().splitlines()[0] if text.strip() else ""

    @property
    def paper(self) -> str:
        return getattr(self.obj, "paper", "") or ""

    def declared(self) -> dict[str, Any]:
        """The component's capability declarations (its contract's ``declarations``), by name."""
        return {attr: getattr(self.obj, attr) for attr in getattr(self.obj, "declarations", ())}

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "plugin": self.plugin,
            "summary": self.summary,
            "paper": self.paper,
            **self.declared(),
        }


class Registry:
    """All registered components, keyed by kind then name, plus the plugin manager they came
    from (so lifecycle hooks reach the same plugins). Build one per process with
    :func:`xalbench.plugins.load_registry` (or ``PluginSelection.registry()``) and pass it on."""

    def __init__(self, pm: Any = None) -> None:
        self._items: dict[str, dict[str, ComponentRecord]] = {k: {} for k in KINDS}
        self._pm = pm

    def notify(self, hook: str, **kwargs: Any) -> None:
        """Call lifecycle hook ``hook`` on every plugin; a listener that raises is reported as a
        warning naming it and never fails the run."""
        if self._pm is None:
            return
        caller = getattr(self._pm.hook, hook)
        for impl in caller.get_hookimpls():
            try:
                impl.function(**{k: v for k, v in kwargs.items() if k in impl.argnames})
            except Exception as exc:  # noqa: BLE001 - observers never break a run
                warnings.warn(f"plugin {impl.plugin_name} failed in {hook}: {exc!r}", RuntimeWarning, stacklevel=2)

    def add(self, kind: str, name: str, obj: Any, *, distribution: str, version: str, plugin: str) -> None:
        if kind not in self._items:
            raise PluginError(f"unknown component kind {kind!r}; kinds are {', '.join(KINDS)}")
        if not SLUG.match(name):
            raise PluginError(
                f"{kind} name {name!r} from {distribution} {version} is not a slug "
                "(lower-case letters, digits, '-', '_', '.', '+'); rename it in the plugin"
            )
        existing = self._items[kind].get(name)
        if existing is not None:
            raise DuplicateComponentError(
                f"{kind} {name!r} is registered by {existing.distribution} {existing.version} "
                f"(plugin {existing.plugin}) and by {distribution} {version} (plugin {plugin}); "
                f"uninstall one or set XALBENCH_DISABLE_PLUGINS={plugin}"
            )
        self._items[kind][name] = ComponentRecord(kind, name, obj, distribution, version, plugin)

    def names(self, kind: str) -> list[str]:
        return sorted(self._items[kind])

    def record(self, kind: str, name: str) -> ComponentRecord:
        try:
            return self._items[kind][name]
        except KeyError:
            known = self.names(kind)
            hint = did_you_mean(name, known)
            raise UnknownComponentError(
                f"unknown {kind} {name!r}; {hint}known {kind} names: {', '.join(known) or '(none)'}"
            ) from None

    def get(self, kind: str, name: str) -> Any:
        return self.record(kind, name).obj

    def create(self, kind: str, name: str, options: dict[str, Any] | None = None) -> Any:
        """Instantiate a registered component class with validated options."""
        return self.get(kind, name)(options)

    def __iter__(self) -> Iterator[ComponentRecord]:
        for kind in KINDS:
            for name in sorted(self._items[kind]):
                yield self._items[kind][name]

    def __contains__(self, key: tuple[str, str]) -> bool:
        kind, name = key
        return name in self._items.get(kind, {})
