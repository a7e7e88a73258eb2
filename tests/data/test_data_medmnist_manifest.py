"""MedMNIST npz loader, generic manifest CSV (masks, box table, group splits), refs, data list/fetch."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

from xalbench.data import catalog
from xalbench.data.manifest import assign_splits
from xalbench.data.medmnist import MedMNIST
from xalbench.data.names import parse_dataset_ref
from xalbench.data.real import ManifestDataset
from xalbench.errors import ConfigError, DataNotFoundError, OptionsError
from xalbench.plugins import load_registry


@pytest.fixture(autouse=True)
def _data_root(tmp_path_factory, monkeypatch):
    """Prepared caches go to a temporary data root, never the user's."""
    monkeypatch.setenv("XALBENCH_DATA", str(tmp_path_factory.getbasetemp() / "data-root"))


def _npz(path, shape_img, label_cols, n=(6, 3, 4), n_classes=3, seed=0):
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, k in zip(("train", "val", "test"), n, strict=True):
        arrays[f"{split}_images"] = rng.integers(0, 256, (k, *shape_img), dtype=np.uint8)
        arrays[f"{split}_labels"] = rng.integers(0, n_classes, (k, label_cols)).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return arrays


@pytest.mark.parametrize("flag, size, shape, cols, expect_shape, task", [
    ("dermamnist", 28, (28, 28, 3), 1, (3, 28, 28), "multi-class"),
    ("pneumoniamnist", 64, (64, 64), 1, (1, 64, 64), "multi-class"),
    ("chestmnist", 28, (28, 28), 14, (1, 28, 28), "multi-label"),
    ("organmnist3d", 28, (28, 28, 28), 1, (1, 28, 28, 28), "multi-class"),
])
def test_medmnist_reads_npz_directly(tmp_path, flag, size, shape, cols, expect_shape, task):
    suffix = "" if size == 28 else f"_{size}"
    raw = _npz(tmp_path / "medmnist" / f"{flag}{suffix}.npz", shape, cols, n_classes=2 if cols > 1 else 3)
    ds = MedMNIST({"flag": flag, "size": size})
    assert ds.available(str(tmp_path))
    b = ds.load(str(tmp_path))
    assert b.meta.task == task and not b.meta.synthetic and not b.meta.has_roi
    assert b.meta.spatial_dims == len(expect_shape) - 1 and b.meta.in_channels == expect_shape[0]
    assert tuple(b.train.images.shape) == (6, *expect_shape) and b.train.roi is None
    assert float(b.test.images.max()) <= 1.0
    assert len(b.val) == 3 and len(b.test) == 4
    if task == "multi-label":
        assert b.train.labels.shape == (6, 14) and str(b.train.labels.dtype) == "torch.float32"
        assert b.meta.num_classes == 14
    else:
        assert np.array_equal(b.train.labels.numpy(), raw["train_labels"][:, 0])
    if flag == "dermamnist":  # N×H×W×3 → N×3×H×W without scrambling pixels
        assert np.allclose(b.train.images[0, 1].numpy(), raw["train_images"][0, :, :, 1] / 255.0)


def test_medmnist_caps_and_errors(tmp_path):
    _npz(tmp_path / "dermamnist.npz", (28, 28, 3), 1, n=(20, 3, 4))
    b = MedMNIST({"flag": "dermamnist", "max_train": 5}).load(str(tmp_path))
    assert len(b.train) == 5
    with pytest.raises(DataNotFoundError, match=r"zenodo\.org.*MD5 [0-9a-f]{32}.*medmnist/bloodmnist_64\.npz"):
        MedMNIST({"flag": "bloodmnist", "size": 64}).load(str(tmp_path))
    with pytest.raises(OptionsError, match="did you mean 'dermamnist'"):
        MedMNIST({"flag": "dermamnst"}).load(str(tmp_path))
    with pytest.raises(OptionsError, match="sizes"):
        MedMNIST({"flag": "organmnist3d", "size": 128}).load(str(tmp_path))


def test_parse_dataset_ref():
    assert parse_dataset_ref("medmnist:dermamnist@64") == ("medmnist", {"flag": "dermamnist", "size": 64})
    assert parse_dataset_ref("medmnist:organmnist3d") == ("medmnist", {"flag": "organmnist3d"})
    assert parse_dataset_ref("manifest:sets/x.csv") == ("manifest", {"path": "sets/x.csv"})
    assert parse_dataset_ref("synth-lesion-2d") == ("synth-lesion-2d", {})
    with pytest.raises(ConfigError):
        parse_dataset_ref("synth-lesion-2d:3")
    with pytest.raises(ConfigError):
        parse_dataset_ref("medmnist:dermamnist@big")


def test_data_fetch_verifies_md5(tmp_path, monkeypatch):
    src = tmp_path / "src" / "dermamnist.npz"
    _npz(src, (28, 28, 3), 1)
    md5 = hashlib.md5(src.read_bytes()).hexdigest()
    monkeypatch.setattr(catalog, "medmnist_file", lambda flag, size: ("dermamnist.npz", src.as_uri(), md5))
    dest = catalog.data_fetch("medmnist:dermamnist", str(tmp_path / "root"))
    assert dest == tmp_path / "root" / "medmnist" / "dermamnist.npz" and dest.read_bytes() == src.read_bytes()
    assert MedMNIST({"flag": "dermamnist"}).available(str(tmp_path / "root"))
    monkeypatch.setattr(catalog, "medmnist_file", lambda flag, size: ("dermamnist.npz", src.as_uri(), "0" * 32))
    with pytest.raises(DataNotFoundError, match="MD5"):
        catalog.data_fetch("medmnist:dermamnist", str(tmp_path / "root2"))
    assert not (tmp_path / "root2" / "medmnist" / "dermamnist.npz").exists()
    monkeypatch.setattr(catalog, "medmnist_file",
                        lambda flag, size: ("dermamnist.npz", (tmp_path / "nope.npz").as_uri(), md5))
    with pytest.raises(DataNotFoundError, match="copy it to"):
        catalog.data_fetch("medmnist:dermamnist", str(tmp_path / "root3"))
    with pytest.raises(DataNotFoundError, match="physionet"):
        catalog.data_fetch("vindr-cxr", str(tmp_path))


