"""The machinery every conformance kit shares (scikit-learn's ``check_estimator`` shape).

A kit is a kind (``"loss"``, ``"explainer"``), its base class and a tuple of checks. A check is
a plain function ``check_xxx(component) -> None`` taking a component **class or instance** (an
instance is how non-default options get checked); it returns on success, raises on failure
and raises :class:`SkipCheck` when it does not apply. Checks that apply only to some
components are decorated with :func:`applies_if`, so the generators yield only the applicable
ones (a 2D-only explainer is never handed a 3D check) while a direct call still skips with
the reason.
"""

from __future__ import annotations

import dataclasses
import functools
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Literal

from xalbench.base import Component

__all__ = ["Check", "Kit", "SkipCheck", "applies_if", "check_name", "component_class", "component_id", "fresh",
           "run_checks", "is_applicable", "as_pytest_check"]

Check = Callable[[Any], None]


class SkipCheck(Exception):
    """Raised by a check that does not apply to this component (the reason is the message)."""


def component_class(component: Any) -> type:
    """The class of a component given as class or instance."""
    return component if isinstance(component, type) else type(component)


def fresh(component: Any) -> Any:
    """A new instance with the same options (a class → its defaults)."""
    if isinstance(component, type):
        return component()
    return type(component)(component.options)


def component_id(component: Any) -> str:
    """``name`` for a class or a default instance, ``name[key=value,...]`` for non-default options."""
    cls = component_class(component)
    name = getattr(cls, "name", "") or cls.__name__
    if isinstance(component, type) or not dataclasses.is_dataclass(getattr(component, "options", None)):
        return name
    defaults = cls.Options()
    changed = [f"{f.name}={getattr(component.options, f.name)!r}" for f in dataclasses.fields(component.options)
               if getattr(component.options, f.name) != getattr(defaults, f.name)]
    return f"{name}[{','.join(changed)}]" if changed else name


def applies_if(predicate: Callable[[type], bool], reason: str) -> Callable[[Check], Check]:
    """Mark a check as applicable only when ``predicate(component_class)``; otherwise it skips with
    ``reason`` (formatted with ``kind`` and ``name``) and the generators leave it out."""

    def decorate(check: Check) -> Check:
        @functools.wraps(check)
        def wrapped(component: Any) -> None:
            cls = component_class(component)
            if not predicate(cls):
                raise SkipCheck(reason.format(kind=getattr(cls, "kind", "component"), name=getattr(cls, "name", "")))
            check(component)

        wrapped.applies_to = predicate  # type: ignore[attr-defined]
        return wrapped

    return decorate


def is_applicable(check: Check, component: Any) -> bool:
    predicate = getattr(check, "applies_to", None)
    return True if predicate is None else bool(predicate(component_class(component)))


def check_name(check: Check) -> str:
    return getattr(check, "__name__", getattr(getattr(check, "func", None), "__name__", repr(check)))


def as_pytest_check(check: Check) -> Check:
    """Wrap a check so :class:`SkipCheck` becomes ``pytest.skip``."""

    @functools.wraps(check)
    def wrapped(component: Any) -> None:
        import pytest

        try:
            check(component)
        except SkipCheck as exc:
            pytest.skip(str(exc))

    return wrapped


