"""The prepared, memory-mapped cache: prepared once and reused, invalidated by source changes,
resumable, identical tensors to the direct loader; mapped views and batch loaders."""

from __future__ import annotations

import json
import os
import pickle

import numpy as np
import pandas as pd
import pytest
import torch

from xalbench.base import Split
from xalbench.data import imageio, prepared
from xalbench.data.loader import batch_loader, seeded_loader
from xalbench.data.mapped import MappedArray, MappedSplit, lazy_take, materialize_split, split_fingerprint
from xalbench.data.medmnist import MedMNIST
from xalbench.data.real import ManifestDataset
from xalbench.errors import DataNotFoundError

N = 30


@pytest.fixture
def manifest(tmp_path, fab):
    """30 PNGs in 15 patients, multi-label, masks on some rows and a box table."""
    rng = np.random.default_rng(7)
    rows, boxes = [], []
    for i in range(N):
        img = rng.uniform(0, 40, (40, 36))
        y = i % 3
        img[8 + y * 8:16 + y * 8, 10:30] = 240
        mask = np.zeros((40, 36))
        mask[8 + y * 8:16 + y * 8, 10:30] = 255
        fab.png(tmp_path / "img" / f"p{i}.png", img)
        fab.png(tmp_path / "mask" / f"p{i}.png", mask)
        rows.append({"image_path": f"img/p{i}.png", "mask_path": f"mask/p{i}.png" if i % 4 else "",
                     "group_id": f"patient{i // 2}", "labels": ["a", "a|b", "c"][y]})
        if i % 3 == 1:
            boxes.append({"image_id": f"p{i}", "class": "b", "x_min": 2, "y_min": 2, "x_max": 9, "y_max": 9})
    pd.DataFrame(rows).to_csv(tmp_path / "m.csv", index=False)
    pd.DataFrame(boxes).to_csv(tmp_path / "boxes.csv", index=False)
    return tmp_path


@pytest.fixture
def count_decodes(monkeypatch):
    calls = {"n": 0}
    real = imageio.read_image

    def counting(*a, **k):
        calls["n"] += 1
        return real(*a, **k)

    monkeypatch.setattr(imageio, "read_image", counting)
    return calls


def _opts(root, **kw):
    return {"path": str(root / "m.csv"), "boxes": "boxes.csv", "size": 24, "val_fraction": 0.2,
            "test_fraction": 0.2, **kw}


def _same(a: Split, b: Split) -> None:
    for f in ("images", "roi", "class_roi"):
        x, y = getattr(a, f), getattr(b, f)
        assert (x is None) == (y is None)
        if x is not None:
            assert torch.equal(x[:] if isinstance(x, MappedArray) else x, y[:] if isinstance(y, MappedArray) else y)
            assert (y[:] if isinstance(y, MappedArray) else y).dtype == torch.float32
    assert torch.equal(a.labels, b.labels) and a.labels.dtype == b.labels.dtype
    assert (a.has_roi is None and b.has_roi is None) or torch.equal(a.has_roi, b.has_roi)
    assert (a.groups is None and b.groups is None) or list(a.groups) == list(b.groups)
    assert a.fingerprint() == b.fingerprint() == split_fingerprint(b)


def test_prepared_once_reused_and_identical_to_direct(manifest, tmp_path, count_decodes):
    root = str(tmp_path / "dr")
    direct = ManifestDataset(_opts(manifest, cache="off")).load(root)
    assert count_decodes["n"] == N and not (tmp_path / "dr" / prepared.CACHE_DIRNAME).exists()
    mapped = ManifestDataset(_opts(manifest, in_memory_mb=0)).load(root)
    assert count_decodes["n"] == 2 * N  # prepared: every image decoded once more, into the cache
    again = ManifestDataset(_opts(manifest, in_memory_mb=0)).load(root)
    assert count_decodes["n"] == 2 * N  # reused: no decode at all
    assert isinstance(again.train.images, MappedArray) and isinstance(again.train.roi, MappedArray)
    for s in ("train", "val", "test"):
        _same(getattr(direct, s), getattr(mapped, s))
        _same(getattr(direct, s), getattr(again, s))
    assert direct.split_hash() == again.split_hash() and direct.meta == again.meta
    small = ManifestDataset(_opts(manifest)).load(root)  # default in_memory_mb: read into RAM, same values
    assert isinstance(small.train.images, torch.Tensor) and small.split_hash() == direct.split_hash()
    assert count_decodes["n"] == 2 * N
    cdir = tmp_path / "dr" / prepared.CACHE_DIRNAME
    (entry,) = [p for p in cdir.iterdir() if p.is_dir()]
    m = json.loads((entry / "manifest.json").read_text())
    assert entry.name.startswith("manifest-m@24") and len(m["content_sha256"]) == 64
    assert np.load(entry / "images.npy", mmap_mode="r").dtype == np.uint8
    assert np.load(entry / "roi.npy").shape[0] < N  # masks stored only for rows that can have one


