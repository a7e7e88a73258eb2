"""A pool in a prepared, memory-mapped cache goes to the sandbox by reference: no copy, mapped
read-only there, never the labels; the sandbox's picks are bitwise those on the same pool in memory."""

from __future__ import annotations

import hashlib
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.sandbox.conftest import World, make_world
from tests.sandbox.mapped_helpers import FileRewriter, ScanPool, SegfaultWriter, WriteThroughView, write_cache
from xalbench.base import Split
from xalbench.data.mapped import MappedArray, MappedSplit
from xalbench.errors import StrategyContractError
from xalbench.sandbox import InlineQuerier, MappedRef, ProcessQuerier, digest, make_cell_data
from xalbench.strategies.bayesian import BALD
from xalbench.strategies.diversity import BADGE, CoreSet
from xalbench.strategies.uncertainty import EntropySampling


def private_anonymous_bytes(pid: int) -> int:
    """Private dirty bytes of ``pid``'s anonymous mappings (heap, arenas, copies) — not file pages, which
    count as "private dirty" too while a just-written file is still dirty in the page cache."""
    total, file_backed = 0, False
    with open(f"/proc/{pid}/smaps") as fh:
        for line in fh:
            parts = line.split()
            if parts and "-" in parts[0] and not parts[0].endswith(":"):
                file_backed = len(parts) > 5 and parts[5].startswith("/")
            elif parts and parts[0] == "Private_Dirty:" and not file_backed:
                total += int(parts[1]) * 1024
    return total


def _mapped_world(tmp_path: Path, n_pool: int = 48) -> tuple[World, World]:
    """The same cell twice: pool images in a mapped cache, and the very same values in memory."""
    world = make_world(n_pool)
    view = write_cache(tmp_path / "cache", world.pool.images, world.pool.labels)
    p = world.pool
    mapped = MappedSplit(images=view, labels=p.labels, roi=p.roi, has_roi=p.has_roi)
    in_memory = Split(images=view[:], labels=p.labels, roi=p.roi, has_roi=p.has_roi)
    return World(pool=mapped, val=world.val, model=world.model, labelled=world.labelled), \
        World(pool=in_memory, val=world.val, model=world.model, labelled=world.labelled)


def _two_rounds(querier, world: World) -> list[list[int]]:
    first = querier.query(world.request(0)).indices
    second = querier.query(world.request(1, np.concatenate([world.labelled, first]))).indices
    return [first.tolist(), second.tolist()]


def test_a_mapped_pool_is_sent_by_reference(tmp_path):
    mapped, _ = _mapped_world(tmp_path)
    data = mapped.data()
    ref = data.pool_images
    assert isinstance(ref, MappedRef) and not any(isinstance(v, np.ndarray) and v.shape == (48, 1, 16, 16)
                                                  for v in vars(data).values())
    assert Path(ref.path).name == "images.npy" and ref.shape == (48, 1, 16, 16) and data.n_pool == 48
    assert len(pickle.dumps(ref)) < 2000  # path, rows and identity; no pixel
    sent = tmp_path / "sent"
    data.save(sent)
    assert sorted(p.name for p in sent.iterdir()) == sorted(
        ["pool_images.index.npy", "pool_images.ref.json", "val_images.npy", "val_labels.npy", "val_roi.npy",
         "val_has_roi.npy", "visible"])
    assert "labels" not in (sent / "pool_images.ref.json").read_text()
    assert digest(mapped.pool.images) == digest(ref)  # a view and its reference have one identity


@pytest.mark.parametrize("cls", (EntropySampling, CoreSet, BADGE, BALD), ids=lambda c: c.name)
def test_sandbox_on_a_mapped_pool_picks_bitwise_like_in_memory(cls, tmp_path):
    mapped, in_memory = _mapped_world(tmp_path)
    with ProcessQuerier(mapped.spec(cls), mapped.data()) as q:
        process = _two_rounds(q, mapped)
    with InlineQuerier(mapped.spec(cls), mapped.data()) as q:
        inline = _two_rounds(q, mapped)
    with ProcessQuerier(in_memory.spec(cls), in_memory.data()) as q:
        copied = _two_rounds(q, in_memory)
    assert process == inline == copied


def test_sandbox_maps_the_pool_read_only_without_a_copy_and_never_the_labels(tmp_path):
    """24 000 images of 64×64: 375 MiB as float32, 94 MiB stored. The sandbox reads all of them in
    batches; its private (anonymous) memory stays far below the float32 pool, its map of the images file has no
    write permission, and the cache's labels file is neither mapped nor open."""
    world = make_world(12)
    n = 24_000
    images = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (n, 1, 64, 64), dtype=np.uint8)).float() / 255
    labels = torch.arange(n) % 3
    view = write_cache(tmp_path / "cache", images, labels)
    del images
    pool = MappedSplit(images=view, labels=labels)
    labelled = np.arange(10)
    world = World(pool=pool, val=world.val, model=world.model, labelled=labelled, k=5)
    data = make_cell_data(pool, world.val, pool_masks_visible=False)
    with ProcessQuerier(world.spec(ScanPool), data) as q:
        picks = q.query(world.request(0)).indices
        pid = q.pid
        private = private_anonymous_bytes(pid)
        maps = Path(f"/proc/{pid}/maps").read_text().splitlines()
        fds = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
    means = view[:].flatten(1).mean(1).double().numpy()  # the parent reads it whole (test only)
    unl = np.setdiff1d(np.arange(n), labelled)
    assert picks.tolist() == unl[np.argsort(-means[unl], kind="stable")[:5]].tolist()
    assert private < 0.15 * view.nbytes, (private, view.nbytes)  # a private copy alone would be ≥ 1×
    image_maps = [line for line in maps if line.endswith(str(tmp_path / "cache" / "images.npy"))]
    assert image_maps and all("w" not in line.split()[1] for line in image_maps)
    assert not any("labels.npy" in line for line in maps + fds)


@pytest.mark.parametrize("cls, rule", [(WriteThroughView, None), (SegfaultWriter, "crash"),
                                       (FileRewriter, "pool-mutated")], ids=lambda v: getattr(v, "name", v))
def test_the_sandbox_cannot_write_the_map(cls, rule, tmp_path):
    mapped, _ = _mapped_world(tmp_path)
    path = Path(mapped.pool.images.path)
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    with ProcessQuerier(mapped.spec(cls), mapped.data()) as q:
        if rule is None:  # every write through the view or its map is refused
            assert q.query(mapped.request(0)).indices.tolist() == mapped.unlabelled()[: mapped.k].tolist()
        else:
            with pytest.raises(StrategyContractError) as err:
                q.query(mapped.request(0))
            assert err.value.rule == rule
    if rule != "pool-mutated":  # only a rewrite of the file on disk changes it, and that fails the cell
        assert hashlib.sha256(path.read_bytes()).hexdigest() == before


def test_a_reference_to_a_changed_cache_file_fails_to_open(tmp_path):
    mapped, _ = _mapped_world(tmp_path)
    data = mapped.data()
    assert isinstance(data.pool_images.open(), MappedArray)
    path = Path(data.pool_images.path)
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000_000))
    with pytest.raises(OSError, match="changed since the cell started"):
        data.pool_images.open()
    with pytest.raises(StrategyContractError, match="changed since the cell started"):
        with InlineQuerier(mapped.spec(EntropySampling), data) as q:
            q.query(mapped.request(0))
