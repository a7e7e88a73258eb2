"""Conformance kit for strategy plugins, modelled on scikit-learn's estimator checks.

Three entry points (scikit-learn names, ``estimator`` → ``strategy``)::

    from xalbench.testing import check_strategy, parametrize_with_checks

    check_strategy("my-strategy")                  # raises on the first failed check
    rows = check_strategy(MyStrategy, on_fail=None)  # [{check_name, status, exception}, ...]
    check_strategy(MyStrategy({"beta": 2.0}))        # an instance: its non-default options are checked

    @parametrize_with_checks([MyStrategy])
    def test_conformance(strategy, check):
        check(strategy)

Only the checks that apply are yielded and run (no 3D check for a strategy that declares
``supports_3d = False``, no scores check for one that only overrides ``query``).
``run_check_plugin(name_or_distribution)`` runs the kit on installed components (the
``xalbench check-plugin`` command). Queries run in sandbox processes, as in a real run, and
are killed after ``time_limit`` seconds (``check_strategy(..., time_limit=5)``; default
:data:`TIME_LIMIT`); the leak checks (:mod:`xalbench.testing.leak_checks`) fail strategies
that try to read hidden data or change what they must not. Losses and explainers have their own
kits: :func:`check_loss` / :func:`parametrize_with_loss_checks` (:mod:`xalbench.testing.loss_checks`)
and :func:`check_explainer` / :func:`parametrize_with_explainer_checks`
(:mod:`xalbench.testing.explainer_checks`). The checks themselves are in
:mod:`xalbench.testing.checks`; tiny contexts in :mod:`xalbench.testing.contexts`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Literal

from xalbench.base import Strategy
from xalbench.errors import UnknownComponentError
from xalbench.sandbox.client import preload
from xalbench.testing.checks import ALL_CHECKS, TIME_LIMIT, SkipCheck
from xalbench.testing.contexts import KitRound, make_context, make_round
from xalbench.testing.explainer_checks import (
    EXPLAINER_CHECKS,
    check_explainer,
    explainer_checks_generator,
    parametrize_with_explainer_checks,
)
from xalbench.testing.kit import as_pytest_check, check_name, component_id, is_applicable, run_checks
from xalbench.testing.leak_checks import LEAK_CHECKS, using_time_limit
from xalbench.testing.loss_checks import (
    LOSS_CHECKS,
    check_loss,
    loss_checks_generator,
    parametrize_with_loss_checks,
)

__all__ = [
    "ALL_CHECKS",
    "EXPLAINER_CHECKS",
    "LEAK_CHECKS",
    "LOSS_CHECKS",
    "SkipCheck",
    "StrategyCheckFailedWarning",
    "TIME_LIMIT",
    "check_explainer",
    "check_loss",
    "check_strategy",
    "explainer_checks_generator",
    "loss_checks_generator",
    "KitRound",
    "make_context",
    "make_round",
    "parametrize_with_checks",
    "parametrize_with_explainer_checks",
    "parametrize_with_loss_checks",
    "run_check_components",
    "run_check_plugin",
    "strategy_checks_generator",
    "using_time_limit",
]

StrategyLike = str | type[Strategy] | Strategy
Check = Callable[[type[Strategy] | Strategy], None]


class StrategyCheckFailedWarning(UserWarning):
    """Emitted by ``check_strategy(..., on_fail="warn")`` for each failed check."""


def _resolve(strategy: StrategyLike) -> type[Strategy] | Strategy:
    """A registered name → its class; classes and instances (non-default options) pass through."""
    if isinstance(strategy, str):
        from xalbench.plugins import load_registry

        strategy = load_registry().get("strategy", strategy)
    if not isinstance(strategy, (type, Strategy)):
        raise TypeError(f"expected a strategy class, instance or registered name, got {strategy!r}")
    preload(getattr(strategy, "__module__", ""))  # its sandboxes start warm (if the fork server is not up yet)
    return strategy


_check_name = check_name


def strategy_checks_generator(
    strategy: StrategyLike,
    *,
    expected_failed_checks: Mapping[str, str] | None = None,
    mark: Literal["xfail", "skip"] | None = None,
) -> Iterator[tuple[type[Strategy] | Strategy, Check] | Any]:
    """Yield ``(strategy, check)`` for every applicable check; with ``mark``, expected failures become
    marked ``pytest.param``."""
    cls = _resolve(strategy)
    expected = dict(expected_failed_checks or {})
    for check in ALL_CHECKS:
        if not is_applicable(check, cls):
            continue
        name = _check_name(check)
        if mark is not None and name in expected:
            import pytest

            marker = pytest.mark.xfail(reason=expected[name]) if mark == "xfail" else pytest.mark.skip(
                reason=expected[name])
            yield pytest.param(cls, check, marks=marker)
        else:
            yield cls, check


def parametrize_with_checks(
    strategies: Iterable[StrategyLike],
    *,
    expected_failed_checks: Callable[[type[Strategy] | Strategy], Mapping[str, str]] | None = None,
) -> Any:
    """``pytest.mark.parametrize("strategy, check", ...)`` over every check of every strategy."""
    import pytest

    params = []
    for strategy in strategies:
        cls = _resolve(strategy)
        expected = dict(expected_failed_checks(cls)) if expected_failed_checks else {}
        for item in strategy_checks_generator(cls, expected_failed_checks=expected, mark="xfail"):
            if not hasattr(item, "marks"):
                s_cls, check = item
                params.append(pytest.param(s_cls, as_pytest_check(check), id=f"{component_id(cls)}-{_check_name(check)}"))
            else:  # already a marked pytest.param
                s_cls, check = item.values
                params.append(pytest.param(s_cls, as_pytest_check(check), marks=item.marks,
                                           id=f"{component_id(cls)}-{_check_name(check)}"))
    return pytest.mark.parametrize("strategy, check", params)


def check_strategy(
    strategy: StrategyLike,
    *,
    on_fail: Literal["raise", "warn"] | None = "raise",
    expected_failed_checks: Mapping[str, str] | None = None,
    callback: Callable[..., None] | None = None,
    time_limit: float | None = None,
) -> list[dict[str, Any]]:
    """Run every applicable check on a strategy (registered name, class or instance); return
    ``[{strategy, check_name, status, exception, expected_to_fail_reason}]``.

    ``status`` is ``passed``, ``failed``, ``skipped`` or ``xfail``. ``on_fail="raise"``
    re-raises the first unexpected failure, ``"warn"`` emits
    :class:`StrategyCheckFailedWarning`, ``None`` only records it. ``time_limit``: seconds
    per query (default :data:`TIME_LIMIT`).
    """
    with using_time_limit(time_limit):
        return _check_strategy(strategy, on_fail=on_fail, expected_failed_checks=expected_failed_checks,
                               callback=callback)


def _check_strategy(
    strategy: str | type[Strategy],
    *,
    on_fail: Literal["raise", "warn"] | None,
    expected_failed_checks: Mapping[str, str] | None,
    callback: Callable[..., None] | None,
) -> list[dict[str, Any]]:
    if on_fail not in ("raise", "warn", None):
        raise ValueError(f"on_fail must be 'raise', 'warn' or None, got {on_fail!r}")
    cls = _resolve(strategy)
    return run_checks("strategy", cls, strategy_checks_generator(cls), on_fail=on_fail,
                      expected=expected_failed_checks, callback=callback, warning=StrategyCheckFailedWarning)


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def run_check_plugin(name_or_distribution: str, *, time_limit: float | None = None) -> tuple[list[dict[str, Any]], bool]:
    """Run the kit on a registered strategy name, or on every strategy a distribution registered
    (``time_limit``: seconds per query, the ``check-plugin --timeout`` option).

    Returns table rows ``{strategy, distribution, version, check_name, status, exception}``
    (exception as one-line text) and ``ok`` (no check failed).
    """
    from xalbench.plugins import load_registry

    registry = load_registry()
    records = [r for r in registry if r.kind == "strategy"]
    chosen = [r for r in records if r.name == name_or_distribution]
    if not chosen:
        chosen = [r for r in records if _norm(r.distribution) == _norm(name_or_distribution)]
    if not chosen:
        dists = sorted({r.distribution for r in records})
        raise UnknownComponentError(
            f"{name_or_distribution!r} is neither a registered strategy nor a distribution that registers "
            f"strategies; strategies: {', '.join(r.name for r in records)}; distributions: {', '.join(dists)}"
        )
    preload(*(getattr(r.obj, "__module__", "") for r in chosen))
    rows: list[dict[str, Any]] = []
    for record in chosen:
        for row in check_strategy(record.obj, on_fail=None, time_limit=time_limit):
            exc = row["exception"]
            rows.append({
                "strategy": record.name,
                "distribution": record.distribution,
                "version": record.version,
                "check_name": row["check_name"],
                "status": row["status"],
                "exception": "" if exc is None else f"{type(exc).__name__}: {exc}".splitlines()[0],
            })
    return rows, not any(r["status"] == "failed" for r in rows)


def run_check_components(name_or_distribution: str, kinds: tuple[str, ...] = ("loss", "explainer")) -> list[dict[str, Any]]:
    """Run the loss and explainer kits on a registered loss/explainer name, or on every loss and
    explainer a distribution registered; rows ``{kind, component, distribution, version, check_name,
    status, exception}`` (``[]`` when the name matches none)."""
    from xalbench.plugins import load_registry
    from xalbench.testing.explainer_checks import check_explainer
    from xalbench.testing.loss_checks import check_loss

    registry = load_registry()
    records = [r for r in registry if r.kind in kinds]
    chosen = [r for r in records if r.name == name_or_distribution]
    if not chosen:
        chosen = [r for r in records if _norm(r.distribution) == _norm(name_or_distribution)]
    runners = {"loss": check_loss, "explainer": check_explainer}
    rows: list[dict[str, Any]] = []
    for record in chosen:
        for row in runners[record.kind](record.obj, on_fail=None):
            exc = row["exception"]
            rows.append({"kind": record.kind, "component": record.name, "distribution": record.distribution,
                         "version": record.version, "check_name": row["check_name"], "status": row["status"],
                         "exception": "" if exc is None else f"{type(exc).__name__}: {exc}".splitlines()[0]})
    return rows
