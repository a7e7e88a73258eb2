"""The conformance kit reports what a plugin author needs, and the template passes it."""

from __future__ import annotations

import random
import warnings
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import ClassVar

import numpy as np
import pytest
import torch

from xalbench import Options, Strategy
from xalbench.errors import UnknownComponentError
from xalbench.plugins import load_registry
from xalbench.testing import (
    ALL_CHECKS,
    StrategyCheckFailedWarning,
    check_strategy,
    make_round,
    parametrize_with_checks,
    run_check_plugin,
    strategy_checks_generator,
)
from xalbench.testing.checks import SkipCheck, check_3d, check_is_strategy_subclass, check_scores_finite_and_aligned
from xalbench.testing.kit import is_applicable, run_checks
from xalbench.testing.leak_checks import sandboxed_query

pytestmark = pytest.mark.cost(30)  # seconds on 2 cores: files start longest first (tests/conftest.py)


class _Base(Strategy):
    summary: ClassVar[str] = "test strategy"
    supports_multilabel: ClassVar[bool] = True

    @dataclass(frozen=True)
    class Options(Options):
        pass

    def query(self, ctx, k):
        return ctx.unlabelled[: min(k, len(ctx.unlabelled))]


class Fine(_Base):
    name: ClassVar[str] = "fine"


class Unseeded(_Base):
    name: ClassVar[str] = "unseeded"

    def query(self, ctx, k):  # global randomness instead of ctx.rng
        return np.asarray(random.sample(list(ctx.unlabelled), min(k, len(ctx.unlabelled))))


class Unpicklable(_Base):
    name: ClassVar[str] = "unpicklable"

    def __init__(self, options=None):
        super().__init__(options)
        self.callback = lambda x: x


class BadName(_Base):
    name: ClassVar[str] = "Bad Name"


class NoDefault(_Base):
    name: ClassVar[str] = "no-default"

    @dataclass(frozen=True)
    class Options(Options):
        width: int


class LiesAbout3D(_Base):
    name: ClassVar[str] = "lies-3d"
    supports_3d: ClassVar[bool] = True

    def query(self, ctx, k):
        if ctx.spatial_dims == 3:
            raise ValueError("2D only, really")
        return super().query(ctx, k)


class TruncatesAtPool(_Base):
    name: ClassVar[str] = "truncates"

    def query(self, ctx, k):
        return ctx.unlabelled[: min(k, len(ctx.unlabelled) - 1)]


class ScoresOnly(Strategy):
    name: ClassVar[str] = "scores-only"
    summary: ClassVar[str] = "test strategy: lowest mean pixel first, through the default top-k query"

    @dataclass(frozen=True)
    class Options(Options):
        sign: float = -1.0

    def scores(self, ctx):
        return self.options.sign * ctx.unlabelled_images.flatten(1).mean(1)


class NaNScores(ScoresOnly):
    name: ClassVar[str] = "nan-scores"

    def scores(self, ctx):
        out = super().scores(ctx).clone()
        out[0] = float("nan")
        return out


class MisalignedScores(ScoresOnly):
    name: ClassVar[str] = "misaligned-scores"

    def scores(self, ctx):  # scored the whole pool instead of ctx.unlabelled
        return ctx.pool_images.flatten(1).mean(1)


class Neither(Strategy):
    name: ClassVar[str] = "neither"
    summary: ClassVar[str] = "implements neither scores nor query"


def _status(rows):
    return {r["check_name"]: r["status"] for r in rows}


def test_fine_strategy_passes_every_check():
    rows = check_strategy(Fine, on_fail=None)
    assert [r["check_name"] for r in rows] == [c.__name__ for c in ALL_CHECKS if is_applicable(c, Fine)]
    assert "check_scores_finite_and_aligned" not in _status(rows)  # Fine only overrides query
    assert {r["status"] for r in rows} == {"passed"}
    assert set(rows[0]) >= {"check_name", "status", "exception"}


@pytest.mark.parametrize(
    ("cls", "check_name"),
    [
        (Unseeded, "check_query_deterministic_given_seed"),
        (Unpicklable, "check_picklable"),
        (BadName, "check_name_is_slug"),
        (NoDefault, "check_options_defaults_and_reject_unknown"),
        (LiesAbout3D, "check_3d"),
        (TruncatesAtPool, "check_k_exceeds_pool"),
    ],
)
def test_each_broken_strategy_fails_the_right_check(cls, check_name):
    """The kit yields the check for this strategy and records it as failed (the rest of the kit runs on
    ``Fine`` above and on every registered strategy in tests/strategies)."""
    chosen = [(obj, check) for obj, check in strategy_checks_generator(cls) if check.__name__ == check_name]
    assert len(chosen) == 1, check_name
    rows = run_checks("strategy", cls, chosen, on_fail=None, expected=None, callback=None,
                      warning=StrategyCheckFailedWarning)
    assert _status(rows) == {check_name: "failed"}


def test_on_fail_modes():
    with pytest.raises(AssertionError, match="same seed"):
        check_strategy(Unseeded, on_fail="raise")
    with pytest.warns(StrategyCheckFailedWarning, match="deterministic"):
        check_strategy(Unseeded, on_fail="warn")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rows = check_strategy(Unseeded, on_fail=None, expected_failed_checks={
            "check_query_deterministic_given_seed": "known"})
    assert _status(rows)["check_query_deterministic_given_seed"] == "xfail"


