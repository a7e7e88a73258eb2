"""Real-format loaders on tiny fabricated files: VinDr-CXR, SIIM-COVID, NIH CXR14, HAM10000, BraTS."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from xalbench.data.real import HAM10000, BraTS, ManifestDataset, NIHChestXray14, SIIMCovid19, VinDrCXR
from xalbench.errors import DataNotFoundError

SMALL = {"size": 32, "val_fraction": 0.25, "test_fraction": 0.25}


@pytest.fixture(autouse=True)
def _data_root(tmp_path_factory, monkeypatch):
    """Prepared caches go to a temporary data root, never the user's."""
    monkeypatch.setenv("XALBENCH_DATA", str(tmp_path_factory.getbasetemp() / "data-root"))


def _roi_brighter(split) -> bool:
    x = split.images[:, 0].numpy()
    r = split.roi.numpy()
    sel = r.reshape(len(r), -1).max(1) > 0
    if not sel.any():
        return True
    x, r = x[sel], r[sel]
    return bool(((x * r).sum((1, 2)) / r.sum((1, 2)) > (x * (1 - r)).sum((1, 2)) / (1 - r).sum((1, 2))).all())


def _no_group_straddles(bundle) -> bool:
    sets = [set(s.groups.tolist()) for s in (bundle.train, bundle.val, bundle.test)]
    return not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2])


# ------------------------------------------------------------------------------ VinDr-CXR
@pytest.fixture(scope="module")
def vindr_root(tmp_path_factory, fab):
    root = tmp_path_factory.mktemp("dr") / "vindr-cxr"
    rng = np.random.default_rng(0)
    label_rows, box_rows = [], []
    for split, n in (("train", 12), ("test", 4)):
        for i in range(n):
            iid = f"{split}{i:03d}"
            has = i % 2 == 0
            box = (20, 30, 60, 70)
            fab.dicom(root / split / f"{iid}.dicom", fab.boxes(128, 96, [box] if has else [], rng), monochrome1=(i == 1))
            raters = ["R1", "R2", "R3"] if split == "train" else ["R9"]
            for j, r in enumerate(raters):
                # one of three raters misses the nodule: union and majority still agree it's there
                pos = has and not (j == 2)
                label_rows.append({"image_id": iid, "rad_id": r, "Nodule/Mass": int(pos), "Lung tumor": int(pos),
                                   ("Other diseases" if split == "train" else "Other disease"): 0,
                                   "No finding": int(not pos)})
                if pos:
                    box_rows.append({"image_id": iid, "rad_id": r, "class_name": "Nodule/Mass", "x_min": box[0] + j,
                                     "y_min": box[1], "x_max": box[2], "y_max": box[3]})
                else:
                    box_rows.append({"image_id": iid, "rad_id": r, "class_name": "No finding", "x_min": None,
                                     "y_min": None, "x_max": None, "y_max": None})
        (root / "annotations").mkdir(parents=True, exist_ok=True)
        pd.DataFrame([r for r in label_rows if r["image_id"].startswith(split)]).to_csv(
            root / "annotations" / f"image_labels_{split}.csv", index=False)
        pd.DataFrame([r for r in box_rows if r["image_id"].startswith(split)]).to_csv(
            root / "annotations" / f"annotations_{split}.csv", index=False)
    return root


def test_vindr_multilabel_with_rater_boxes(vindr_root):
    b = VinDrCXR({**SMALL, "path": str(vindr_root)}).load()
    assert b.meta.task == "multi-label" and not b.meta.synthetic and b.meta.has_roi
    assert "Other diseases" in b.meta.class_names and "No finding" not in b.meta.class_names
    assert len(b.train) + len(b.val) == 12 and len(b.test) == 4
    k = b.meta.class_names.index("Nodule/Mass")
    for s in (b.train, b.val, b.test):
        assert s.images.shape[1:] == (1, 32, 32) and s.labels.shape[1] == len(b.meta.class_names)
        pos = s.labels[:, k] > 0
        assert bool((s.has_roi == pos).all())  # boxes exactly where the finding is
        assert s.class_roi.shape == (len(s), len(b.meta.class_names), 32, 32)
        assert bool((s.class_roi[:, k].flatten(1).amax(1) > 0).eq(pos).all())
        assert _roi_brighter(s)