def test_changed_or_missing_source_invalidates_with_one_line(manifest, tmp_path, count_decodes, capfd, fab):
    root = str(tmp_path / "dr")
    opts = _opts(manifest, in_memory_mb=0)
    before = ManifestDataset(opts).load(root)
    n0 = count_decodes["n"]
    capfd.readouterr()
    fab.png(manifest / "img" / "p3.png", np.full((40, 36), 255.0))  # an image changes
    after = ManifestDataset(opts).load(root)
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "out of date" in err[0] and "p3.png" in err[0] and "changed" in err[0]
    assert count_decodes["n"] == n0 + N
    assert before.split_hash() != after.split_hash()
    os.remove(manifest / "img" / "p5.png")
    with pytest.raises(DataNotFoundError, match="p5.png"):
        ManifestDataset(opts).load(root)
    assert "p5.png is missing" in capfd.readouterr().err


def test_interrupted_preparation_resumes(manifest, tmp_path, monkeypatch):
    ds = ManifestDataset(_opts(manifest))
    plan = ds.make_plan(None)
    root = tmp_path / "cache"
    real = imageio.read_image
    started = {"n": 0}

    def dies_after_ten(*a, **k):  # Ctrl-C in the third chunk of four images
        if started["n"] >= 10:
            raise KeyboardInterrupt
        started["n"] += 1
        return real(*a, **k)

    monkeypatch.setattr(imageio, "read_image", dies_after_ten)
    with pytest.raises(KeyboardInterrupt):
        prepared.prepare(plan, root, n_jobs=1, chunk_rows=4, progress=False)
    state = json.loads((root / f"{plan.dirname}.partial" / "progress.json").read_text())
    assert state["done"] == [0, 1] and not (root / plan.dirname).exists()
    monkeypatch.setattr(imageio, "read_image", real)
    calls = {"n": 0}

    def counting(*a, **k):
        calls["n"] += 1
        return real(*a, **k)

    monkeypatch.setattr(imageio, "read_image", counting)
    out = prepared.prepare(plan, root, n_jobs=1, progress=False)
    assert calls["n"] == N - 8  # the two finished chunks (8 images) are not decoded again
    assert not (root / f"{plan.dirname}.partial").exists()
    direct = prepared.materialize(plan)
    resumed = prepared.load_prepared(out)
    for s in ("train", "val", "test"):
        _same(getattr(direct, s), getattr(resumed, s))


def test_unwritable_data_root_falls_back_to_memory(manifest, tmp_path, monkeypatch, capfd):
    monkeypatch.setattr(prepared, "_writable", lambda root: False)
    b = ManifestDataset(_opts(manifest)).load(str(tmp_path / "ro"))
    assert isinstance(b.train.images, torch.Tensor) and "cannot write" in capfd.readouterr().err


@pytest.mark.slow  # starts worker processes
def test_parallel_preparation_equals_sequential(manifest, tmp_path, monkeypatch):
    monkeypatch.setattr(prepared, "_PARALLEL_MIN_ROWS", 0)
    plan = ManifestDataset(_opts(manifest)).make_plan(None)
    par = prepared.load_prepared(prepared.prepare(plan, tmp_path / "c", n_jobs=2, chunk_rows=5, progress=False))
    assert par.split_hash() == prepared.materialize(plan).split_hash()


# ------------------------------------------------------------------------------ mapped views
@pytest.fixture
def view(tmp_path):
    arr = np.random.default_rng(0).integers(0, 256, (12, 2, 5, 4), dtype=np.uint8)
    np.save(tmp_path / "a.npy", arr)
    ref = torch.from_numpy(arr.astype(np.float32) / np.float32(255))
    return MappedArray(tmp_path / "a.npy"), ref


