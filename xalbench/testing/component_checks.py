"""Checks every component kind shares: subclass, slug name, declarations, options, pickling.

Each takes a component class or instance and reads its ``kind`` for the messages, so the
strategy, loss and explainer kits use the very same functions.
"""

from __future__ import annotations

import dataclasses
import pickle
from typing import Any

from xalbench.base import Component
from xalbench.errors import OptionsError
from xalbench.options import Options
from xalbench.registry import SLUG
from xalbench.testing.kit import component_class, fresh

__all__ = ["check_declarations", "check_name_is_slug", "check_options_defaults_and_reject_unknown",
           "check_picklable_component", "check_subclass", "assert_pickles"]


def _label(cls: type) -> str:
    return f"{getattr(cls, 'kind', 'component')} {getattr(cls, 'name', cls.__name__)!r}"


def check_subclass(component: Any, base: type) -> None:
    """The class subclasses ``base`` and leaves no abstract method unimplemented."""
    cls = component_class(component)
    assert issubclass(cls, base), (
        f"{cls!r} must be a subclass of xalbench.{base.__name__} (register the class, not an instance)"
    )
    abstract = sorted(getattr(cls, "__abstractmethods__", ()))
    assert not abstract, f"{cls.__name__} leaves abstract methods unimplemented: {abstract}"


def check_name_is_slug(component: Any) -> None:
    """``name`` is a slug and ``summary`` is one non-empty line; ``paper`` is a string."""
    cls = component_class(component)
    name = getattr(cls, "name", "")
    assert isinstance(name, str) and SLUG.match(name), (
        f"name {name!r} is not a slug: use lower-case letters, digits, '-', '_' or '.'"
    )
    summary = getattr(cls, "summary", "")
    assert isinstance(summary, str) and summary.strip() and "\n" not in summary.strip(), (
        f"{_label(cls)}: set `summary` to one non-empty line"
    )
    assert isinstance(getattr(cls, "paper", ""), str), f"{_label(cls)}: `paper` must be a string ('' if none)"


def _contract(cls: type) -> type:
    """The contract ``cls`` implements: its most basic class that sets ``declarations``."""
    return next((b for b in reversed(cls.__mro__) if b is not Component and "declarations" in vars(b)), cls)


def check_declarations(component: Any) -> None:
    """The kind's declarations (its contract's ``declarations``) have the contract's types: the
    capability flags are booleans."""
    cls = component_class(component)
    contract = _contract(cls)
    for attr in getattr(cls, "declarations", ()):
        value, expected = getattr(cls, attr, None), type(getattr(contract, attr, False))
        what = "True or False" if expected is bool else f"a {expected.__name__}"
        assert isinstance(value, expected), f"{_label(cls)}: {attr} must be {what}, got {value!r}"


def check_options_defaults_and_reject_unknown(component: Any) -> None:
    """``Options`` is a dataclass of ``xalbench.Options`` whose fields all have defaults; the options
    (the instance's own, if given) round-trip through ``to_dict``; unknown keys raise."""
    cls = component_class(component)
    opts = cls.Options
    assert isinstance(opts, type) and issubclass(opts, Options) and dataclasses.is_dataclass(opts), (
        f"{_label(cls)}: declare `@dataclass(frozen=True) class Options(xalbench.Options)`"
    )
    no_default = [
        f.name for f in dataclasses.fields(opts)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    assert not no_default, f"{_label(cls)}: options {no_default} need defaults"
    inst = fresh(component)
    again = cls(inst.options.to_dict())
    assert again.options == inst.options, f"{_label(cls)}: options do not round-trip through to_dict()"
    try:
        cls({"definitely_not_an_option": 1})
    except OptionsError:
        pass
    else:
        raise AssertionError(f"{_label(cls)} accepted an unknown option; build options with Options.parse")


def check_picklable_component(component: Any) -> Any:
    """A fresh instance pickles and unpickles to the same options (cells run in worker processes);
    returns the instance so a kit can use it and pickle it again."""
    cls = component_class(component)
    inst = fresh(component)
    clone = pickle.loads(assert_pickles(inst, _label(cls)))
    assert type(clone) is cls and clone.options == inst.options, f"{_label(cls)}: unpickled copy differs"
    return inst


def assert_pickles(obj: Any, who: str) -> bytes:
    """``pickle.dumps(obj)``, or an AssertionError saying why a worker process could not receive it."""
    try:
        return pickle.dumps(obj)
    except Exception as exc:  # noqa: BLE001 - lambdas, generators, open files, locks ...
        raise AssertionError(f"{who} does not pickle ({type(exc).__name__}: {exc}); cells run in worker "
                             "processes: keep lambdas, generators and open handles out of instance state") from exc