def test_vindr_majority_fusion_shrinks_to_agreed_pixels(vindr_root):
    union = VinDrCXR({**SMALL, "path": str(vindr_root), "size": 96}).load()
    major = VinDrCXR({**SMALL, "path": str(vindr_root), "size": 96, "box_fusion": "majority"}).load()
    assert float(major.train.roi.sum()) <= float(union.train.roi.sum())
    assert float(major.train.roi.sum()) > 0


# ------------------------------------------------------------------- SIIM-FISABIO-RSNA COVID
def test_siim_covid_literal_eval_boxes_and_study_groups(tmp_path, fab):
    root = tmp_path / "siim-covid19"
    rng = np.random.default_rng(1)
    img_rows, study_rows = [], []
    for s in range(8):
        study = f"st{s:02d}"
        onehot = [0, 0, 0, 0]
        onehot[s % 4] = 1
        study_rows.append({"id": f"{study}_study", "Negative for Pneumonia": onehot[0], "Typical Appearance": onehot[1],
                           "Indeterminate Appearance": onehot[2], "Atypical Appearance": onehot[3]})
        for k in range(2):
            iid = f"im{s:02d}{k}"
            boxes = [] if s % 4 == 0 else [{"x": 10.5, "y": 20.0, "width": 30.0, "height": 25.0}]
            fab.dicom(root / "train" / study / "series1" / f"{iid}.dcm",
                      fab.boxes(100, 100, [(10, 20, 40, 45)] if boxes else [], rng))
            img_rows.append({"id": f"{iid}_image", "boxes": str(boxes) if boxes else "",
                             "label": "opacity 1 10.5 20 40.5 45" if boxes else "none 1 0 0 1 1",
                             "StudyInstanceUID": study})
    pd.DataFrame(img_rows).to_csv(root / "train_image_level.csv", index=False)
    pd.DataFrame(study_rows).to_csv(root / "train_study_level.csv", index=False)
    b = SIIMCovid19({**SMALL, "path": str(root)}).load()
    assert b.meta.task == "multi-class" and b.meta.num_classes == 4
    assert sum(len(s) for s in (b.train, b.val, b.test)) == 16
    assert _no_group_straddles(b)
    for s in (b.train, b.val, b.test):
        assert bool((s.has_roi == (s.labels != 0)).all())  # "Negative" studies have no boxes
        assert _roi_brighter(s)