def test_mapped_array_indexes_like_a_tensor(view):
    m, ref = view
    assert m.shape == ref.shape and m.dtype == torch.float32 and len(m) == 12 and m.dim() == 4
    keys = [3, -1, slice(2, 9), slice(None, None, 3), np.array([5, 1, 1, 7]), torch.tensor([0, 11]),
            [4, 2], torch.tensor(6), np.arange(12) % 2 == 0, (slice(None), 1), (2, 0, slice(1, 3)),
            (np.array([3, 4]), slice(None), 0)]
    for k in keys:
        assert torch.equal(m[k], ref[k]), k
    sub = m.take(np.array([9, 2, 4]))
    assert isinstance(sub, MappedArray) and torch.equal(sub[:], ref[[9, 2, 4]])
    assert torch.equal(sub.take([2, 0])[:], ref[[4, 9]])
    assert isinstance(lazy_take(m, [1, 2]), MappedArray) and torch.equal(lazy_take(ref, [1, 2]), ref[[1, 2]])
    with pytest.raises(IndexError):
        m[12]
    assert float(torch.sum(m, dtype=torch.float64)) == float(torch.sum(ref, dtype=torch.float64))
    assert torch.equal(m.flatten(1).amax(1), ref.flatten(1).amax(1)) and torch.equal(m * 2, ref * 2)
    assert np.array_equal(np.asarray(m), ref.numpy()) and m._version == 0


def test_mapped_array_pickles_by_reference(view):
    m, ref = view
    blob = pickle.dumps(m.take(np.arange(6)))
    assert len(blob) < 1000  # the map is reopened, the pixels are not copied
    assert torch.equal(pickle.loads(blob)[:], ref[:6])


def test_mapped_split_fingerprint_and_lazy_subset(view):
    m, ref = view
    labels = torch.arange(12)
    mapped = MappedSplit(images=m, labels=labels)
    plain = Split(images=ref, labels=labels)
    assert mapped.fingerprint() == plain.fingerprint()
    sub = mapped.subset([3, 1])
    assert isinstance(sub.images, MappedArray) and sub.fingerprint() == plain.subset([3, 1]).fingerprint()
    assert torch.equal(materialize_split(sub).images, ref[[3, 1]])
    assert MappedSplit(images=m, labels=labels, stored_fingerprint="x").fingerprint() == "x"


def test_loaders_are_seeded_and_worker_independent(view):
    m, ref = view
    split = MappedSplit(images=m, labels=torch.arange(12))
    a = [b["index"].tolist() for b in seeded_loader(split, batch_size=5, shuffle=True, seed=3)]
    b = [b["index"].tolist() for b in seeded_loader(split, batch_size=5, shuffle=True, seed=3, num_workers=2)]
    c = [b["index"].tolist() for b in seeded_loader(split, batch_size=5, shuffle=True, seed=4)]
    assert a == b != c and sorted(sum(a, [])) == list(range(12))
    batches = [[7, 2], [0, 11, 5]]
    got = list(batch_loader(split, batches, num_workers=2))
    assert [g["index"].tolist() for g in got] == batches
    assert all(torch.equal(g["images"], ref[idx]) and torch.equal(g["labels"], torch.tensor(idx))
               for g, idx in zip(got, batches, strict=True))


# --------------------------------------------------------------------------------- MedMNIST
def _npz(path, shape, n=(9, 3, 4), cols=1, seed=0):
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, k in zip(("train", "val", "test"), n, strict=True):
        arrays[f"{split}_images"] = rng.integers(0, 256, (k, *shape), dtype=np.uint8)
        arrays[f"{split}_labels"] = rng.integers(0, 2, (k, cols)).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)
    return arrays


@pytest.mark.parametrize("flag, shape, opts", [("dermamnist", (28, 28, 3), {}),
                                              ("dermamnist", (28, 28, 3), {"as_gray": True, "max_train": 5}),
                                              ("organmnist3d", (28, 28, 28), {})])
