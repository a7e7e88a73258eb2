"""Cheating strategies (the ``xalbench-cheaters`` fixture distribution), one per leak class.

In the sandbox each one either finds nothing — its picks equal ``honest-first``'s — or fails with a
named rule, and the harness's pool, labels, ROIs and val split (full SHA-256) are unchanged after
every one. Each test also runs the same cheater where the data *is* reachable (in-process, or the
pre-sandbox context) and shows the cheat works there: the tests can fail.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tests.sandbox.cheaters import HARNESS_CACHE
from tests.sandbox.conftest import World, make_world
from xalbench.base import DatasetBundle, DatasetMeta, Split
from xalbench.errors import StrategyContractError
from xalbench.sandbox import InlineQuerier, ProcessQuerier, digest
from xalbench.sandbox.guard import call_strategy


def _picks(querier_cls, world: World, strategy, options=None, rounds: int = 1) -> list[list[int]]:
    with querier_cls(world.spec(strategy, options), world.data()) as q:
        return [q.query(world.request(r)).indices.tolist() for r in range(rounds)]


def _honest(world: World) -> list[int]:
    return world.unlabelled()[: world.k].tolist()


def _cheat(cheaters, world: World) -> list[int]:
    return cheaters.picks_from_labels(world.pool.labels.numpy(), world.unlabelled(), world.k).tolist()


@pytest.mark.parametrize("name", ["cheat-gc", "cheat-frames", "cheat-cache"])
def test_label_cheaters_find_nothing_in_the_sandbox(name, cheaters, world: World):
    strategy = {c.name: c for c in cheaters.CHEATERS}[name]
    meta = DatasetMeta("fixture", "multi-class", ("a", "b", "c"), 1, 2, (16, 16))
    HARNESS_CACHE["fixture"] = DatasetBundle(meta, world.pool, world.val, world.val)  # a harness-like cache
    before = world.parent_digest()
    pool = world.pool  # noqa: F841 - a harness frame holds the pool split, as the round loop does
    try:
        assert _picks(ProcessQuerier, world, strategy) == [_honest(world)]
        assert _picks(InlineQuerier, world, strategy) == [_cheat(cheaters, world)]  # in-process: it works
    finally:
        HARNESS_CACHE.clear()
    assert world.parent_digest() == before


def test_private_pool_masks_are_not_in_the_sandbox_context(cheaters, world: World):
    """``ctx._pool_roi`` on a hidden-mask track: None in the sandbox (and in the inline twin, which is built
    from the same messages); the pre-sandbox context held the whole pool's ROIs there."""
    cheat = cheaters.picks_from_labels(cheaters.roi_key(world.pool.roi), world.unlabelled(), world.k).tolist()
    assert _picks(ProcessQuerier, world, cheaters.CheatPrivate) == [_honest(world)]
    assert _picks(InlineQuerier, world, cheaters.CheatPrivate) == [_honest(world)]
    legacy = call_strategy(cheaters.CheatPrivate(), world.legacy_context(), world.k, timeout=60).indices
    assert legacy.tolist() == cheat and cheat != _honest(world)


def test_no_pool_label_or_hidden_mask_array_is_reachable_in_the_sandbox(cheaters, world: World):
    wanted = ",".join([digest(world.pool.labels), digest(world.pool.roi), digest(world.pool.has_roi)])
    assert _picks(ProcessQuerier, world, cheaters.Probe, {"digests": wanted}) == [_honest(world)]
    last = world.unlabelled()[-world.k:].tolist()
    assert _picks(InlineQuerier, world, cheaters.Probe, {"digests": wanted}) == [last]  # this process has them


@pytest.mark.slow
def test_regenerating_synthetic_data_is_out_of_scope_for_the_sandbox(cheaters):
    """Documents a limit: a strategy that knows a synthetic generator's public options can re-create the
    data (labels included) inside the sandbox. Closing that is the leaderboard's job — verification on
    dataset seeds that submitters never see — not the sandbox's."""
    from xalbench.data.synth_lesion import SynthLesion2D

    options = {"size": 32, "n_train": 30, "n_val": 12, "n_test": 6}
    bundle = SynthLesion2D(options).load(None)
    world = World(pool=bundle.train, val=bundle.val, model=make_world().model, labelled=np.arange(0, 30, 3))
    found = _picks(ProcessQuerier, world, cheaters.CheatRegenerate,
                   {"dataset": "synth-lesion-2d", "dataset_options": json.dumps(options)})
    assert found == [_cheat(cheaters, world)] != [_honest(world)]


@pytest.mark.parametrize("name", ["cheat-dropout", "cheat-hook", "cheat-requires-grad"])
def test_model_changes_do_not_reach_the_next_round_or_the_harness(name, cheaters, world: World):
    strategy = {c.name: c for c in cheaters.CHEATERS}[name]
    dropout_p, hooks = world.model.dropout.p, dict(world.model._forward_hooks)
    grads = [p.requires_grad for p in world.model.parameters()]
    assert _picks(ProcessQuerier, world, strategy, rounds=2) == [_honest(world)] * 2
    assert _picks(InlineQuerier, world, strategy, rounds=2) == [_honest(world)] * 2  # fresh model per round
    assert world.model.dropout.p == dropout_p and dict(world.model._forward_hooks) == hooks
    assert [p.requires_grad for p in world.model.parameters()] == grads
    # the pre-sandbox path handed the live model to the strategy: the change persisted into round 1
    cheater = strategy()
    call_strategy(cheater, world.legacy_context(0), world.k, timeout=60)
    persisted = call_strategy(cheater, world.legacy_context(1), world.k, timeout=60).indices
    assert persisted.tolist() == world.unlabelled()[-world.k:].tolist()


@pytest.mark.parametrize(("name", "rule"), [("cheat-pool-write", "pool-mutated"), ("cheat-val-write", "val-mutated")])
def test_writes_into_data_fail_the_cell_and_never_reach_the_harness(name, rule, cheaters, world: World):
    strategy = {c.name: c for c in cheaters.CHEATERS}[name]
    before = world.parent_digest()
    for querier in (ProcessQuerier, InlineQuerier):
        with pytest.raises(StrategyContractError) as info:
            _picks(querier, world, strategy)
        assert info.value.rule == rule
        assert world.parent_digest() == before
    # the pre-sandbox guard passed this write (sum and norm unchanged) and the harness's data changed
    call_strategy(strategy(), world.legacy_context(), world.k, timeout=60)
    assert world.parent_digest() != before


def test_every_cheater_leaves_the_harness_data_untouched(cheaters):
    """One sweep over the whole distribution (timeouts and crashes included) with one world."""
    world = make_world(seed=3)
    before = world.parent_digest()
    skip = {"sleeper", "hog", "cheat-regenerate"}  # slow; covered by their own tests
    for cls in cheaters.CHEATERS:
        if cls.name in skip:
            continue
        try:
            _picks(ProcessQuerier, world, cls, rounds=2)
        except StrategyContractError:
            pass
        assert world.parent_digest() == before, cls.name


def test_split_in_the_parent_is_what_cheaters_look_for(cheaters, world: World):
    """Sanity of the fixture: the label cheaters' matcher recognises the pool split (else the tests above
    would pass vacuously)."""
    ctx = world.legacy_context()
    assert cheaters._pool_split(world.pool, ctx) is world.pool
    other = Split(images=torch.rand_like(world.pool.images), labels=world.pool.labels)
    assert cheaters._pool_split(other, ctx) is None
    assert _cheat(cheaters, world) != _honest(world)
    assert not np.array_equal(world.unlabelled()[-world.k:], _honest(world))