@dataclasses.dataclass(frozen=True)
class Kit:
    """A conformance kit for one component kind."""

    kind: str
    base: type[Component]
    checks: tuple[Check, ...]
    warning: type[Warning] = UserWarning

    def resolve(self, component: str | type | Component) -> Any:
        """A registered name → its class; classes and instances pass through (type-checked)."""
        if isinstance(component, str):
            from xalbench.plugins import load_registry

            return load_registry().get(self.kind, component)
        if isinstance(component, (type, self.base)):  # a class that is no subclass fails the subclass check
            return component
        raise TypeError(f"expected a {self.kind} class, instance or registered name, got {component!r}")

    def generator(
        self,
        component: str | type | Component,
        *,
        expected_failed_checks: Mapping[str, str] | None = None,
        mark: Literal["xfail", "skip"] | None = None,
    ) -> Iterator[Any]:
        """Yield ``(component, check)`` for every applicable check; with ``mark``, expected failures
        come as marked ``pytest.param``."""
        obj = self.resolve(component)
        expected = dict(expected_failed_checks or {})
        for check in self.checks:
            if not is_applicable(check, obj):
                continue
            name = check_name(check)
            if mark is not None and name in expected:
                import pytest

                marker = (pytest.mark.xfail(reason=expected[name]) if mark == "xfail"
                          else pytest.mark.skip(reason=expected[name]))
                yield pytest.param(obj, check, marks=marker)
            else:
                yield obj, check

    def parametrize(
        self,
        components: Iterable[str | type | Component],
        *,
        expected_failed_checks: Callable[[Any], Mapping[str, str]] | None = None,
    ) -> Any:
        """``pytest.mark.parametrize("<kind>, check", ...)`` over every applicable check of every component."""
        import pytest

        params = []
        for component in components:
            obj = self.resolve(component)
            expected = dict(expected_failed_checks(obj)) if expected_failed_checks else {}
            for item in self.generator(obj, expected_failed_checks=expected, mark="xfail"):
                marks = getattr(item, "marks", ())
                c_obj, check = item.values if marks else item
                params.append(pytest.param(c_obj, as_pytest_check(check), marks=marks,
                                           id=f"{component_id(obj)}-{check_name(check)}"))
        return pytest.mark.parametrize(f"{self.kind}, check", params)

    def run(
        self,
        component: str | type | Component,
        *,
        on_fail: Literal["raise", "warn"] | None = "raise",
        expected_failed_checks: Mapping[str, str] | None = None,
        callback: Callable[..., None] | None = None,
    ) -> list[dict[str, Any]]:
        """Run every applicable check; rows ``{<kind>, check_name, status, exception, expected_to_fail_reason}``.

        ``status`` is ``passed``, ``failed``, ``skipped`` or ``xfail``; ``on_fail="raise"`` re-raises
        the first unexpected failure, ``"warn"`` warns, ``None`` only records it.
        """
        if on_fail not in ("raise", "warn", None):
            raise ValueError(f"on_fail must be 'raise', 'warn' or None, got {on_fail!r}")
        obj = self.resolve(component)
        return run_checks(self.kind, obj, self.generator(obj), on_fail=on_fail, expected=expected_failed_checks,
                          callback=callback, warning=self.warning)


def run_checks(kind: str, obj: Any, checks: Iterable[tuple[Any, Callable[[Any], None]]], *,
               on_fail: Literal["raise", "warn"] | None, expected: Mapping[str, str] | None,
               callback: Callable[..., None] | None, warning: type[Warning]) -> list[dict[str, Any]]:
    """Run ``checks`` on ``obj``; one row ``{<kind>, check_name, status, exception,
    expected_to_fail_reason}`` each (``passed``, ``failed``, ``skipped`` or ``xfail``)."""
    expected = dict(expected or {})
    rows = []
    for _, check in checks:
        name = check_name(check)
        row: dict[str, Any] = {kind: component_id(obj), "check_name": name, "status": "passed",
                               "exception": None, "expected_to_fail_reason": expected.get(name)}
        try:
            check(obj)
        except SkipCheck as exc:
            row.update(status="skipped", exception=exc)
        except Exception as exc:  # noqa: BLE001 - every failure is reported
            row.update(status="xfail" if name in expected else "failed", exception=exc)
        rows.append(row)
        if callback is not None:
            callback(**row)
        if row["status"] == "failed":
            if on_fail == "raise":
                raise row["exception"]
            if on_fail == "warn":
                warnings.warn(f"{row[kind]}: {name} failed: {row['exception']!r}", warning, stacklevel=3)
    return rows
