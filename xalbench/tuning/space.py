"""Search spaces: which options of a method are tuned, over which values.

A component declares its tunable options and a small space as a class attribute,
``tunable = {"lam": [0.01, 0.1, 1.0]}`` (a list of values; ``{"low", "high", "log"}`` ranges
are for the Optuna samplers only). A suite's ``[tuning.spaces.<component>]`` overrides or adds
a component's space. A method's space is the union over its components, keyed
``<role>.<option>`` (``loss.lam``, ``strategy.lam``, …), in a fixed order.

Only roles that act before the scoring round are tuned: at ``round = 0`` (the initial labelled
set, before any query) the loss and the trainer; from ``round = 1`` on also the strategy and
the mask source. Every value is checked by building the component with it, so a bad space
fails when the suite is planned.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Mapping
from typing import Any

from xalbench.errors import ConfigError, OptionsError
from xalbench.registry import Registry
from xalbench.suite import ComponentSpec, MethodSpec, TuningSpec

__all__ = ["ROLES", "Param", "apply_params", "distance_to_default", "grid_points", "method_space", "roles_for_round"]

#: component roles of a method, in the order their parameters are listed
ROLES: tuple[str, ...] = ("loss", "trainer", "strategy", "mask_source")
_ROUND0_ROLES: tuple[str, ...] = ("loss", "trainer")


def roles_for_round(round_index: int) -> tuple[str, ...]:
    """The roles whose options can change the score after ``round_index``'s training."""
    return _ROUND0_ROLES if round_index == 0 else ROLES


@dataclasses.dataclass(frozen=True)
class Param:
    """One tuned option: ``values`` (a grid) or a ``low``–``high`` range (``log`` scale or not)."""

    role: str
    component: str
    option: str
    default: Any
    values: tuple[Any, ...] = ()
    low: float | None = None
    high: float | None = None
    log: bool = False

    @property
    def key(self) -> str:
        return f"{self.role}.{self.option}"

    def describe(self) -> dict[str, Any]:
        if self.values:
            return {"component": self.component, "values": list(self.values), "default": self.default}
        return {"component": self.component, "low": self.low, "high": self.high, "log": self.log,
                "default": self.default}


def _component(method: MethodSpec, role: str) -> ComponentSpec:
    return getattr(method, role)


def _declared(registry: Registry, role: str, spec: ComponentSpec, tuning: TuningSpec) -> dict[str, Any]:
    cls = registry.get(role, spec.name)
    space = dict(getattr(cls, "tunable", {}) or {})
    space.update(tuning.spaces.get(spec.name, {}))
    return space


def _check_value(registry: Registry, role: str, spec: ComponentSpec, option: str, value: Any) -> None:
    try:
        registry.create(role, spec.name, {**spec.options, option: value})
    except (OptionsError, ConfigError, ValueError, TypeError) as exc:
        raise ConfigError(f"[tuning] {role} {spec.name!r}: value {value!r} of option {option!r} is not valid: {exc}; "
                          "fix its search space (the component's `tunable` or [tuning.spaces])") from exc


def _param(registry: Registry, role: str, spec: ComponentSpec, option: str, space: Any,
           sampler: str) -> Param:
    cls = registry.get(role, spec.name)
    fields = {f.name: f for f in dataclasses.fields(cls.Options)}
    if option not in fields:
        raise ConfigError(f"[tuning] {role} {spec.name!r} has no option {option!r} to tune; "
                          f"its options: {', '.join(fields) or '(none)'}")
    default = spec.options.get(option, cls.Options.parse({}, owner=f"{role} {spec.name!r}").to_dict()[option])
    if isinstance(space, Mapping):
        if sampler == "grid":
            raise ConfigError(f"[tuning] {role} {spec.name!r} option {option!r}: a range needs sampler tpe or random")
        low, high = float(space["low"]), float(space["high"])
        for v in (low, high):
            _check_value(registry, role, spec, option, v)
        return Param(role, spec.name, option, default, low=low, high=high, log=bool(space.get("log", False)))
    values = tuple(space)
    if not values:
        raise ConfigError(f"[tuning] {role} {spec.name!r} option {option!r}: the search space is empty")
    for v in values:
        _check_value(registry, role, spec, option, v)
    return Param(role, spec.name, option, default, values=values)


def method_space(registry: Registry, method: MethodSpec, tuning: TuningSpec) -> list[Param]:
    """The tuned parameters of ``method`` (empty: nothing to tune), checked against the registry."""
    params: list[Param] = []
    for role in roles_for_round(tuning.round):
        spec = _component(method, role)
        for option, space in sorted(_declared(registry, role, spec, tuning).items()):
            params.append(_param(registry, role, spec, option, space, tuning.sampler))
    return params


def grid_points(params: list[Param]) -> list[dict[str, Any]]:
    """Every combination of the parameters' values (product in parameter order)."""
    if any(not p.values for p in params):
        raise ConfigError("[tuning] a grid needs a list of values for every tuned option (ranges need tpe/random)")
    return [dict(zip([p.key for p in params], combo, strict=True)) for combo in itertools.product(*(p.values for p in params))]


def apply_params(method: MethodSpec, params: Mapping[str, Any]) -> MethodSpec:
    """``method`` with ``params`` (``role.option`` → value) merged into its components' options."""
    changes: dict[str, ComponentSpec] = {}
    for key, value in params.items():
        role, option = key.split(".", 1)
        spec = changes.get(role, _component(method, role))
        changes[role] = dataclasses.replace(spec, options={**spec.options, option: value})
    return dataclasses.replace(method, **changes)


def distance_to_default(params: list[Param], values: Mapping[str, Any]) -> float:
    """How far ``values`` lie from the defaults (log distance for positive numbers, 1 per other change):
    the tie-break that keeps a default unless another value scores strictly better."""
    total = 0.0
    for p in params:
        v, d = values[p.key], p.default
        numbers = all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in (v, d))
        if numbers and v > 0 and d > 0:
            total += abs(math.log(v) - math.log(d))
        elif numbers:
            total += abs(v - d)
        else:
            total += 0.0 if v == d else 1.0
    return total
