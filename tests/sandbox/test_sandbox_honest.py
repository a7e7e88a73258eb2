"""Honest strategies: the sandbox gives bitwise the same picks as the in-process twin and as the
harness's pre-sandbox path, keeps one strategy instance per cell, and never shares memory back."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.sandbox.conftest import World
from xalbench.sandbox import InlineQuerier, ProcessQuerier, make_cell_data, make_querier, make_round_request
from xalbench.sandbox.guard import call_strategy
from xalbench.sandbox.session import seeded_torch
from xalbench.strategies.bayesian import BALD, MCDropoutEntropy
from xalbench.strategies.diversity import BADGE, CoreSet
from xalbench.strategies.uncertainty import EntropySampling, LeastConfidence, MarginSampling, RandomSampling

BUILTINS = (RandomSampling, EntropySampling, MarginSampling, LeastConfidence, MCDropoutEntropy, BALD, CoreSet, BADGE)


def _two_rounds(querier, world: World) -> list[np.ndarray]:
    first = querier.query(world.request(0)).indices
    grown = np.concatenate([world.labelled, first])
    with torch.no_grad():  # "training" between rounds: the next state dict differs
        world.model.classifier.bias.add_(torch.tensor([0.5, -0.25, 0.0]))
    second = querier.query(world.request(1, grown)).indices
    return [first, second]


@pytest.mark.parametrize("cls", BUILTINS, ids=lambda c: c.name)
def test_process_and_inline_pick_bitwise_the_same(cls, world: World):
    spec = world.spec(cls)
    with ProcessQuerier(spec, world.data()) as q:
        in_process = _two_rounds(q, world)
    world.model.classifier.bias.data.sub_(torch.tensor([0.5, -0.25, 0.0]))
    with InlineQuerier(spec, world.data()) as q:
        inline = _two_rounds(q, world)
    assert [a.tolist() for a in in_process] == [b.tolist() for b in inline]
    assert all(a.dtype == np.int64 and len(a) == world.k for a in in_process)


@pytest.mark.parametrize("cls", (EntropySampling, RandomSampling, MCDropoutEntropy), ids=lambda c: c.name)
def test_sandbox_equals_the_pre_sandbox_path(cls, world: World):
    """Same model, seeds and global torch seed as the harness's in-process context: same picks."""
    with seeded_torch(200):
        before = call_strategy(cls(), world.legacy_context(0), world.k, timeout=60).indices
    with make_querier("process", world.spec(cls), world.data()) as q:
        assert q.query(world.request(0)).indices.tolist() == before.tolist()


def test_one_strategy_instance_per_cell_and_a_fresh_one_per_sandbox(cheaters, world: World):
    spec = world.spec(cheaters.Stateful)
    with ProcessQuerier(spec, world.data()) as q:
        a, b = q.query(world.request(0)).indices, q.query(world.request(1)).indices
    unl = world.unlabelled()
    assert a.tolist() == unl[: world.k].tolist() and b.tolist() == unl[1: world.k + 1].tolist()
    with ProcessQuerier(spec, world.data()) as q:  # next cell: a new instance
        assert q.query(world.request(0)).indices.tolist() == a.tolist()


def test_parent_tensors_are_never_shared_with_the_sandbox(world: World):
    data = make_cell_data(world.pool, world.val, pool_masks_visible=False)
    assert not np.shares_memory(data.pool_images, world.pool.images.numpy())
    assert not np.shares_memory(data.val_labels, world.val.labels.numpy())
    request = make_round_request(0, world.model, world.pool, world.labelled, np.ones(10, bool),
                                 rng_seed=1, torch_seed=2, k=3)
    weight = world.model.classifier.weight
    assert not np.shares_memory(request.state_dict["classifier.weight"], weight.detach().numpy())
    assert not weight.is_shared() and not world.pool.images.is_shared()


def test_hidden_track_sends_no_pool_masks_and_unrevealed_masks_are_zero(world: World):
    data = world.data()
    assert data.pool_roi is None and data.pool_has_roi is None and data.pool_annotated_slices is None
    with pytest.raises(ValueError, match="pool_masks = 'visible'"):
        type(data)(pool_images=data.pool_images, val_images=data.val_images, val_labels=data.val_labels,
                   pool_roi=world.pool.roi.numpy())
    revealed = np.zeros(len(world.labelled), dtype=bool)
    revealed[:3] = True
    req = make_round_request(0, world.model, world.pool, world.labelled, revealed, rng_seed=1, torch_seed=2, k=3)
    assert req.labelled_roi[3:].sum() == 0 and not req.labelled_has_roi[3:].any()
    shown = world.pool.roi[torch.as_tensor(world.labelled[:3])].numpy()
    assert np.array_equal(req.labelled_roi[:3], shown * world.pool.has_roi[torch.as_tensor(world.labelled[:3])]
                          .numpy()[:, None, None])
    assert not {f for f in vars(req)} & {"pool_labels", "labels", "test", "oracle", "pool_roi"}


def test_visible_track_shows_pool_masks_in_the_sandbox(cheaters):
    from tests.sandbox.conftest import make_world

    world = make_world(visible=True)
    with ProcessQuerier(world.spec(cheaters.CheatPrivate), world.data()) as q:
        picks = q.query(world.request(0)).indices
    key = cheaters.roi_key(world.pool.roi)
    assert picks.tolist() == cheaters.picks_from_labels(key, world.unlabelled(), world.k).tolist()
    assert picks.tolist() != world.unlabelled()[: world.k].tolist()


def test_explainer_saliency_is_computed_in_the_sandbox_identically():
    """A saliency-based strategy (EG-AL's, when installed; it reads pool masks, so a visible-mask track)
    with the suite's gradcam explainer."""
    import dataclasses

    from tests.sandbox.conftest import make_world
    from xalbench.plugins import load_registry
    from xalbench.sandbox import ComponentRef

    world = make_world(visible=True)
    registry = load_registry()
    if "egal" not in registry.names("strategy"):
        pytest.skip("install it first: pip install -e plugins/xalbench-egal")
    spec = dataclasses.replace(world.spec(registry.get("strategy", "egal")),
                               explainer=ComponentRef.of("explainer", registry.get("explainer", "gradcam")))
    with ProcessQuerier(spec, world.data()) as q:
        in_process = q.query(world.request(0)).indices
    with InlineQuerier(spec, world.data()) as q:
        assert q.query(world.request(0)).indices.tolist() == in_process.tolist()
