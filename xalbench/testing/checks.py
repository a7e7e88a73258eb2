"""The individual conformance checks for a strategy class or instance.

Every check is a plain function ``check_xxx(strategy) -> None`` (scikit-learn's
``check_xxx(name, estimator)`` shape) taking the class or an instance (whose options are then
the ones checked; every query uses a fresh instance with those options): it returns on
success, raises (usually ``AssertionError`` or a :class:`~xalbench.errors.StrategyContractError`)
on failure, and raises :class:`SkipCheck` when the check does not apply (e.g. a strategy that
declares ``supports_3d = False`` is not run on 3D data; the generators do not even yield it).

The checks build their own tiny rounds (:func:`xalbench.testing.contexts.make_round`), as a run sends them;
strategies that declare ``requires_pool_masks`` get visible pool masks. Queries run the way the
harness runs them: in a fresh sandbox process, through :func:`xalbench.sandbox.guard.call_strategy`,
killed after :func:`~xalbench.testing.leak_checks.time_limit` seconds (:data:`TIME_LIMIT` by
default). The leak checks (:mod:`xalbench.testing.leak_checks`) close :data:`ALL_CHECKS`.
"""

from __future__ import annotations

import hashlib
import pickle
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from xalbench.base import Strategy
from xalbench.sandbox.context import StrategyContext
from xalbench.sandbox.guard import model_fingerprint
from xalbench.testing.component_checks import (
    check_declarations,
    check_name_is_slug,
    check_options_defaults_and_reject_unknown,
    check_subclass,
)
from xalbench.testing.contexts import KitRound, make_round
from xalbench.testing.kit import SkipCheck, applies_if, component_class, fresh
from xalbench.testing.leak_checks import LEAK_CHECKS, TIME_LIMIT, direct_query, sandboxed_query

__all__ = ["ALL_CHECKS", "SkipCheck", "TIME_LIMIT", "check_declarations", "check_name_is_slug",
           "check_options_defaults_and_reject_unknown"]

K = 5


Strategyish = type[Strategy] | Strategy


def _round(cls: Strategyish, **kwargs: Any) -> KitRound:
    kwargs.setdefault("pool_masks_visible", bool(getattr(cls, "requires_pool_masks", False)))
    return make_round(**kwargs)


def _context(cls: Strategyish, **kwargs: Any) -> StrategyContext:
    return _round(cls, **kwargs).context()


def _query(cls: Strategyish, kit_round: KitRound, k: int = K) -> np.ndarray:
    return sandboxed_query(cls, kit_round, k)


def _implements_scores(cls: type) -> bool:
    default = getattr(Strategy, "scores", None)
    return getattr(cls, "scores", default) is not default


def check_is_strategy_subclass(cls: Strategyish) -> None:
    """The class subclasses ``xalbench.Strategy`` and implements ``scores(ctx)`` or ``query(ctx, k)``."""
    check_subclass(cls, Strategy)
    klass = component_class(cls)
    assert _implements_scores(klass) or klass.query is not Strategy.query, (
        f"{klass.__name__} implements neither scores(ctx) (one number per unlabelled sample; the default "
        "query takes the top k) nor query(ctx, k)"
    )


def check_query_returns_k_valid_indices(cls: Strategyish) -> None:
    """``query(ctx, k)`` gives exactly ``k`` distinct unlabelled pool indices (``k = 0`` → none)."""
    kit_round = _round(cls)
    idx = _query(cls, kit_round)
    assert idx.shape == (K,), f"expected {K} indices, got {idx.shape}"
    assert set(idx.tolist()) <= set(kit_round.context().unlabelled.tolist()), "indices must come from ctx.unlabelled"
    assert _query(cls, _round(cls), 0).size == 0, "k = 0 must return no indices"


def check_query_deterministic_given_seed(cls: Strategyish) -> None:
    """Two identical contexts (same seed) give the same indices in the same order."""
    a = _query(cls, _round(cls, seed=3))
    b = _query(cls, _round(cls, seed=3))
    assert np.array_equal(a, b), f"same seed gave different indices: {a.tolist()} vs {b.tolist()}; use ctx.rng"


def check_k_exceeds_pool(cls: Strategyish) -> None:
    """``k ≥ |unlabelled|`` returns every unlabelled index once (the documented behaviour)."""
    kit_round = _round(cls)
    ctx = kit_round.context()
    idx = _query(cls, kit_round, len(ctx.unlabelled) + 7)
    assert sorted(idx.tolist()) == ctx.unlabelled.tolist(), "k ≥ pool size must return all unlabelled indices"


