"""Blockwise CoreSet, BADGE, MC-dropout scores: bitwise the picks and scores of the unblocked code.

The references below are the whole-pool implementations the blockwise ones replaced (float64
copies of every embedding, one distance matrix per centre chunk, one T×U×K float64 array),
kept verbatim as the specification. Blocks are forced small (one ``ROW_ALIGN`` = 192 rows each) so
pools of ~1000 images cross several block boundaries and end on a partial block.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from xalbench.base import Split
from xalbench.models.small_cnn import SmallCNN
from xalbench.sandbox.context import StrategyContext
from xalbench.strategies import blocks
from xalbench.strategies.bayesian import BALD, MCDropoutEntropy
from xalbench.strategies.diversity import BADGE, CoreSet, labelled_embeddings


def _sq_dist(x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    return ((x * x).sum(1, keepdim=True) + (c * c).sum(1)[None, :] - 2.0 * x @ c.T).clamp_min(0.0)


def reference_coreset(ctx: StrategyContext, n: int, chunk_size: int = 1024) -> np.ndarray:
    x = ctx.cache.embeddings().detach().double()
    u = x.shape[0]
    min_d = torch.full((u,), float("inf"), dtype=torch.float64)
    centres = labelled_embeddings(ctx).double()
    for start in range(0, centres.shape[0], chunk_size):
        min_d = torch.minimum(min_d, _sq_dist(x, centres[start : start + chunk_size]).min(1).values)
    chosen: list[int] = []
    for step in range(n):
        pick = int(ctx.rng.integers(u)) if step == 0 and centres.shape[0] == 0 else int(torch.argmax(min_d))
        chosen.append(pick)
        min_d = torch.minimum(min_d, _sq_dist(x, x[pick : pick + 1]).squeeze(1))
        min_d[pick] = -1.0
    return ctx.unlabelled[np.asarray(chosen, dtype=np.int64)]


def reference_badge(ctx: StrategyContext, n: int) -> np.ndarray:
    e = ctx.cache.embeddings().detach().double()
    p = ctx.cache.probs().detach().double()
    r = p - (p > 0.5).double() if ctx.task == "multi-label" else \
        p - torch.nn.functional.one_hot(p.argmax(1), p.shape[1]).double()
    norms = (r * r).sum(1) * (e * e).sum(1)
    chosen: list[int] = []
    min_d = torch.full_like(norms, float("inf"))
    for step in range(n):
        if step == 0:
            pick = int(torch.argmax(norms))
        else:
            w = min_d.clamp_min(0.0).numpy()
            w[chosen] = 0.0
            pick = int(ctx.rng.choice(len(w), p=w / float(w.sum())))
        chosen.append(pick)
        d = norms + norms[pick] - 2.0 * (r @ r[pick]) * (e @ e[pick])
        min_d = torch.minimum(min_d, d.clamp_min(0.0))
        min_d[pick] = 0.0
    return ctx.unlabelled[np.asarray(chosen, dtype=np.int64)]


def make_ctx(n_pool: int, n_lab: int, *, width: int, task: str = "multi-class", seed: int = 0) -> StrategyContext:
    gen = torch.Generator().manual_seed(seed)
    k = 3 if task == "multi-class" else 4
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = SmallCNN({"width": width, "n_blocks": 2}).build(1, k, 2).eval()
    images = torch.rand(n_pool, 1, 8, 8, generator=gen)
    labels = torch.arange(n_pool) % k if task == "multi-class" else (torch.rand(n_pool, k, generator=gen) > 0.5).float()
    return StrategyContext(
        model=net, pool_images=images, labelled=np.arange(n_lab), labelled_labels=labels[:n_lab], labelled_roi=None,
        labelled_has_roi=None, val=Split(images=images[:8], labels=labels[:8]), task=task, num_classes=k,
        spatial_dims=2, rng=np.random.default_rng(seed), device=torch.device("cpu"), round_index=0, seed=seed,
        batch_size=256)


@pytest.fixture(autouse=True)
def one_thread_small_blocks(monkeypatch):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    monkeypatch.setattr(blocks, "BLOCK_BYTES", 1)  # one ROW_ALIGN per block
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("n_pool, n_lab, width", [(1001, 0, 5), (1000, 250, 8), (777, 60, 3)])
def test_coreset_blockwise_picks_equal_the_whole_pool_picks(n_pool, n_lab, width) -> None:
    picks = CoreSet().query(make_ctx(n_pool, n_lab, width=width), 60)
    assert np.array_equal(picks, reference_coreset(make_ctx(n_pool, n_lab, width=width), 60))


def test_coreset_rows_blocked_against_the_labelled_set_stay_deterministic_and_equal() -> None:
    """``block_mb = 1`` forces 192-row blocks in the labelled distances (the > 16k-image path)."""
    strategy = CoreSet({"block_mb": 1, "chunk_size": 1024})
    assert strategy._rows_per_block(1000, 1024) == 192 and CoreSet()._rows_per_block(1000, 1024) == 1000
    picks = strategy.query(make_ctx(1000, 300, width=8), 40)
    assert np.array_equal(picks, strategy.query(make_ctx(1000, 300, width=8), 40))
    assert np.array_equal(picks, reference_coreset(make_ctx(1000, 300, width=8), 40))


@pytest.mark.parametrize("task, n_pool, width", [("multi-class", 1001, 5), ("multi-label", 900, 8)])
def test_badge_blockwise_picks_equal_the_whole_pool_picks(task, n_pool, width) -> None:
    picks = BADGE().query(make_ctx(n_pool, 50, width=width, task=task, seed=3), 50)
    assert np.array_equal(picks, reference_badge(make_ctx(n_pool, 50, width=width, task=task, seed=3), 50))


@pytest.mark.parametrize("cls", [BALD, MCDropoutEntropy])
@pytest.mark.parametrize("task", ["multi-class", "multi-label"])
def test_mc_dropout_blockwise_scores_are_bitwise_the_whole_pool_scores(cls, task) -> None:
    ctx = make_ctx(1001, 20, width=4, task=task, seed=1)
    strategy = cls({"n_samples": 7})
    blocked = strategy.scores(ctx)
    whole = strategy.score(ctx.cache.mc_probs(7).double(), task == "multi-label")
    assert blocked.dtype == torch.float64 and torch.equal(blocked, whole)


def test_row_blocks_are_aligned_and_cover_the_pool(monkeypatch) -> None:
    monkeypatch.setattr(blocks, "BLOCK_BYTES", 500 * 8 * 4)  # 500 rows of width 4
    cuts = list(blocks.row_blocks(1000, 4))
    assert [(s.start, s.stop) for s in cuts] == [(0, 384), (384, 768), (768, 1000)]
    assert [(s.start, s.stop) for s in blocks.row_blocks(100, 10**6)] == [(0, 100)]