def test_medmnist_streamed_cache_equals_direct(tmp_path, flag, shape, opts):
    raw = _npz(tmp_path / "medmnist" / f"{flag}.npz", shape)
    direct = MedMNIST({"flag": flag, "cache": "off", **opts}).load(str(tmp_path))
    mapped = MedMNIST({"flag": flag, "in_memory_mb": 0, **opts}).load(str(tmp_path))
    assert isinstance(mapped.train.images, MappedArray)
    for s in ("train", "val", "test"):
        _same(getattr(direct, s), getattr(mapped, s))
    if not opts:
        assert np.allclose(mapped.test.images[2].numpy().reshape(-1),
                           np.moveaxis(raw["test_images"][2], -1, 0).reshape(-1) / 255.0 if shape[-1] == 3
                           else raw["test_images"][2].reshape(-1) / 255.0)


# ------------------------------------------------------------------------------ end to end
RUN_SUITE = """
name = "prepared-vs-direct"
description = "tiny run on a manifest dataset"
seeds = [0]
strategies = ["random", "entropy"]
losses = ["dice"]

[model]
name = "small-cnn"
options = {{ width = 8, n_blocks = 3 }}

[protocol]
base = "aeig"
initial = 8
rounds = 2
query_size = 4

[training]
epochs = 2
batch_size = 8

[[datasets]]
name = "manifest"
label = "m"
options = {{ path = "{csv}", boxes = "boxes.csv", size = 24, val_fraction = 0.2, test_fraction = 0.2, {extra} }}
"""


def _run(tmp_path, manifest, extra: str, out: str, isolation: str = "inline", strategies: str | None = None):
    import xalbench

    (tmp_path / "dr").mkdir(exist_ok=True)
    suite = tmp_path / f"{out}.toml"
    text = RUN_SUITE.format(csv=manifest / "m.csv", extra=extra)
    if strategies is not None:
        text = text.replace('strategies = ["random", "entropy"]', f"strategies = {strategies}")
    suite.write_text(text)
    results = xalbench.run(str(suite), out_dir=str(tmp_path / out), data_root=str(tmp_path / "dr"),
                           isolation=isolation)
    return {r["cell"]["method"]: r for r in results}


def _trajectory(result):
    return [(r["n_labelled"], r.get("queried"), json.dumps(r["metrics"], sort_keys=True)) for r in result["rounds"]]


@pytest.mark.slow
def test_run_on_prepared_mapped_data_equals_run_on_direct_data(manifest, tmp_path):
    direct = _run(tmp_path, manifest, 'cache = "off"', "direct")
    mapped = _run(tmp_path, manifest, "in_memory_mb = 0", "mapped")
    assert set(direct) == set(mapped) and len(direct) == 2
    for method, res in direct.items():
        assert res["status"] == mapped[method]["status"] == "ok", (res.get("error"), mapped[method].get("error"))
        assert _trajectory(res) == _trajectory(mapped[method]), method


@pytest.mark.slow
def test_sandboxed_run_on_a_mapped_pool_equals_run_on_direct_data(manifest, tmp_path, monkeypatch):
    """Process isolation: the sandbox maps the prepared cache (no copy of the pool) and picks bitwise what
    the in-process run on the directly loaded data picks, with every metric equal."""
    from xalbench.sandbox import client

    sent = []
    real_start = client.ProcessQuerier.start

    def start(self):  # the cell data each sandbox receives
        if self._data is not None:
            sent.append(self._data)
        return real_start(self)

    strategies = '["entropy", "badge"]'
    direct = _run(tmp_path, manifest, 'cache = "off"', "direct", strategies=strategies)
    monkeypatch.setattr(client.ProcessQuerier, "start", start)
    mapped = _run(tmp_path, manifest, "in_memory_mb = 0", "mapped-sandbox", isolation="process",
                  strategies=strategies)
    assert sent and all(type(d.pool_images).__name__ == "MappedRef" and type(d.val_images).__name__ == "MappedRef"
                        for d in sent)
    assert set(direct) == set(mapped) and len(direct) == 2
    for method, res in direct.items():
        assert res["status"] == mapped[method]["status"] == "ok", (res.get("error"), mapped[method].get("error"))
        assert mapped[method]["provenance"]["isolation"] == "process"
        assert _trajectory(res) == _trajectory(mapped[method]), method
