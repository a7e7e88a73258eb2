"""Typed component options: frozen dataclasses that reject unknown keys.

A component declares ``class Options(xalbench.Options)`` with typed, defaulted fields.
``Options.parse({...}, owner="strategy 'bald'")`` validates keys and types and lists
the valid options in the error, MONAI ``look_up_option`` style.
"""

from __future__ import annotations

import dataclasses
import difflib
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

from xalbench.errors import OptionsError

__all__ = ["Options", "did_you_mean"]

T = TypeVar("T", bound="Options")


def did_you_mean(name: str, known: list[str] | tuple[str, ...]) -> str:
    """``"did you mean 'x'? "`` for the closest known names, or ``""``."""
    close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.5)
    if not close:
        return ""
    return "did you mean " + " or ".join(repr(c) for c in close) + "? "


def _coerce(value: Any, hint: Any, key: str, owner: str) -> Any:
    """Check ``value`` against a simple type hint; int→float is allowed, tuples from lists."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is Any:
        return value
    if origin is typing.Union or (origin is not None and str(origin) == "<class 'types.UnionType'>"):
        errors = []
        for arg in args:
            try:
                return _coerce(value, arg, key, owner)
            except OptionsError as exc:
                errors.append(exc)
        raise OptionsError(f"{owner}: option {key!r} has value {value!r}, expected {hint}")
    if hint is type(None):
        if value is None:
            return None
        raise OptionsError(f"{owner}: option {key!r} must be None")
    if origin is typing.Literal:
        if value in args:
            return value
        raise OptionsError(f"{owner}: option {key!r} is {value!r}; choose one of {list(args)}")
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise OptionsError(f"{owner}: option {key!r} must be a list, got {value!r}")
        inner = args[0] if args else Any
        items = [_coerce(v, inner, key, owner) for v in value]
        return tuple(items) if origin is tuple else items
    if origin is dict or hint is dict:
        if not isinstance(value, Mapping):
            raise OptionsError(f"{owner}: option {key!r} must be a table/dict, got {value!r}")
        return dict(value)
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise OptionsError(f"{owner}: option {key!r} must be a number, got {value!r}")
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise OptionsError(f"{owner}: option {key!r} must be an integer, got {value!r}")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise OptionsError(f"{owner}: option {key!r} must be true or false, got {value!r}")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise OptionsError(f"{owner}: option {key!r} must be a string, got {value!r}")
        return value
    return value


@dataclasses.dataclass(frozen=True)
class Options:
    """Base class of every component's options (no fields: a component with no options)."""

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def parse(cls: type[T], values: Mapping[str, Any] | T | None = None, *, owner: str = "component") -> T:
        """Build validated options; unknown keys → :class:`OptionsError` listing the valid ones."""
        if isinstance(values, cls):
            return values
        values = dict(values or {})
        valid = cls.field_names()
        unknown = [k for k in values if k not in valid]
        if unknown:
            hint = did_you_mean(unknown[0], valid)
            listing = ", ".join(valid) if valid else "(none: this component takes no options)"
            raise OptionsError(f"{owner}: unknown option(s) {unknown}; {hint}valid options are: {listing}")
        hints = typing.get_type_hints(cls)
        coerced = {k: _coerce(v, hints.get(k, Any), k, owner) for k, v in values.items()}
        try:
            opts = cls(**coerced)
        except (TypeError, ValueError) as exc:
            raise OptionsError(f"{owner}: {exc}") from exc
        return opts

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