def test_data_list_reports_availability_without_loading(tmp_path):
    _npz(tmp_path / "medmnist" / "dermamnist_64.npz", (64, 64, 3), 1)
    rows = {r["name"]: r for r in catalog.data_list(load_registry(), str(tmp_path))}
    assert rows["synth-lesion-2d"]["available"] and rows["synth-lesion-2d"]["synthetic"]
    assert rows["synth-lesion-3d"]["dims"] == 3 and rows["synth-cxr-multilabel"]["task"] == "multi-label"
    assert rows["decoy-digits"]["synthetic"] is True
    assert rows["medmnist:dermamnist"]["available"] and rows["medmnist:dermamnist"]["sizes_present"] == "64"
    assert rows["medmnist:dermamnist"]["license"] == "CC BY-NC 4.0"
    assert rows["medmnist:organmnist3d"]["available"] is False and rows["medmnist:organmnist3d"]["dims"] == 3
    for name in ("vindr-cxr", "siim-covid19", "nih-cxr14", "ham10000", "brats"):
        assert rows[name]["available"] is False and rows[name]["synthetic"] is False
    assert not (tmp_path / "synthetic").exists()  # listing generated nothing


# ------------------------------------------------------------------------------ generic manifest
@pytest.fixture(scope="module")
def manifest_csv(tmp_path_factory, fab):
    root = tmp_path_factory.mktemp("man")
    rng = np.random.default_rng(5)
    rows, boxes = [], []
    for i in range(30):
        img = rng.uniform(0, 40, (40, 40))
        y = i % 3
        img[8 + y * 8:16 + y * 8, 10:30] = 240
        mask = np.zeros((40, 40))
        mask[8 + y * 8:16 + y * 8, 10:30] = 255
        fab.png(root / "img" / f"p{i // 3}_{i}.png", img)
        fab.png(root / "mask" / f"p{i // 3}_{i}.png", mask)
        rows.append({"image_path": f"img/p{i // 3}_{i}.png", "mask_path": f"mask/p{i // 3}_{i}.png" if i % 5 else "",
                     "group_id": f"patient{i // 3}", "label": ["benign", "malignant", "other"][y]})
        for r, dx in (("a", 0), ("b", 2), ("c", 40)):  # rater c draws a box elsewhere (outvoted)
            boxes.append({"image_id": f"p{i // 3}_{i}", "class": "lesion", "x_min": 10 + dx, "y_min": 8 + y * 8,
                          "x_max": 30 + dx, "y_max": 16 + y * 8, "rater_id": r})
    pd.DataFrame(rows).to_csv(root / "manifest.csv", index=False)
    pd.DataFrame(boxes).to_csv(root / "boxes.csv", index=False)
    return root / "manifest.csv"


def test_manifest_csv_masks_groups_and_splits(manifest_csv):
    name, opts = parse_dataset_ref(f"manifest:{manifest_csv}")
    b = load_registry().create("dataset", name, {**opts, "size": 20}).load()
    assert b.meta.class_names == ("benign", "malignant", "other") and b.meta.has_roi
    assert sum(len(s) for s in (b.train, b.val, b.test)) == 30
    sets = [set(s.groups) for s in (b.train, b.val, b.test)]
    assert not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2])
    for s in (b.train, b.val, b.test):
        x, r = s.images[:, 0].numpy(), s.roi.numpy()
        has = r.reshape(len(r), -1).max(1) > 0
        assert bool((s.has_roi.numpy() == has).all())
        assert ((x * r).sum((1, 2))[has] / r.sum((1, 2))[has] > 0.8).all()
    assert int(sum(int((~s.has_roi).sum()) for s in (b.train, b.val, b.test))) == 6  # rows without a mask


def test_manifest_box_table_majority_vote(manifest_csv):
    union = ManifestDataset({"path": str(manifest_csv), "size": 40, "boxes": "boxes.csv"}).load()
    major = ManifestDataset({"path": str(manifest_csv), "size": 40, "boxes": "boxes.csv",
                             "box_fusion": "majority"}).load()
    x = major.train.images[:, 0].numpy()
    r = major.train.roi.numpy()
    assert float(union.train.roi.sum()) > float(major.train.roi.sum()) > 0
    assert ((x * r).sum() / r.sum()) > 0.8  # majority keeps the agreed (bright) region only


def test_manifest_errors(tmp_path, manifest_csv):
    with pytest.raises(DataNotFoundError, match="image_path"):
        ManifestDataset({"path": str(tmp_path / "none.csv")}).load()
    df = pd.DataFrame({"image_path": ["a.png", "b.png"], "group_id": ["g", "g"], "split": ["train", "test"],
                       "label": [0, 1]})
    with pytest.raises(ConfigError, match="more than one split"):
        assign_splits(df, 0.1, 0.2, 0)
    with pytest.raises(DataNotFoundError, match="box table"):
        ManifestDataset({"path": str(manifest_csv), "boxes": "missing.csv"}).load()
