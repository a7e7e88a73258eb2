"""Score-ranking strategies implement scores() and inherit query(); the others keep their own query."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from xalbench.base import Strategy, stable_topk
from xalbench.options import Options
from xalbench.strategies.common import as_numpy
from xalbench.strategies.plugin import BUILTIN_STRATEGIES
from xalbench.testing.contexts import make_context

SCORING = ["entropy", "margin", "least-confidence", "mcd-entropy", "bald"]
SELECTING = ["random", "coreset", "badge"]
BY_NAME = {cls.name: cls for cls in BUILTIN_STRATEGIES}


@pytest.mark.parametrize("name", SCORING)
@pytest.mark.parametrize("task", ["multi-class", "multi-label"])
def test_scoring_strategies_rank_by_scores_through_the_default_query(name, task):
    cls = BY_NAME[name]
    assert cls.query is Strategy.query
    ctx = make_context(task=task, seed=2)
    scores = as_numpy(cls().scores(ctx))
    assert scores.shape == (len(ctx.unlabelled),) and np.isfinite(scores).all()
    picks = cls().query(make_context(task=task, seed=2), 9)
    assert picks.tolist() == ctx.unlabelled[stable_topk(scores, 9)].tolist()


@pytest.mark.parametrize("name", SELECTING)
def test_selecting_strategies_keep_their_query_and_give_no_scores(name):
    cls = BY_NAME[name]
    assert cls.query is not Strategy.query
    assert cls().scores(make_context()) is None


@pytest.mark.parametrize("cls", BUILTIN_STRATEGIES)
def test_no_empty_options_subclasses(cls):
    options = cls.Options
    if options is Options:
        return
    own = {f.name for f in dataclasses.fields(options)} - {f.name for f in dataclasses.fields(options.__base__)}
    assert own or "__post_init__" in vars(options), f"{cls.name}: an Options subclass that adds nothing"
