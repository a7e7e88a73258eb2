"""The individual conformance checks for a strategy class.

Every check is a plain function ``check_xxx(strategy_cls) -> None`` (scikit-learn's
``check_xxx(name, estimator)`` shape): it returns on success, raises (usually
``AssertionError`` or a :class:`~xalbench.errors.StrategyContractError`) on failure, and
raises :class:`SkipCheck` when the check does not apply (e.g. a strategy that declares
``supports_3d = False`` is not run on 3D data).

The checks build their own tiny contexts (:func:`xalbench.testing.contexts.make_context`);
strategies that declare ``requires_pool_masks`` get visible pool masks. Queries run the way the
harness runs them: in a fresh sandbox process, through :func:`xalbench.harness.guard.call_strategy`,
killed after :func:`~xalbench.testing.leak_checks.time_limit` seconds (:data:`TIME_LIMIT` by
default). The leak checks (:mod:`xalbench.testing.leak_checks`) close :data:`ALL_CHECKS`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import pickle
from collections.abc import Callable
from typing import Any

import numpy as np

from xalbench.base import Strategy
from xalbench.errors import OptionsError
from xalbench.harness.context import StrategyContext, model_fingerprint
from xalbench.options import Options
from xalbench.registry import SLUG
from xalbench.testing.contexts import make_context
from xalbench.testing.leak_checks import LEAK_CHECKS, TIME_LIMIT, direct_query, sandboxed_query

__all__ = ["ALL_CHECKS", "SkipCheck", "TIME_LIMIT"]

K = 5


class SkipCheck(Exception):
    """Raised by a check that does not apply to this strategy (the reason is the message)."""


def _context(cls: type[Strategy], **kwargs: Any) -> StrategyContext:
    kwargs.setdefault("pool_masks_visible", bool(getattr(cls, "requires_pool_masks", False)))
    return make_context(**kwargs)


def _query(cls: type[Strategy], ctx: StrategyContext, k: int = K) -> np.ndarray:
    return sandboxed_query(cls, ctx, k)


def check_is_strategy_subclass(cls: type[Strategy]) -> None:
    """The class subclasses ``xalbench.Strategy`` and implements ``query``."""
    assert isinstance(cls, type) and issubclass(cls, Strategy), (
        f"{cls!r} must be a subclass of xalbench.Strategy (register the class, not an instance)"
    )
    abstract = sorted(getattr(cls, "__abstractmethods__", ()))
    assert not abstract, f"{cls.__name__} leaves abstract methods unimplemented: {abstract}"


def check_name_is_slug(cls: type[Strategy]) -> None:
    """``name`` is a slug and ``summary`` is one non-empty line."""
    name = getattr(cls, "name", "")
    assert isinstance(name, str) and SLUG.match(name), (
        f"name {name!r} is not a slug: use lower-case letters, digits, '-', '_' or '.'"
    )
    summary = getattr(cls, "summary", "")
    assert isinstance(summary, str) and summary.strip() and "\n" not in summary.strip(), (
        f"strategy {name!r}: set `summary` to one non-empty line"
    )
    assert isinstance(getattr(cls, "paper", ""), str), f"strategy {name!r}: `paper` must be a string ('' if none)"


def check_options_defaults_and_reject_unknown(cls: type[Strategy]) -> None:
    """``Options`` is a dataclass of ``xalbench.Options`` whose fields all have defaults; unknown keys raise."""
    opts = cls.Options
    assert isinstance(opts, type) and issubclass(opts, Options) and dataclasses.is_dataclass(opts), (
        f"strategy {cls.name!r}: declare `@dataclass(frozen=True) class Options(xalbench.Options)`"
    )
    no_default = [
        f.name for f in dataclasses.fields(opts)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    assert not no_default, f"strategy {cls.name!r}: options {no_default} need defaults"
    inst = cls()
    again = cls(inst.options.to_dict())
    assert again.options == inst.options, f"strategy {cls.name!r}: options do not round-trip through to_dict()"
    try:
        cls({"definitely_not_an_option": 1})
    except OptionsError:
        pass
    else:
        raise AssertionError(f"strategy {cls.name!r} accepted an unknown option; build options with Options.parse")


def check_declarations(cls: type[Strategy]) -> None:
    """``supports_multilabel``, ``supports_3d`` and ``requires_pool_masks`` are booleans."""
    for attr in ("supports_multilabel", "supports_3d", "requires_pool_masks"):
        value = getattr(cls, attr, None)
        assert isinstance(value, bool), f"strategy {cls.name!r}: {attr} must be True or False, got {value!r}"


def check_query_returns_k_valid_indices(cls: type[Strategy]) -> None:
    """``query(ctx, k)`` gives exactly ``k`` distinct unlabelled pool indices (``k = 0`` → none)."""
    ctx = _context(cls)
    idx = _query(cls, ctx)
    assert idx.shape == (K,), f"expected {K} indices, got {idx.shape}"
    assert set(idx.tolist()) <= set(ctx.unlabelled.tolist()), "indices must come from ctx.unlabelled"
    assert _query(cls, _context(cls), 0).size == 0, "k = 0 must return no indices"


def check_query_deterministic_given_seed(cls: type[Strategy]) -> None:
    """Two identical contexts (same seed) give the same indices in the same order."""
    a = _query(cls, _context(cls, seed=3))
    b = _query(cls, _context(cls, seed=3))
    assert np.array_equal(a, b), f"same seed gave different indices: {a.tolist()} vs {b.tolist()}; use ctx.rng"


def check_k_exceeds_pool(cls: type[Strategy]) -> None:
    """``k ≥ |unlabelled|`` returns every unlabelled index once (the documented behaviour)."""
    ctx = _context(cls)
    idx = _query(cls, ctx, len(ctx.unlabelled) + 7)
    assert sorted(idx.tolist()) == ctx.unlabelled.tolist(), "k ≥ pool size must return all unlabelled indices"


def _digest(arr: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(arr).tobytes()).hexdigest()


def check_model_and_pool_unchanged(cls: type[Strategy]) -> None:
    """A direct ``query`` leaves model parameters/buffers/modes, pool images and index arrays untouched."""
    ctx = _context(cls)
    before = (model_fingerprint(ctx.model), _digest(ctx.pool_images.numpy()), ctx.labelled.copy())
    modes = [m.training for m in ctx.model.modules()]
    direct_query(cls(), ctx, K)
    assert model_fingerprint(ctx.model) == before[0], "query changed the model; deep-copy it before training"
    assert _digest(ctx.pool_images.numpy()) == before[1], "query changed ctx.pool_images"
    assert np.array_equal(ctx.labelled, before[2]), "query changed ctx.labelled"
    assert [m.training for m in ctx.model.modules()] == modes, "query left modules in a different train/eval mode"
    assert not ctx.violations, f"query read forbidden data: {ctx.violations}"


def check_picklable(cls: type[Strategy]) -> None:
    """Instances pickle (before and after a query) so cells can run in worker processes."""
    inst = cls()
    clone = pickle.loads(pickle.dumps(inst))
    assert type(clone) is cls and clone.options == inst.options, "unpickled strategy differs from the original"
    direct_query(inst, _context(cls), K)
    pickle.dumps(inst)


def check_multilabel(cls: type[Strategy]) -> None:
    """If ``supports_multilabel``, a query on a tiny multi-label context satisfies the contract."""
    if not cls.supports_multilabel:
        raise SkipCheck(f"strategy {cls.name!r} declares supports_multilabel = False")
    ctx = _context(cls, task="multi-label", num_classes=4)
    assert _query(cls, ctx).shape == (K,)


def check_3d(cls: type[Strategy]) -> None:
    """If ``supports_3d``, a query on a tiny 3D context satisfies the contract."""
    if not cls.supports_3d:
        raise SkipCheck(f"strategy {cls.name!r} declares supports_3d = False")
    ctx = _context(cls, spatial_dims=3, n_pool=24, n_labelled=6)
    assert _query(cls, ctx).shape == (K,)


def check_runs_within_time_bound(cls: type[Strategy]) -> None:
    """A query of 10 from a 120-sample pool finishes within the kit's time limit (:data:`TIME_LIMIT` s by default)."""
    ctx = _context(cls, n_pool=120, n_labelled=20, n_val=30)
    assert _query(cls, ctx, 10).shape == (10,)


ALL_CHECKS: tuple[Callable[[type[Strategy]], None], ...] = (
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
    check_runs_within_time_bound,
    *LEAK_CHECKS,
)