def _digest(arr: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(arr).tobytes()).hexdigest()


def check_model_and_pool_unchanged(cls: Strategyish) -> None:
    """A direct ``query`` leaves model parameters/buffers/modes, pool images and index arrays untouched."""
    ctx = _context(cls)
    before = (model_fingerprint(ctx.model), _digest(ctx.pool_images.numpy()), ctx.labelled.copy())
    modes = [m.training for m in ctx.model.modules()]
    direct_query(fresh(cls), ctx, K)
    assert model_fingerprint(ctx.model) == before[0], "query changed the model; deep-copy it before training"
    assert _digest(ctx.pool_images.numpy()) == before[1], "query changed ctx.pool_images"
    assert np.array_equal(ctx.labelled, before[2]), "query changed ctx.labelled"
    assert [m.training for m in ctx.model.modules()] == modes, "query left modules in a different train/eval mode"
    assert not ctx.violations, f"query read forbidden data: {ctx.violations}"


def check_picklable(cls: Strategyish) -> None:
    """Instances pickle (before and after a query) so cells can run in worker processes."""
    inst = fresh(cls)
    clone = pickle.loads(pickle.dumps(inst))
    assert type(clone) is type(inst) and clone.options == inst.options, "unpickled strategy differs from the original"
    direct_query(inst, _context(cls), K)
    pickle.dumps(inst)


@applies_if(lambda cls: cls.supports_multilabel, "{kind} {name!r} declares supports_multilabel = False")
def check_multilabel(cls: Strategyish) -> None:
    """If ``supports_multilabel``, a query on a tiny multi-label context satisfies the contract."""
    assert _query(cls, _round(cls, task="multi-label", num_classes=4)).shape == (K,)


@applies_if(lambda cls: cls.supports_3d, "{kind} {name!r} declares supports_3d = False")
def check_3d(cls: Strategyish) -> None:
    """If ``supports_3d``, a query on a tiny 3D context satisfies the contract."""
    assert _query(cls, _round(cls, spatial_dims=3, n_pool=24, n_labelled=6)).shape == (K,)


@applies_if(_implements_scores, "{kind} {name!r} does not implement scores(ctx)")
def check_scores_finite_and_aligned(cls: Strategyish) -> None:
    """``scores(ctx)``, when implemented: one finite number per ``ctx.unlabelled`` entry (``None`` only from a
    strategy that overrides ``query``), the same for the same seed; the default ``query`` is their top k."""
    inst = fresh(cls)
    klass = type(inst)
    ctx = _context(cls, seed=3)
    scores = inst.scores(ctx)
    if scores is None:
        if klass.query is Strategy.query:
            raise AssertionError(f"strategy {klass.name!r}: scores() returned None and query() is the default top-k")
        raise SkipCheck(f"strategy {klass.name!r} returned no scores (it selects in query())")
    arr = (scores.detach().cpu().numpy() if isinstance(scores, torch.Tensor) else np.asarray(scores)).astype(np.float64)
    n = len(ctx.unlabelled)
    assert arr.shape == (n,), (
        f"strategy {klass.name!r}: scores() must give one number per ctx.unlabelled entry, shape ({n},), "
        f"got {arr.shape}"
    )
    assert np.isfinite(arr).all(), f"strategy {klass.name!r}: scores() has {int((~np.isfinite(arr)).sum())} NaN/inf"
    again = fresh(cls).scores(_context(cls, seed=3))
    again = again.detach().cpu().numpy() if isinstance(again, torch.Tensor) else np.asarray(again)
    assert np.allclose(arr, np.asarray(again, dtype=np.float64)), f"strategy {klass.name!r}: same seed, other scores"


def check_runs_within_time_bound(cls: Strategyish) -> None:
    """A query of 10 from a 120-sample pool finishes within the kit's time limit (:data:`TIME_LIMIT` s by default)."""
    assert _query(cls, _round(cls, n_pool=120, n_labelled=20, n_val=30), 10).shape == (10,)


ALL_CHECKS: tuple[Callable[[Strategyish], None], ...] = (
    check_is_strategy_subclass,
    check_name_is_slug,
    check_options_defaults_and_reject_unknown,
    check_declarations,
    check_query_returns_k_valid_indices,
    check_query_deterministic_given_seed,
    check_k_exceeds_pool,
    check_model_and_pool_unchanged,
    check_picklable,
    check_multilabel,
    check_3d,
    check_scores_finite_and_aligned,
    check_runs_within_time_bound,
    *LEAK_CHECKS,
)
