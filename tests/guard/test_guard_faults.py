"""Every fault kind a strategy can commit becomes one named error from ``guard.call_strategy``."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from types import SimpleNamespace
from typing import ClassVar

import numpy as np
import pytest
import torch

from xalbench import Options, Strategy
from xalbench.errors import (
    InformationAccessError,
    ModelMutationError,
    StrategyContractError,
    StrategyTimeoutError,
)
from xalbench.sandbox.guard import call_strategy, skip_reason
from xalbench.testing.contexts import make_context


def _ctx(**kw):
    return make_context(n_pool=30, n_labelled=6, explainer=None, **kw)


def broken(name: str, body, **attrs):
    """A Strategy subclass whose query runs ``body(self, ctx, k)``."""

    @dataclass(frozen=True)
    class Opts(Options):
        pass

    ns = {"name": name, "summary": "broken on purpose", "Options": Opts, "query": body, **attrs}
    return type(f"Broken_{name}", (Strategy,), ns)()


def first_k(ctx, k):
    return ctx.unlabelled[:k]


class Good(Strategy):
    name: ClassVar[str] = "good"

    @dataclass(frozen=True)
    class Options(Options):
        pass

    def query(self, ctx, k):
        return list(first_k(ctx, k))


def test_good_strategy_passes_and_returns_int64_in_order():
    ctx = _ctx()
    out = call_strategy(Good(), ctx, 4, timeout=30).indices
    assert out.dtype == np.int64 and out.tolist() == ctx.unlabelled[:4].tolist()


def test_reading_pool_labels_is_forbidden_even_if_caught():
    def sneaky(self, ctx, k):
        try:
            ctx.pool_labels  # noqa: B018
        except Exception:
            pass
        return first_k(ctx, k)

    with pytest.raises(InformationAccessError, match="pool labels") as info:
        call_strategy(broken("peek-labels", sneaky), _ctx(), 3, timeout=30)
    assert info.value.rule == "forbidden-access"


@pytest.mark.parametrize("attr", ["pool_roi", "pool_has_roi", "test", "oracle"])
def test_reading_hidden_masks_test_set_or_oracle_is_forbidden(attr):
    def peek(self, ctx, k):
        getattr(ctx, attr)
        return first_k(ctx, k)

    with pytest.raises(InformationAccessError):
        call_strategy(broken("peek", peek), _ctx(pool_masks_visible=False), 3, timeout=30)


def test_visible_pool_masks_are_allowed_on_visible_tracks():
    def use_masks(self, ctx, k):
        area = ctx.pool_roi.flatten(1).sum(1).numpy()
        return ctx.unlabelled[np.argsort(-area, kind="stable")[:k]]

    out = call_strategy(broken("masks", use_masks), _ctx(pool_masks_visible=True), 3, timeout=30).indices
    assert len(out) == 3


def test_mutating_the_model_is_caught():
    def train(self, ctx, k):
        with torch.no_grad():
            ctx.model.classifier.weight.add_(1.0)
        return first_k(ctx, k)

    with pytest.raises(ModelMutationError) as info:
        call_strategy(broken("trainer", train), _ctx(), 3, timeout=30)
    assert info.value.rule == "model-mutated"


def test_bn_buffers_updated_by_train_mode_forward_are_caught_and_modes_restored():
    def forward_in_train_mode(self, ctx, k):
        ctx.model.train()
        ctx.model(ctx.unlabelled_images[:8])
        return first_k(ctx, k)

    ctx = _ctx()
    with pytest.raises(ModelMutationError):
        call_strategy(broken("bn", forward_in_train_mode), ctx, 3, timeout=30)
    assert not ctx.model.training


def test_leaving_dropout_on_is_repaired_not_failed():
    def mc(self, ctx, k):
        ctx.model.dropout.train()
        return first_k(ctx, k)

    ctx = _ctx()
    call_strategy(broken("mc", mc), ctx, 3, timeout=30)
    assert not ctx.model.dropout.training


def test_mutating_pool_images_or_labelled_set_is_caught():
    def scribble(self, ctx, k):
        ctx.pool_images[0].zero_()
        return first_k(ctx, k)

    def relabel(self, ctx, k):
        ctx.unlabelled[0] = ctx.unlabelled[1]
        return first_k(ctx, k)

    for body in (scribble, relabel):
        with pytest.raises(StrategyContractError) as info:
            call_strategy(broken("scribble", body), _ctx(), 3, timeout=30)
        assert info.value.rule == "pool-mutated"


def test_timeout_abandons_the_call():
    release = threading.Event()

    def hang(self, ctx, k):
        release.wait(30)
        return first_k(ctx, k)

    try:
        with pytest.raises(StrategyTimeoutError, match="strategy_timeout") as info:
            call_strategy(broken("hang", hang), _ctx(), 3, timeout=0.05)
        assert info.value.rule == "timeout"
    finally:
        release.set()  # let the abandoned daemon thread finish


def test_exception_is_wrapped_and_chained():
    def boom(self, ctx, k):
        raise ZeroDivisionError("bad math")

    with pytest.raises(StrategyContractError, match="ZeroDivisionError: bad math") as info:
        call_strategy(broken("boom", boom), _ctx(), 3, timeout=30)
    assert info.value.rule == "exception"
    assert isinstance(info.value.__cause__, ZeroDivisionError)


def test_nan_scores_via_topk_helper_and_returned_object():
    from xalbench.selection import topk_by_score

    def helper(self, ctx, k):
        scores = np.zeros(len(ctx.unlabelled))
        scores[2] = np.nan
        return topk_by_score(scores, ctx, k)

    def returned(self, ctx, k):
        return SimpleNamespace(indices=first_k(ctx, k), scores=torch.tensor([0.5, float("nan")]))

    for body in (helper, returned):
        with pytest.raises(StrategyContractError) as info:
            call_strategy(broken("nan", body), _ctx(), 3, timeout=30)
        assert info.value.rule == "nan", body.__name__


class Scorer(Strategy):
    """Ranks by ``scores`` only: the guard takes the top k itself and returns the scores."""

    name: ClassVar[str] = "scorer"

    @dataclass(frozen=True)
    class Options(Options):
        pass

    def scores(self, ctx):
        return -ctx.unlabelled.astype(np.float64)


def test_scoring_strategy_is_ranked_by_the_guard_with_its_scores():
    ctx = _ctx()
    sel = call_strategy(Scorer(), ctx, 4, timeout=30)
    assert sel.indices.tolist() == ctx.unlabelled[:4].tolist()
    assert sel.scores is not None and np.array_equal(sel.scores, -ctx.unlabelled.astype(np.float64))
    assert not hasattr(Scorer(), "last_scores")


def test_query_result_scores_kept_only_when_aligned():
    def aligned(self, ctx, k):
        return SimpleNamespace(indices=first_k(ctx, k), scores=np.arange(len(ctx.unlabelled), dtype=float))

    def short(self, ctx, k):
        return SimpleNamespace(indices=first_k(ctx, k), scores=np.ones(2))

    ctx = _ctx()
    assert call_strategy(broken("aligned", aligned), ctx, 3, timeout=30).scores.shape == (len(ctx.unlabelled),)
    assert call_strategy(broken("short", short), _ctx(), 3, timeout=30).scores is None
    assert call_strategy(Good(), _ctx(), 3, timeout=30).scores is None


def test_scoring_strategy_nan_fails_with_rule_nan():
    class NanScorer(Scorer):
        name: ClassVar[str] = "nan-scorer"

        def scores(self, ctx):
            out = np.zeros(len(ctx.unlabelled))
            out[1] = np.inf
            return out

    with pytest.raises(StrategyContractError) as info:
        call_strategy(NanScorer(), _ctx(), 3, timeout=30)
    assert info.value.rule == "nan"


@pytest.mark.parametrize(
    ("rule", "body"),
    [
        ("duplicates", lambda self, ctx, k: [int(ctx.unlabelled[0])] * k),
        ("range", lambda self, ctx, k: [ctx.n_pool + 3, *ctx.unlabelled[: k - 1]]),
        ("range", lambda self, ctx, k: [-1, *ctx.unlabelled[: k - 1]]),
        ("labelled", lambda self, ctx, k: [int(ctx.labelled[0]), *ctx.unlabelled[: k - 1]]),
        ("count", lambda self, ctx, k: ctx.unlabelled[: k - 1]),
        ("count", lambda self, ctx, k: ctx.unlabelled[: k + 1]),
        ("type", lambda self, ctx, k: np.asarray(ctx.unlabelled[:k], dtype=float)),
        ("type", lambda self, ctx, k: ctx.unlabelled[:k].reshape(1, -1)),
        ("type", lambda self, ctx, k: None),
    ],
)
def test_invalid_answers_name_the_broken_rule(rule, body):
    with pytest.raises(StrategyContractError) as info:
        call_strategy(broken(rule, body), _ctx(), 3, timeout=30)
    assert info.value.rule == rule


def test_k_beyond_pool_expects_every_unlabelled_index():
    ctx = _ctx()
    n_unl = len(ctx.unlabelled)
    assert len(call_strategy(Good(), ctx, n_unl + 10, timeout=30).indices) == n_unl


def test_skip_reason_names_each_limit():
    cls = type(
        "Picky", (Good,), {"supports_multilabel": False, "supports_3d": False, "requires_pool_masks": True}
    )
    assert "multi-label" in skip_reason(cls, task="multi-label", spatial_dims=2, pool_masks_visible=True)
    assert "3D" in skip_reason(cls, task="multi-class", spatial_dims=3, pool_masks_visible=True)
    assert "pool ROI masks" in skip_reason(cls, task="multi-class", spatial_dims=2, pool_masks_visible=False)
    assert skip_reason(cls, task="multi-class", spatial_dims=2, pool_masks_visible=True) is None


def test_slow_but_finishing_strategy_within_timeout_passes():
    def slow(self, ctx, k):
        time.sleep(0.05)
        return first_k(ctx, k)

    assert len(call_strategy(broken("slow", slow), _ctx(), 2, timeout=30).indices) == 2
