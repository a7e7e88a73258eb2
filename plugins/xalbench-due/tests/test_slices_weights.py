"""Hand checks of DUE's slice bookkeeping and weight mapping (reference values from the public code)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from xalbench_due.slices import Block, blocks, fill_schedule, linspace_positions, nearest_fill, triplets
from xalbench_due.weights import block_weights, flipped_sigmoid_minmax


def test_linspace_positions_match_the_public_code():
    assert linspace_positions(64, 4).tolist() == [0, 21, 42, 63]
    assert linspace_positions(16, 6).tolist() == [0, 3, 6, 9, 12, 15]
    with pytest.raises(ValueError, match="org_depth"):
        linspace_positions(4, 8)


def test_weight_mapping_by_hand():
    w = flipped_sigmoid_minmax(torch.tensor([0.0, 1.0, 2.0, 3.0]))
    assert w.tolist() == pytest.approx([1.0, 0.4895, 0.1586, 0.0], abs=1e-4)


def test_constant_variance_block_zero_as_coded_one_by_default():
    var = torch.full((3, 4, 4), 0.2)
    assert torch.equal(flipped_sigmoid_minmax(var, constant_block="zero"), torch.zeros_like(var))
    assert torch.equal(flipped_sigmoid_minmax(var, constant_block="one"), torch.ones_like(var))


def test_block_weights_min_max_per_block_and_annotated_slices_one():
    depth = 7
    pos = np.array([0, 3, 6])
    var = torch.zeros(depth, 2, 2)
    var[1:3] = torch.tensor([0.0, 1.0])[:, None, None].expand(2, 2, 2)  # block 1: variances 0 and 1
    var[4:6] = torch.tensor([0.0, 0.01])[:, None, None].expand(2, 2, 2)  # block 2: much smaller spread
    var[[0, 3, 6]] = 5.0  # annotated slices: whatever the variance, weight 1
    w = block_weights(var, blocks(pos, depth), pos)
    assert torch.equal(w[[0, 3, 6]], torch.ones(3, 2, 2))
    # per block, not global: each block spans ≈[0, 1] on its own
    for lo in (1, 4):
        assert float(w[lo].min()) == pytest.approx(1.0, abs=1e-3) and float(w[lo + 1].max()) == pytest.approx(0.0)


def test_blocks_gaps_heads_and_tails():
    assert blocks(np.array([2, 5, 6, 9]), 11) == [
        Block("head", 0, 1, None, 2), Block("gap", 3, 4, 2, 5), Block("gap", 7, 8, 6, 9), Block("tail", 10, 10, 9, None)]
    assert blocks(np.array([0, 21, 42, 63]), 64)[0] == Block("gap", 1, 20, 0, 21)
    assert blocks(np.array([], dtype=int), 5) == []


def test_fill_schedule_is_autoregressive_and_covers_every_missing_slice_once():
    pos = np.array([2, 9, 12])
    depth = 15
    known = set(pos.tolist())
    seen = []
    for level in fill_schedule(blocks(pos, depth)):
        for step in level:  # every context exists before the step (annotated or sampled at an earlier level)
            assert all(c in known for c in (step.prev, step.next) if c is not None)
        for step in level:
            known.add(step.target)
            seen.append(step.target)
    assert sorted(seen) == sorted(set(range(depth)) - set(pos.tolist())) and len(seen) == len(set(seen))
    first = fill_schedule(blocks(np.array([0, 8]), 9))[0]
    assert [(s.target, s.prev, s.next) for s in first] == [(4, 0, 8)]  # bisection: the middle first


def test_nearest_fill_and_triplets():
    roi = torch.zeros(7, 2, 2)
    roi[1] = 1.0
    roi[4, 0, 0] = 1.0
    pos = np.array([1, 4, 6])
    filled = nearest_fill(roi, pos)
    assert torch.equal(filled[0], roi[1]) and torch.equal(filled[2], roi[1])
    assert torch.equal(filled[3], roi[4]) and torch.equal(filled[5], roi[4])  # tie (4 and 6) → earlier
    p, m, n = triplets(roi, pos)
    assert p.shape == (1, 2, 2) and torch.equal(p[0], roi[1]) and torch.equal(m[0], roi[4]) and torch.equal(n[0], roi[6])
    assert triplets(roi, np.array([1, 4]))[0].shape[0] == 0
