"""The harness on a mapped (prepared-cache) pool: the pool cache, the strategy context, evaluation and
training read it batch by batch — never whole — and give bitwise what they give on the same values in
memory; the guard identifies a mapped pool by its file, not by a pass over its pixels."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.sandbox.mapped_helpers import write_cache
from xalbench.base import Split
from xalbench.data import mapped_pool
from xalbench.data.mapped import MappedArray, MappedSplit
from xalbench.errors import StrategyContractError
from xalbench.harness import evaluation
from xalbench.losses.ce import CrossEntropyLoss
from xalbench.models.small_cnn import SmallCNN
from xalbench.sandbox.context import StrategyContext
from xalbench.sandbox.guard import call_strategy, pool_checksum
from xalbench.sandbox.pool_cache import PoolCache
from xalbench.suite import TrainingSpec
from xalbench.testing.contexts import default_explainer, make_split
from xalbench.training.epochs import train_round

CPU = torch.device("cpu")


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The row count of every read of a mapped view."""
    sizes: list[int] = []
    real = MappedArray.read

    def counting(self: MappedArray, rows: np.ndarray) -> np.ndarray:
        sizes.append(len(rows))
        return real(self, rows)

    monkeypatch.setattr(MappedArray, "read", counting)
    return sizes


def _pair(tmp_path: Path, split: Split, name: str = "c") -> tuple[MappedSplit, Split]:
    """``split`` with mapped images (and mapped ROIs/class ROIs when present), and the same values in memory."""
    view = write_cache(tmp_path / name, split.images)
    maps = {f: write_cache(tmp_path / f"{name}-{f}", getattr(split, f)) if getattr(split, f) is not None else None
            for f in ("roi", "class_roi")}
    mapped = MappedSplit(images=view, labels=split.labels, roi=maps["roi"], has_roi=split.has_roi,
                         class_roi=maps["class_roi"])
    memory = Split(images=view[:], labels=split.labels, roi=None if maps["roi"] is None else maps["roi"][:],
                   has_roi=split.has_roi,
                   class_roi=None if maps["class_roi"] is None else maps["class_roi"][:])
    return mapped, memory


def _net(num_classes: int = 3, spatial_dims: int = 2) -> torch.nn.Module:
    torch.manual_seed(0)
    net = SmallCNN({"width": 4, "n_blocks": 2, "dropout": 0.25}).build(1, num_classes, spatial_dims)
    with torch.no_grad():
        net.classifier.weight.mul_(8.0)
    return net.train()


@pytest.mark.parametrize("task, dims", [("multi-class", 2), ("multi-label", 2), ("multi-class", 3)])
def test_pool_cache_on_a_mapped_pool_is_bitwise_the_in_memory_cache(tmp_path, reads, task, dims):
    split = make_split(37, task=task, num_classes=3, spatial_dims=dims, seed=1)
    mapped, memory = _pair(tmp_path, split)
    reads.clear()
    net = _net(3, dims)
    kw = {"task": task, "explainer": default_explainer(), "device": CPU, "batch_size": 8, "seed": 5}
    ref = PoolCache(net, memory.images, **kw)
    lazy = PoolCache(net, mapped.images, **kw, feature_bytes=0)  # activations never kept: recomputed per batch
    for name in ("logits", "probs", "embeddings", "predictions"):
        assert torch.equal(getattr(ref, name)(), getattr(lazy, name)()), name
    assert "features" not in lazy._store and "features" in ref._store
    assert torch.equal(ref.embeddings(), net.embed(ref.features()))  # the one-call formula of before
    assert torch.equal(ref.saliency("pred"), lazy.saliency("pred"))
    assert torch.equal(ref.saliency("all"), lazy.saliency("all"))
    assert torch.equal(ref.mc_probs(4), lazy.mc_probs(4))
    assert "features" not in lazy._store and torch.equal(ref.features(), lazy.features())
    assert reads and max(reads) <= 8  # never more than one batch at a time


def test_context_views_of_a_mapped_pool_stay_lazy(tmp_path, reads):
    split = make_split(30, task="multi-class", num_classes=3, spatial_dims=2, seed=2)
    mapped, memory = _pair(tmp_path, split)
    reads.clear()
    labelled = np.array([3, 7, 11, 20])

    def ctx(pool: Split) -> StrategyContext:
        return StrategyContext(model=_net(), pool_images=pool.images, labelled=labelled,
                               labelled_labels=pool.labels[labelled], labelled_roi=None, labelled_has_roi=None,
                               val=memory, task="multi-class", num_classes=3, spatial_dims=2,
                               rng=np.random.default_rng(0), device=CPU, round_index=0, seed=1, explainer=None,
                               pool_roi=pool.roi, pool_has_roi=pool.has_roi, pool_masks_visible=True, batch_size=8)

    lazy, ref = ctx(mapped), ctx(memory)
    assert reads == []  # building the context reads nothing
    for name in ("unlabelled_images", "pool_roi"):
        view = getattr(lazy, name)
        assert isinstance(view, MappedArray) and torch.equal(view[:], getattr(ref, name)), name
    assert torch.equal(lazy.cache.probs(), ref.cache.probs())