# -------------------------------------------------------------------------- NIH ChestX-ray14
def test_nih_bbox_quirks_official_split_and_patients(tmp_path, fab):
    root = tmp_path / "nih-cxr14"
    rng = np.random.default_rng(2)
    rows, names = [], []
    for i in range(16):
        name = f"0000{i:04d}_000.png"
        names.append(name)
        box = (16, 24, 40, 48) if i >= 10 else None
        fab.png(root / "images_001" / "images" / name, fab.boxes(64, 64, [box] if box else [], rng) / 12)
        labels = "Infiltration|Effusion" if box else ("No Finding" if i % 2 else "Effusion")
        rows.append({"Image Index": name, "Finding Labels": labels, "Follow-up #": 0, "Patient ID": i // 2})
    pd.DataFrame(rows).to_csv(root / "Data_Entry_2017_v2020.csv", index=False)
    (root / "train_val_list.txt").write_text("\n".join(names[:10]))
    (root / "test_list.txt").write_text("\n".join(names[10:]))
    lines = ["Image Index,Finding Label,Bbox [x,y,w,h],,,"]
    lines += [f"{n},Infiltrate,16.0,24.0,24.0,24.0,,," for n in names[10:]]
    (root / "BBox_List_2017.csv").write_text("\n".join(lines) + "\n")
    b = NIHChestXray14({**SMALL, "path": str(root)}).load()
    assert b.meta.task == "multi-label" and b.meta.num_classes == 14
    assert len(b.test) == 6 and len(b.train) + len(b.val) == 10
    assert _no_group_straddles(b)
    k = b.meta.class_names.index("Infiltration")
    assert bool((b.test.labels[:, k] == 1).all())
    assert bool(b.test.has_roi.all()) and bool((b.test.class_roi[:, k].flatten(1).amax(1) == 1).all())
    assert float(b.train.labels.sum(0)[b.meta.class_names.index("Effusion")]) > 0
    assert _roi_brighter(b.test)
    # 24 px box on a 64 px image → 12 px at 32 px
    assert float(b.test.roi[0].sum()) == pytest.approx(144, abs=30)


# ---------------------------------------------------------------------------------- HAM10000
def test_ham10000_masks_and_lesion_level_split(tmp_path, fab):
    root = tmp_path / "ham10000"
    rng = np.random.default_rng(3)
    rows = []
    for i in range(14):
        iid = f"ISIC_{i:07d}"
        img = rng.uniform(0, 60, (45, 60, 3))
        img[10:30, 20:45] = [220, 120, 90]
        fab.png(root / f"HAM10000_images_part_{1 + i % 2}" / f"{iid}.jpg", img, mode="RGB")
        mask = np.zeros((45, 60))
        mask[10:30, 20:45] = 255
        fab.png(root / "HAM10000_segmentations_lesion_tschandl" / f"{iid}_segmentation.png", mask)
        rows.append({"lesion_id": f"HAM_{i // 2:07d}", "image_id": iid, "dx": ["nv", "mel", "bkl"][i % 3],
                     "dx_type": "histo", "age": 50, "sex": "male", "localization": "back"})
    pd.DataFrame(rows).to_csv(root / "HAM10000_metadata.csv", index=False)
    b = HAM10000({**SMALL, "path": str(root)}).load()
    assert b.meta.in_channels == 3 and b.train.images.shape[1:] == (3, 32, 32)
    assert b.meta.class_names == ("akiec", "bcc", "bkl", "df", "mel", "nv", "vasc")
    assert _no_group_straddles(b)
    for s in (b.train, b.val, b.test):
        assert bool(s.has_roi.all()) and _roi_brighter(s)


# ------------------------------------------------------------------------------------ BraTS
def test_brats_axial_slices_threshold_and_case_split(tmp_path):
    import nibabel as nib

    root = tmp_path / "brats"
    rng = np.random.default_rng(4)
    for c in range(6):
        case = f"BraTS20_Training_{c:03d}"
        vol = np.zeros((40, 40, 20), dtype=np.float32)
        vol[5:35, 5:35, 2:18] = rng.uniform(50, 100, (30, 30, 16))
        seg = np.zeros_like(vol, dtype=np.uint8)
        seg[12:24, 14:26, 8:12] = 2  # 144 voxels per slice
        seg[15:18, 15:18, 7] = 1  # 9 voxels: below threshold
        vol[seg > 0] = 400
        (root / case).mkdir(parents=True)
        nib.save(nib.Nifti1Image(vol, np.eye(4)), root / case / f"{case}_flair.nii.gz")
        nib.save(nib.Nifti1Image(seg, np.eye(4)), root / case / f"{case}_seg.nii.gz")
    b = BraTS({**SMALL, "path": str(root), "slice_threshold": 100, "slices_per_case": 2}).load()
    assert b.meta.class_names == ("no tumour", "tumour")
    assert sum(len(s) for s in (b.train, b.val, b.test)) == 24
    assert _no_group_straddles(b)
    for s in (b.train, b.val, b.test):
        assert bool((s.has_roi == (s.labels == 1)).all())
        assert _roi_brighter(s)


# ------------------------------------------------------------------------ missing-data errors
@pytest.mark.parametrize("cls, expect", [
    (VinDrCXR, "physionet.org"), (SIIMCovid19, "kaggle.com"), (NIHChestXray14, "nihcc"),
    (HAM10000, "10.7910/DVN/DBW86T"), (BraTS, "synapse.org"),
])
def test_missing_real_data_says_what_where_and_how(tmp_path, cls, expect):
    ds = cls()
    assert not ds.available(str(tmp_path))
    with pytest.raises(DataNotFoundError) as err:
        ds.load(str(tmp_path))
    msg = str(err.value)
    assert expect in msg and str(tmp_path / ds._format().default_dir) in msg and "expected" in msg


def test_manifest_format_option_delegates_to_converter(vindr_root):
    direct = VinDrCXR({**SMALL, "path": str(vindr_root)}).load()
    via = ManifestDataset({**SMALL, "path": str(vindr_root), "format": "vindr"}).load()
    assert direct.split_hash() == via.split_hash()
