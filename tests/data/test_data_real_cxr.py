"""RSNA Pneumonia, SIIM-ACR Pneumothorax (and its run-length masks) and CheXpert on fabricated files
in the published formats, quirks included."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from xalbench.data import catalog
from xalbench.data.real import CheXpert, RSNAPneumonia, SIIMPneumothorax
from xalbench.data.rle import rle_decode, rle_decode_union, rle_encode
from xalbench.errors import ConfigError, DataNotFoundError
from xalbench.plugins import load_registry

SMALL = {"size": 32, "val_fraction": 0.25, "test_fraction": 0.25}


@pytest.fixture(autouse=True)
def _data_root(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("XALBENCH_DATA", str(tmp_path_factory.getbasetemp() / "data-root"))


def _roi_brighter(split) -> bool:
    x, r = split.images[:, 0].numpy(), split.roi.numpy()
    sel = r.reshape(len(r), -1).max(1) > 0
    x, r = x[sel], r[sel]
    inside = (x * r).sum((1, 2)) / r.sum((1, 2))
    outside = (x * (1 - r)).sum((1, 2)) / (1 - r).sum((1, 2))
    return bool(sel.any() and (inside > outside + 0.3).all())


def _disjoint_groups(b) -> bool:
    sets = [set(s.groups.tolist()) for s in (b.train, b.val, b.test)]
    return not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2])


# ------------------------------------------------------------------------------------ RLE
def test_rle_decoder_on_a_hand_made_mask():
    # 4 rows × 3 columns; pixels (row 0, col 1), (row 1, col 1), (row 3, col 2).
    mask = np.zeros((4, 3), dtype=np.uint8)
    mask[0, 1] = mask[1, 1] = mask[3, 2] = 1
    # column-major positions p = col * H + row: 4, 5 and 11 → runs (4, 2) and (11, 1);
    # the second start counts from the end of the first run (6): 11 - 6 = 5.
    assert np.array_equal(rle_decode("4 2 5 1", (4, 3)), mask)
    assert rle_encode(mask) == "4 2 5 1"
    assert np.array_equal(rle_decode("4 2 11 1", (4, 3), relative=False), mask)
    assert rle_encode(np.zeros((4, 3))) == "-1" and not rle_decode(" -1", (4, 3)).any()


def test_rle_orientation_matches_the_organisers_decoder():
    """The published decoder fills a W×H array row by row, then transposes it."""
    rng = np.random.default_rng(3)
    h, w = 12, 7
    mask = (rng.random((h, w)) > 0.6).astype(np.uint8)
    text = rle_encode(mask)
    vals = [int(v) for v in text.split()]
    flat, pos = np.zeros(w * h, np.uint8), 0
    for start, length in zip(vals[0::2], vals[1::2], strict=True):
        pos += start
        flat[pos:pos + length] = 1
        pos += length
    published = flat.reshape(w, h).T
    assert np.array_equal(published, mask) and np.array_equal(rle_decode(text, (h, w)), mask)
    assert not np.array_equal(rle_decode(text, (h, w)), flat.reshape(h, w)) or np.array_equal(mask, mask.T)
    with pytest.raises(ValueError, match="past the end"):
        rle_decode("80 10", (h, w))
    with pytest.raises(ValueError, match="odd"):
        rle_decode("3 1 4", (h, w))


def test_rle_union_of_several_rows():
    a, b = np.zeros((6, 5), np.uint8), np.zeros((6, 5), np.uint8)
    a[1:3, 1], b[4, 2:5] = 1, 1
    assert np.array_equal(rle_decode_union([rle_encode(a), rle_encode(b)], (6, 5)), a | b)


# ----------------------------------------------------------------------------- RSNA Pneumonia
@pytest.fixture(scope="module")
def rsna_root(tmp_path_factory, fab):
    root = tmp_path_factory.mktemp("rsna") / "rsna-pneumonia"
    rng = np.random.default_rng(1)
    rows, detail = [], []
    for i in range(16):
        pid = f"{i:08x}-aaaa-4bbb-8ccc-{i:012x}"
        boxes = [(8, 10, 14, 12), (40, 30, 12, 16)] if i % 4 == 0 else [(20, 20, 16, 16)] if i % 4 == 1 else []
        img = fab.boxes(64, 64, [(x, y, x + w, y + h) for x, y, w, h in boxes], rng)
        fab.dicom(root / "stage_2_train_images" / f"{pid}.dcm", img)
        if boxes:
            for x, y, w, h in boxes:  # one row per box: a patient repeats
                rows.append(f"{pid},{float(x)},{float(y)},{float(w)},{float(h)},1")
                detail.append(f"{pid},Lung Opacity")
        else:
            rows.append(f"{pid},,,,,0")
            detail.append(f"{pid},{'Normal' if i % 2 else 'No Lung Opacity / Not Normal'}")
    rows.append("ffffffff-0000-4000-8000-000000000000,,,,,0")  # listed but image not downloaded
    (root / "stage_2_train_labels.csv").write_text("patientId,x,y,width,height,Target\n" + "\n".join(rows) + "\n")
    (root / "stage_2_detailed_class_info.csv").write_text("patientId,class\n" + "\n".join(detail) + "\n")
    (root / "stage_2_test_images").mkdir()
    return root


def test_rsna_one_image_per_patient_with_union_of_boxes(rsna_root):
    b = RSNAPneumonia({**SMALL, "path": str(rsna_root)}).load()
    assert b.meta.class_names == ("No Lung Opacity", "Lung Opacity") and b.meta.has_roi and not b.meta.synthetic
    assert sum(len(s) for s in (b.train, b.val, b.test)) == 16  # duplicates collapsed, missing image dropped
    assert _disjoint_groups(b)
    for s in (b.train, b.val, b.test):
        assert bool((s.has_roi == (s.labels == 1)).all())
        assert _roi_brighter(s)
    two = [s for s in (b.train, b.val, b.test) for i in range(len(s)) if s.groups[i].startswith("00000000")]
    assert two  # patient 0 has two boxes: both regions are in its mask
    s = next(sp for sp in (b.train, b.val, b.test) if "00000000-aaaa-4bbb-8ccc-000000000000" in set(sp.groups))
    r = s.roi[int(np.flatnonzero(s.groups == "00000000-aaaa-4bbb-8ccc-000000000000")[0])]
    assert float(r[:12, :12].sum()) > 0 and float(r[16:, 20:].sum()) > 0


def test_rsna_detailed_classes(rsna_root):
    b = RSNAPneumonia({**SMALL, "path": str(rsna_root), "classes": "detailed"}).load()
    assert b.meta.class_names == ("Normal", "No Lung Opacity / Not Normal", "Lung Opacity")
    counts = np.bincount(np.concatenate([s.labels.numpy() for s in (b.train, b.val, b.test)]), minlength=3)
    assert counts.tolist() == [4, 4, 8]


# ------------------------------------------------------------------------- SIIM-ACR Pneumothorax
@pytest.fixture(scope="module")
def siim_root(tmp_path_factory, fab):
    root = tmp_path_factory.mktemp("siim") / "siim-acr-pneumothorax"
    rng = np.random.default_rng(2)
    h, w = 48, 64  # not square: a row-major decoder would put the mask elsewhere
    lines = []
    for i in range(14):
        uid = f"1.2.276.0.7230010.3.1.4.8323329.{1000 + i}.1517875{i:03d}.{900000 + i}"
        masks = []
        if i % 2 == 0:
            a = np.zeros((h, w), np.uint8)
            a[4:14, 40:60] = 1  # top right
            masks.append(a)
            if i % 4 == 0:  # a second row for the same image: a second mask
                c = np.zeros((h, w), np.uint8)
                c[30:44, 6:16] = 1  # bottom left
                masks.append(c)
        img = rng.uniform(100, 400, (h, w))
        for m in masks:
            img[m > 0] = 3000
        fab.dicom(root / "dicom-images-train" / f"1.2.276.0.{i}" / f"1.2.276.1.{i}" / f"{uid}.dcm", img)
        lines += [f"{uid}, {rle_encode(m)}" for m in masks] or [f"{uid}, -1"]
    (root / "train-rle.csv").write_text("ImageId, EncodedPixels\n" + "\n".join(lines) + "\n")
    return root


def test_siim_acr_rle_masks_orientation_and_union(siim_root):
    b = SIIMPneumothorax({**SMALL, "path": str(siim_root)}).load()
    assert b.meta.class_names == ("No pneumothorax", "Pneumothorax") and b.meta.has_roi
    assert sum(len(s) for s in (b.train, b.val, b.test)) == 14
    for s in (b.train, b.val, b.test):
        assert bool((s.has_roi == (s.labels == 1)).all())
        assert _roi_brighter(s)
    both = [s.roi[i] for s in (b.train, b.val, b.test) for i in range(len(s))
            if s.groups[i].split(".")[-3] in ("1000", "1004", "1008", "1012")]
    assert len(both) == 4 and all(float(r[:10, 20:].sum()) > 0 and float(r[20:, :12].sum()) > 0 for r in both)


def test_siim_acr_absolute_option_changes_the_decoding(siim_root):
    rel = SIIMPneumothorax({**SMALL, "path": str(siim_root), "cache": "off"}).load()
    ab = SIIMPneumothorax({**SMALL, "path": str(siim_root), "rle_starts": "absolute", "cache": "off"}).load()
    assert torch.equal(rel.train.images, ab.train.images) and not torch.equal(rel.train.roi, ab.train.roi)
    assert not _roi_brighter(ab.train)  # relative starts read as absolute put the masks elsewhere


# -------------------------------------------------------------------------------------- CheXpert
OBS = ("No Finding", "Enlarged Cardiomediastinum", "Cardiomegaly", "Lung Opacity", "Lung Lesion", "Edema",
       "Consolidation", "Pneumonia", "Atelectasis", "Pneumothorax", "Pleural Effusion", "Pleural Other", "Fracture",
       "Support Devices")


@pytest.fixture(scope="module")
def chexpert_root(tmp_path_factory, fab):
    outer = tmp_path_factory.mktemp("cx") / "chexpert"
    folder = outer / "CheXpert-v1.0-small"
    rng = np.random.default_rng(5)
    header = "Path,Sex,Age,Frontal/Lateral,AP/PA," + ",".join(OBS)
    train, valid = [header], [header]
    for p in range(8):
        for view in ("frontal", "lateral"):
            rel = f"train/patient{p:05d}/study1/view{1 if view == 'frontal' else 2}_{view}.jpg"
            fab.png(folder / rel, rng.uniform(0, 255, (40, 32)))
            vals = [""] * 14
            vals[2] = ["1.0", "0.0", "-1.0", ""][p % 4]  # Cardiomegaly: 1 / 0 / uncertain / blank
            vals[10] = "1.0" if p < 4 else ""  # Pleural Effusion
            ap = "AP" if view == "frontal" else ""
            train.append(f"CheXpert-v1.0-small/{rel},Female,60,{view.title()},{ap}," + ",".join(vals))
    for p in range(100, 103):
        rel = f"valid/patient{p:05d}/study1/view1_frontal.jpg"
        fab.png(folder / rel, rng.uniform(0, 255, (40, 32)))
        valid.append(f"CheXpert-v1.0-small/{rel},Male,50,Frontal,PA," + ",".join(["0.0"] * 13 + ["1.0"]))
    (folder / "train.csv").write_text("\n".join(train) + "\n")
    (folder / "valid.csv").write_text("\n".join(valid) + "\n")
    return outer


def _all_labels(b):
    return np.concatenate([s.labels.numpy() for s in (b.train, b.val, b.test)])


@pytest.mark.parametrize("policy, n_rows, cardio_pos",
                         [("U-Ones", 8, 4), ("U-Zeros", 8, 2), ("U-Ignore", 8, 2), ("U-Ignore-drop", 6, 2)])
def test_chexpert_uncertainty_policies_and_frontal_filter(chexpert_root, policy, n_rows, cardio_pos):
    b = CheXpert({**SMALL, "path": str(chexpert_root), "uncertain": policy}).load()
    assert b.meta.task == "multi-label" and b.meta.class_names == OBS and not b.meta.has_roi
    y = _all_labels(b)
    assert y.shape == (n_rows, 14) and set(np.unique(y)) <= {0.0, 1.0}
    assert int(y[:, 2].sum()) == cardio_pos  # Cardiomegaly after the policy; blank stays 0
    assert int(y[:, 10].sum()) == (4 if policy != "U-Ignore-drop" else 3)
    assert _disjoint_groups(b) and all(g.startswith("patient") for s in (b.train,) for g in s.groups)
    assert (b.train.label_mask is not None) == (policy == "U-Ignore")


def _all_masks(b):
    return np.concatenate([s.label_mask.numpy() for s in (b.train, b.val, b.test)])


@pytest.mark.parametrize("cache", ["auto", "off"])
def test_chexpert_u_ignore_keeps_the_images_and_masks_only_the_uncertain_labels(chexpert_root, cache):
    """The CheXpert paper's U-Ignore: every frontal image stays; its uncertain labels (Cardiomegaly of
    patients 2 and 6) are unknown (mask 0, label 0), every other label is known — in the prepared cache
    and the direct loader alike (same mask, same split fingerprints)."""
    b = CheXpert({**SMALL, "path": str(chexpert_root), "uncertain": "U-Ignore", "cache": cache}).load()
    groups = np.concatenate([s.groups for s in (b.train, b.val, b.test)])
    y, mask = _all_labels(b), _all_masks(b)
    assert len(groups) == 8 and mask.shape == (8, 14) and mask.dtype == np.float32
    uncertain = np.isin(groups, ["patient00002", "patient00006"])
    assert (mask[:, 2] == (~uncertain).astype(np.float32)).all()
    assert (np.delete(mask, 2, axis=1) == 1).all() and (y[uncertain, 2] == 0).all()
    direct = CheXpert({**SMALL, "path": str(chexpert_root), "uncertain": "U-Ignore", "cache": "off"}).load()
    assert b.split_hash() == direct.split_hash()
    assert torch.equal(b.train.subset([0]).label_mask, b.train.label_mask[:1])
    zeros = CheXpert({**SMALL, "path": str(chexpert_root), "uncertain": "U-Zeros", "cache": cache}).load()
    assert b.split_hash() != zeros.split_hash()  # same labels, but the mask is part of the data's identity


def test_chexpert_views_observations_and_valid_csv(chexpert_root):
    both = CheXpert({**SMALL, "path": str(chexpert_root), "view": "both"}).load()
    assert sum(len(s) for s in (both.train, both.val, both.test)) == 16
    assert _disjoint_groups(both)  # a patient's frontal and lateral images stay together
    lat = CheXpert({**SMALL, "path": str(chexpert_root), "view": "lateral", "observations": ["Cardiomegaly"]}).load()
    assert lat.meta.class_names == ("Cardiomegaly",) and _all_labels(lat).shape == (8, 1)
    with_valid = CheXpert({**SMALL, "path": str(chexpert_root), "valid_split": "test"}).load()
    assert {"patient00100", "patient00101", "patient00102"} <= set(with_valid.test.groups.tolist())
    with pytest.raises(ConfigError, match="unknown CheXpert observation"):
        CheXpert({**SMALL, "path": str(chexpert_root), "observations": ["Cardiomegally"]}).load()


# ------------------------------------------------------------------------ listing and errors
@pytest.mark.parametrize("cls, url", [(RSNAPneumonia, "rsna-pneumonia-detection-challenge"),
                                      (SIIMPneumothorax, "siim-acr-pneumothorax-segmentation"),
                                      (CheXpert, "stanfordmlgroup")])
def test_missing_cxr_data_says_where_to_get_it(tmp_path, cls, url):
    with pytest.raises(DataNotFoundError) as err:
        cls().load(str(tmp_path))
    assert url in str(err.value) and str(tmp_path / cls()._format().default_dir) in str(err.value)


def test_data_list_states_licence_and_download_page(tmp_path, rsna_root):
    rows = {r["name"]: r for r in catalog.data_list(load_registry(), str(rsna_root.parent))}
    for name, lic in (("rsna-pneumonia", "RSNA"), ("siim-acr-pneumothorax", "Kaggle"), ("chexpert", "Stanford")):
        assert lic in rows[name]["license"] and rows[name]["url"].startswith("https://")
        assert rows[name]["synthetic"] is False
    assert rows["rsna-pneumonia"]["available"] and not rows["chexpert"]["available"]
    assert rows["chexpert"]["roi"] is False and rows["siim-acr-pneumothorax"]["roi"] is True
    assert rows["rsna-pneumonia"]["prepared"] == "-"
    RSNAPneumonia({"size": 32}).load(str(rsna_root.parent))
    RSNAPneumonia({"size": 32, "max_train": 5}).load(str(rsna_root.parent))
    rows = {r["name"]: r for r in catalog.data_list(load_registry(), str(rsna_root.parent))}
    assert rows["rsna-pneumonia"]["prepared"] == "32,32*" and pd.notna(rows["rsna-pneumonia"]["sizes_present"])


@pytest.fixture(scope="module")
def chexpert_many(tmp_path_factory, fab):
    """40 patients, one frontal image each, every observation 1 / 0 / uncertain / blank at random."""
    folder = tmp_path_factory.mktemp("cx-many") / "chexpert"
    rng = np.random.default_rng(11)
    rows = ["Path,Sex,Age,Frontal/Lateral,AP/PA," + ",".join(OBS)]
    for p in range(40):
        rel = f"train/patient{p:05d}/study1/view1_frontal.jpg"
        fab.png(folder / rel, rng.uniform(0, 255, (24, 24)))
        vals = rng.choice(["1.0", "0.0", "-1.0", ""], size=14, p=[0.3, 0.3, 0.2, 0.2])
        rows.append(f"{rel},Female,60,Frontal,AP," + ",".join(vals))
    (folder / "train.csv").write_text("\n".join(rows) + "\n")
    return folder


def test_u_ignore_mask_reaches_training_batches_and_metrics(chexpert_many, tmp_path, monkeypatch):
    """A run on U-Ignore data: every training batch carries the rows' label mask, the metrics get the
    test split's mask, and strategies see labels only (no mask in their request)."""
    import dataclasses

    import xalbench
    import xalbench.losses.ce as ce_module
    import xalbench.metrics.builtin as builtin
    from xalbench.sandbox import RoundRequest

    masks_seen: list[torch.Tensor] = []
    metric_masks: list[np.ndarray | None] = []
    original_loss, original_metrics = ce_module.classification_loss, builtin.classification_metrics

    def loss_spy(logits, batch, weight=None):
        masks_seen.append(batch.label_mask)
        return original_loss(logits, batch, weight)

    def metrics_spy(scores, labels, task, label_mask=None):
        metric_masks.append(label_mask)
        return original_metrics(scores, labels, task, label_mask)

    monkeypatch.setattr(ce_module, "classification_loss", loss_spy)
    monkeypatch.setattr(builtin, "classification_metrics", metrics_spy)
    suite = tmp_path / "suite.toml"
    suite.write_text(f"""
name = "chexpert-u-ignore"
description = "U-Ignore end to end on fabricated CheXpert files"
seeds = [0]
strategies = ["random"]
losses = ["ce"]

[model]
name = "small-cnn"
options = {{ width = 4, n_blocks = 2 }}

[protocol]
base = "aeig"
initial = 0.4
rounds = 1
query_size = 0.2

[training]
epochs = 1
batch_size = 8

[[datasets]]
name = "chexpert"
options = {{ path = "{chexpert_many}", size = 16, uncertain = "U-Ignore", val_fraction = 0.2, test_fraction = 0.3 }}
""")
    results = xalbench.run(str(suite), out_dir=str(tmp_path / "out"), isolation="inline")
    assert [r["status"] for r in results] == ["ok"], results[0].get("error")
    assert masks_seen and all(m is not None and m.shape[1] == 14 for m in masks_seen)
    assert any(bool((m == 0).any()) for m in masks_seen)
    assert metric_masks and all(m is not None and m.shape[1] == 14 for m in metric_masks)
    rounds = results[0]["rounds"]
    assert all(np.isfinite(r["metrics"]["lrap"]) and np.isfinite(r["metrics"]["auc"]) for r in rounds)
    assert "label_mask" not in {f.name for f in dataclasses.fields(RoundRequest)}