def test_declared_unsupported_is_not_yielded_and_skips_when_called():
    cls = type("Flat", (Fine,), {"name": "flat", "supports_3d": False, "supports_multilabel": False})
    with pytest.raises(SkipCheck, match="supports_3d = False"):
        check_3d(cls)
    status = _status(check_strategy(cls, on_fail=None))
    assert "check_3d" not in status and "check_multilabel" not in status
    assert {c.__name__ for _, c in strategy_checks_generator(cls)} == set(status)


def test_generator_yields_one_pair_per_applicable_check_and_marks_expected_failures():
    pairs = list(strategy_checks_generator(Fine))
    assert len(pairs) == sum(is_applicable(c, Fine) for c in ALL_CHECKS) and all(cls is Fine for cls, _ in pairs)
    marked = list(strategy_checks_generator(Fine, expected_failed_checks={"check_3d": "why"}, mark="xfail"))
    assert sum(hasattr(p, "marks") for p in marked) == 1
    with pytest.raises(TypeError, match="strategy class, instance or registered name"):
        check_strategy(42)


def test_instances_are_checked_with_their_options():
    rows = check_strategy(ScoresOnly({"sign": 1.0}), on_fail=None)
    assert {r["status"] for r in rows} == {"passed"} and rows[0]["strategy"] == "scores-only[sign=1.0]"
    mark = parametrize_with_checks([ScoresOnly({"sign": 2.0})])
    assert "scores-only[sign=2.0]-check_scores_finite_and_aligned" in [p.id for p in mark.args[1]]
    # the options reach the sandbox: opposite signs pick opposite ends of the pool
    kit_round = make_round()
    low, high = (sandboxed_query(ScoresOnly({"sign": s}), kit_round, 5) for s in (-1.0, 1.0))
    means = kit_round.context().pool_images.flatten(1).mean(1).numpy()
    assert means[low].max() < means[high].min()


def test_scores_only_strategies_and_broken_scores():
    check_is_strategy_subclass(ScoresOnly)
    check_scores_finite_and_aligned(ScoresOnly)
    for cls in (NaNScores, MisalignedScores):
        with pytest.raises(AssertionError):
            check_scores_finite_and_aligned(cls)
    with pytest.raises(SkipCheck, match="does not implement scores"):
        check_scores_finite_and_aligned(Fine)
    with pytest.raises(AssertionError, match="implements neither scores"):
        check_is_strategy_subclass(Neither)


def test_parametrize_ids_name_strategy_and_check():
    mark = parametrize_with_checks([Fine, "entropy"])
    ids = [p.id for p in mark.args[1]]
    assert "fine-check_picklable" in ids and "entropy-check_3d" in ids


def test_check_by_registered_name():
    assert {r["status"] for r in check_strategy("entropy", on_fail=None)} == {"passed"}


def test_run_check_plugin_resolves_names_and_distributions(monkeypatch):
    """Which strategies a name or a distribution selects, and how their rows and verdict come back (the kit
    itself runs on every built-in strategy in ``tests/strategies/test_strategies_conformance.py``)."""
    import xalbench.testing as testing

    checked: list[type] = []

    def kit(cls, *, on_fail, time_limit):
        checked.append(cls)
        failed = cls.name == "bald"
        return [{"check_name": "check_stub", "status": "failed" if failed else "passed",
                 "exception": AssertionError("stub failure\nsecond line") if failed else None}]

    monkeypatch.setattr(testing, "check_strategy", kit)
    rows, ok = run_check_plugin("xalbench")
    assert {r["strategy"] for r in rows} >= {"random", "entropy", "bald", "coreset", "badge"}
    assert {r["distribution"] for r in rows} == {"xalbench"} and len(rows) == len(checked)
    assert not ok and [r["exception"] for r in rows if r["status"] == "failed"] == ["AssertionError: stub failure"]
    rows, ok = run_check_plugin("margin")
    assert ok and {r["strategy"] for r in rows} == {"margin"} and checked[-1].name == "margin"
    with pytest.raises(UnknownComponentError, match="neither"):
        run_check_plugin("no-such-thing")


def test_template_is_discovered_through_its_entry_point_and_passes_the_kit():
    eps = {ep.name: ep.value for ep in entry_points(group="xalbench")}
    if "xalbench_plugin_template" not in eps.values():
        pytest.skip("install it first: pip install -e plugins/xalbench-plugin-template")
    record = load_registry().record("strategy", "template-least-confident")
    assert record.distribution == "xalbench-plugin-template"
    rows, ok = run_check_plugin("xalbench_plugin_template")  # distribution name, normalised
    assert ok, [r for r in rows if r["status"] == "failed"]
    assert {r["strategy"] for r in rows} == {"template-least-confident"}


def test_infogain_distribution_passes_the_kit():
    if "aeig" not in load_registry().names("strategy"):
        pytest.skip("install it first: pip install -e plugins/xalbench-infogain")
    rows, ok = run_check_plugin("xalbench-infogain")
    assert ok and {r["strategy"] for r in rows} == {"eig", "aeig", "uig", "cfig"}


def test_kit_context_on_a_hidden_track_holds_no_pool_mask_anywhere():
    """The kit builds a strategy's view as a run does: on a hidden-mask track no attribute of the context
    (private ones included) holds the pool's ROIs or ROI flags; on a visible track they are there."""
    hidden = make_round(pool_masks_visible=False)
    ctx = hidden.context()
    roi = hidden.pool.roi
    held = [v for v in vars(ctx).values() if isinstance(v, torch.Tensor) and v.shape == roi.shape]
    assert not any(torch.equal(v, roi) for v in held)
    assert ctx._pool_roi is None and ctx._pool_has_roi is None
    visible = make_round(pool_masks_visible=True).context()
    assert torch.equal(visible.pool_roi, roi[torch.as_tensor(visible.unlabelled)])