def test_guard_identifies_a_mapped_pool_by_its_file(tmp_path, monkeypatch):
    split = make_split(20, task="multi-class", num_classes=3, spatial_dims=2, seed=3)
    mapped, _ = _pair(tmp_path, split)
    view = mapped.images
    monkeypatch.setattr(MappedArray, "read", lambda self, rows: pytest.fail("the checksum read pixels"))
    first = pool_checksum(view)
    assert pool_checksum(view) == first
    path = Path(view.path)
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000_000))
    assert pool_checksum(view) != first
    assert pool_checksum(view.take(np.arange(10))) != pool_checksum(view.take(np.arange(1, 11)))


def test_a_strategy_that_rewrites_the_cache_file_fails_pool_mutated(tmp_path):
    split = make_split(20, task="multi-class", num_classes=3, spatial_dims=2, seed=3)
    mapped, memory = _pair(tmp_path, split)
    labelled = np.array([0, 1])

    class Rewriter:
        name = "rewriter"

        def query(self, ctx: StrategyContext, k: int) -> np.ndarray:
            with open(ctx.pool_images.path, "ab") as fh:
                fh.write(b"\0")
            return ctx.unlabelled[:k]

    ctx = StrategyContext(model=_net(), pool_images=mapped.images, labelled=labelled,
                          labelled_labels=mapped.labels[labelled], labelled_roi=None, labelled_has_roi=None,
                          val=memory, task="multi-class", num_classes=3, spatial_dims=2,
                          rng=np.random.default_rng(0), device=CPU, round_index=0, seed=1)
    with pytest.raises(StrategyContractError) as err:
        call_strategy(Rewriter(), ctx, 3, timeout=30)
    assert err.value.rule == "pool-mutated"


@pytest.mark.parametrize("task, class_roi, target", [("multi-class", False, "label"), ("multi-class", False, "pred"),
                                                     ("multi-label", True, "label"), ("multi-label", False, "label")])
def test_evaluation_reads_roi_images_in_batches_bitwise(tmp_path, reads, task, class_roi, target):
    split = make_split(29, task=task, num_classes=3, spatial_dims=2, seed=4)
    if class_roi:  # one mask per finding: the union ROI where the finding is present
        croi = split.roi[:, None].repeat(1, 3, 1, 1) * (split.labels[:, :, None, None] > 0.5)
        split = Split(images=split.images, labels=split.labels, roi=split.roi, has_roi=split.has_roi, class_roi=croi)
    mapped, memory = _pair(tmp_path, split)
    reads.clear()
    net = _net().eval()
    kw = {"task": task, "num_classes": 3, "spatial_dims": 2, "explainer": default_explainer(), "target": target,
          "device": CPU, "batch_size": 8}
    ref, lazy = evaluation.TestEvaluation(net, memory, **kw), evaluation.TestEvaluation(net, mapped, **kw)
    assert np.array_equal(ref.probs, lazy.probs)
    (maps_a, roi_a), (maps_b, roi_b) = ref.roi_pairs(), lazy.roi_pairs()
    assert torch.equal(maps_a, maps_b) and torch.equal(roi_a, roi_b) and len(maps_a) > 8
    assert max(reads) <= 8


def _train(split: Split, labelled: np.ndarray) -> dict[str, torch.Tensor]:
    net = _net()
    spec = TrainingSpec(epochs=2, batch_size=5, min_steps=0)
    gen = torch.Generator().manual_seed(3)
    torch.manual_seed(4)
    train_round(net, CrossEntropyLoss(), split.subset(labelled), np.arange(len(labelled)),
                np.ones(len(labelled), bool), spec, "multi-class", gen, CPU)
    return net.state_dict()


@pytest.mark.parametrize("workers", ["0", "2"])
def test_training_on_a_mapped_pool_is_bitwise_the_in_memory_training(tmp_path, monkeypatch, workers):
    split = make_split(40, task="multi-class", num_classes=3, spatial_dims=2, seed=6)
    mapped, memory = _pair(tmp_path, split)
    labelled = np.random.default_rng(0).choice(40, 16, replace=False)  # 16 = 3 batches of 5 + a lone sample
    ref = _train(memory, labelled)
    monkeypatch.setenv(mapped_pool.LOADER_WORKERS_ENV, workers)
    got = _train(mapped, labelled)
    assert isinstance(mapped.subset(labelled).images, MappedArray)
    assert ref.keys() == got.keys() and all(torch.equal(ref[k], got[k]) for k in ref)


def test_read_batches_with_workers_return_the_same_batches_in_order(tmp_path):
    view = write_cache(tmp_path / "c", torch.rand(23, 1, 6, 6))
    batches = [np.array([5, 1]), np.array([22, 0, 7]), np.array([3]), np.arange(8, 20)]
    plain = list(mapped_pool.read_batches(view, batches, workers=0))
    ahead = list(mapped_pool.read_batches(view, batches, workers=2))
    assert all(torch.equal(a, b) and torch.equal(a, view[:][torch.as_tensor(i)])
               for a, b, i in zip(plain, ahead, batches, strict=True))
    assert [len(b) for b in mapped_pool.iter_batches(view, 10)] == [10, 10, 3]


def test_loader_workers_setting_is_checked(monkeypatch):
    monkeypatch.setenv(mapped_pool.LOADER_WORKERS_ENV, "two")
    with pytest.raises(ValueError, match="XALBENCH_LOADER_WORKERS must be a whole number"):
        mapped_pool.loader_workers()
    monkeypatch.setenv(mapped_pool.LOADER_WORKERS_ENV, "3")
    assert mapped_pool.loader_workers() == 3
