"""Converters from real datasets' native files to the generic manifest (+ box table).

Each converter reads the files as distributed and returns ``(manifest, boxes, class_names)``
for :func:`xalbench.data.manifest.build_bundle`. Rows whose image file is missing are
dropped (partial downloads work); no image at all → :class:`DataNotFoundError`.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from xalbench.errors import DataNotFoundError

__all__ = ["FormatInfo", "FORMATS", "NIH_FINDINGS", "HAM_CLASSES", "missing_error"]

Converted = tuple[pd.DataFrame, "pd.DataFrame | None", tuple[str, ...]]

NIH_FINDINGS = ("Atelectasis", "Cardiomegaly", "Effusion", "Infiltration", "Mass", "Nodule", "Pneumonia",
                "Pneumothorax", "Consolidation", "Edema", "Emphysema", "Fibrosis", "Pleural_Thickening", "Hernia")
HAM_CLASSES = ("akiec", "bcc", "bkl", "df", "mel", "nv", "vasc")
SIIM_STUDY = ("Negative for Pneumonia", "Typical Appearance", "Indeterminate Appearance", "Atypical Appearance")


@dataclass(frozen=True)
class FormatInfo:
    """A real dataset format: where it lives, what must be there, how to convert it."""

    name: str
    default_dir: str
    required: tuple[str, ...]
    url: str
    license: str
    modality: str
    convert: Callable[..., Converted]
    channels: int = 1
    note: str = ""
    label_columns: bool = False  # the converter returns one 0/1 column per class name (multi-label)

    def missing(self, root: Path) -> list[str]:
        """Required patterns with no match under ``root`` (``a|b``: either pattern will do)."""
        return [r for r in self.required if not any(any(root.glob(alt)) for alt in r.split("|"))]


def missing_error(info: FormatInfo, root: Path, missing: list[str]) -> DataNotFoundError:
    return DataNotFoundError(
        f"dataset {info.name!r} not found: expected {', '.join(missing)} under {root}. "
        f"Get it from {info.url} ({info.license}) and unpack it into {root} "
        f"(or pass --data-root / set XALBENCH_DATA to the folder that contains {info.default_dir}/). {info.note}"
    )


def _index(root: Path, patterns: tuple[str, ...]) -> dict[str, Path]:
    """Map file stem (name before the first dot) → path, over ``root.rglob(pattern)``."""
    out: dict[str, Path] = {}
    for pat in patterns:
        for p in sorted(root.rglob(pat)):
            out.setdefault(p.name.split(".")[0], p)
    return out


def _present(df: pd.DataFrame, info: FormatInfo, root: Path) -> pd.DataFrame:
    df = df[df["image_path"].astype(str) != ""].reset_index(drop=True)
    if len(df) == 0:
        raise missing_error(info, root, ["the image files listed in its label tables"])
    return df


# ------------------------------------------------------------------------------ VinDr-CXR
def convert_vindr(root: Path, box_fusion: str = "union", **_: object) -> Converted:
    """PhysioNet VinDr-CXR 1.0.0: ``annotations/*.csv`` + ``{train,test}/{image_id}.dicom``.

    Image labels: train has 3 radiologists per image → positive if any (``union``) or at least
    half (``majority``) mark it; test labels are consensus. Boxes keep ``rad_id`` as rater.
    """
    images = _index(root, ("*.dicom", "*.dcm"))
    frames, box_frames = [], []
    for split in ("train", "test"):
        lab_path = root / "annotations" / f"image_labels_{split}.csv"
        if not lab_path.is_file():
            continue
        lab = pd.read_csv(lab_path).rename(columns={"Other disease": "Other diseases"})
        findings = [c for c in lab.columns if c not in ("image_id", "rad_id", "No finding")]
        agg = lab.groupby("image_id", sort=True)[findings].mean()
        y = (agg > 0) if box_fusion == "union" else (agg >= 0.5)
        df = y.astype(int).reset_index()
        df["split"] = split
        frames.append(df)
        box_path = root / "annotations" / f"annotations_{split}.csv"
        if box_path.is_file():
            b = pd.read_csv(box_path)
            b = b[b["class_name"] != "No finding"].dropna(subset=["x_min"])
            box_frames.append(b.rename(columns={"class_name": "class", "rad_id": "rater_id"}))
    df = pd.concat(frames, ignore_index=True).fillna(0)
    findings = tuple(c for c in df.columns if c not in ("image_id", "split"))
    df["image_path"] = [str(images.get(i, "")) for i in df["image_id"]]
    df["group_id"] = df["image_id"]  # VinDr-CXR publishes no patient ids
    boxes = pd.concat(box_frames, ignore_index=True) if box_frames else None
    return _present(df, FORMATS["vindr"], root), boxes, findings


# ------------------------------------------------------------------- SIIM-FISABIO-RSNA COVID
def convert_siim_covid(root: Path, **_: object) -> Converted:
    """``train_image_level.csv`` (boxes via ``ast.literal_eval``) + ``train_study_level.csv`` labels."""
    img = pd.read_csv(root / "train_image_level.csv", keep_default_na=False)
    study = pd.read_csv(root / "train_study_level.csv")
    study["StudyInstanceUID"] = study["id"].str.replace("_study", "", regex=False)
    df = img.merge(study[["StudyInstanceUID", *SIIM_STUDY]], on="StudyInstanceUID", how="inner")
    df["image_id"] = df["id"].str.replace("_image", "", regex=False)
    df["label"] = [SIIM_STUDY[int(np.argmax(r))] for r in df[list(SIIM_STUDY)].to_numpy()]
    df["group_id"] = df["StudyInstanceUID"]
    files = _index(root / "train", ("*.dcm",)) if (root / "train").is_dir() else {}
    df["image_path"] = [str(files.get(i, "")) for i in df["image_id"]]
    rows = []
    for image_id, raw in zip(df["image_id"], df["boxes"], strict=True):
        text = str(raw).strip()
        if not text or text.lower() == "nan":
            continue
        for b in ast.literal_eval(text):  # single-quoted dicts: json.loads would fail
            x, y, w, h = (float(b[k]) for k in ("x", "y", "width", "height"))
            rows.append({"image_id": image_id, "class": "opacity", "x_min": x, "y_min": y,
                         "x_max": x + w, "y_max": y + h})
    boxes = pd.DataFrame(rows, columns=["image_id", "class", "x_min", "y_min", "x_max", "y_max"])
    out = df[["image_id", "image_path", "group_id", "label"]]
    return _present(out, FORMATS["siim-covid"], root), boxes, SIIM_STUDY


# -------------------------------------------------------------------------- NIH ChestX-ray14
def convert_nih(root: Path, **_: object) -> Converted:
    """``Data_Entry_2017*.csv`` (``|``-separated labels, ``Patient ID``) + ``BBox_List_2017.csv``.

    The box file's header ``Bbox [x,y,w,h],,,`` splits into ``Bbox [x``, ``y``, ``w``, ``h]``
    plus empty ``Unnamed:`` columns; it says ``Infiltrate`` where labels say ``Infiltration``.
    Official ``train_val_list.txt`` / ``test_list.txt`` are used when present.
    """
    entry = sorted(root.glob("Data_Entry_2017*.csv"))[0]
    df = pd.read_csv(entry)
    df = df.rename(columns={"Image Index": "image_id", "Finding Labels": "labels", "Patient ID": "group_id"})
    df["group_id"] = df["group_id"].astype(str)
    split = pd.Series("", index=df.index)
    for name, fname in (("train", "train_val_list.txt"), ("test", "test_list.txt")):
        f = root / fname
        if f.is_file():
            listed = set(f.read_text().split())
            split[df["image_id"].isin(listed)] = name
    df["split"] = split
    files = _index(root, ("*.png",))
    df["image_path"] = [str(files.get(Path(i).stem, "")) for i in df["image_id"]]
    df["image_id"] = [Path(i).stem for i in df["image_id"]]
    boxes = None
    bb_path = root / "BBox_List_2017.csv"
    if bb_path.is_file():
        bb = pd.read_csv(bb_path)
        bb = bb.loc[:, ~bb.columns.str.startswith("Unnamed")]
        bb.columns = ["image_id", "class", "x", "y", "w", "h"]
        bb["class"] = bb["class"].replace({"Infiltrate": "Infiltration"})
        bb["image_id"] = [Path(i).stem for i in bb["image_id"]]
        boxes = pd.DataFrame({"image_id": bb["image_id"], "class": bb["class"], "x_min": bb["x"], "y_min": bb["y"],
                              "x_max": bb["x"] + bb["w"], "y_max": bb["y"] + bb["h"]})
    out = df[["image_id", "image_path", "group_id", "labels", "split"]]
    return _present(out, FORMATS["nih"], root), boxes, NIH_FINDINGS


# ---------------------------------------------------------------------------------- HAM10000
def convert_ham10000(root: Path, **_: object) -> Converted:
    """``HAM10000_metadata.csv`` (``dx`` label, split by ``lesion_id``) + Tschandl lesion masks."""
    meta = pd.read_csv(root / "HAM10000_metadata.csv")
    images = _index(root, ("ISIC_*.jpg", "ISIC_*.png"))
    masks = {k.replace("_segmentation", ""): v for k, v in _index(root, ("ISIC_*_segmentation.png",)).items()}
    images = {k: v for k, v in images.items() if not k.endswith("_segmentation")}
    df = pd.DataFrame({
        "image_id": meta["image_id"],
        "image_path": [str(images.get(i, "")) for i in meta["image_id"]],
        "mask_path": [str(masks.get(i, "")) for i in meta["image_id"]],
        "group_id": meta["lesion_id"].astype(str),
        "label": meta["dx"].astype(str),
    })
    return _present(df, FORMATS["ham10000"], root), None, HAM_CLASSES


# ------------------------------------------------------------------------------------ BraTS
def convert_brats(root: Path, modality: str = "flair", slice_threshold: int = 500, slices_per_case: int = 4,
                  **_: object) -> Converted:
    """BraTS case folders (``*_{modality}.nii.gz`` + ``*_seg.nii.gz``) → axial slices.

    Positive slices have ≥ ``slice_threshold`` tumour voxels (``seg > 0``), negatives none
    and ≥ 15 % brain; up to ``slices_per_case`` of each, evenly spaced. Split by case.
    """
    import nibabel as nib

    rows = []
    for seg_path in sorted(root.rglob("*_seg.nii*")):
        case = seg_path.name.split("_seg")[0]
        cands = sorted(seg_path.parent.glob(f"{case}_{modality}.nii*"))
        if not cands:
            continue
        seg = np.asanyarray(nib.load(str(seg_path)).dataobj)
        img = np.asanyarray(nib.load(str(cands[0])).dataobj)
        area = (seg > 0).reshape(-1, seg.shape[2]).sum(0)
        brain = (img > 0).reshape(-1, img.shape[2]).mean(0)
        pos = np.flatnonzero(area >= slice_threshold)
        neg = np.flatnonzero((area == 0) & (brain >= 0.15))
        for label, zs in (("tumour", pos), ("no tumour", neg)):
            if zs.size == 0:
                continue
            pick = zs[np.unique(np.linspace(0, zs.size - 1, min(slices_per_case, zs.size)).round().astype(int))]
            for z in pick:
                rows.append({"image_id": f"{case}_z{int(z)}", "image_path": str(cands[0]), "slice": int(z),
                             "mask_path": str(seg_path) if label == "tumour" else "", "group_id": case,
                             "label": label})
    df = pd.DataFrame(rows, columns=["image_id", "image_path", "slice", "mask_path", "group_id", "label"])
    if len(df) == 0:
        raise missing_error(FORMATS["brats"], root, [f"case folders with *_{modality}.nii.gz and *_seg.nii.gz"])
    return df, None, ("no tumour", "tumour")


FORMATS: dict[str, FormatInfo] = {
    "vindr": FormatInfo("vindr-cxr", "vindr-cxr", ("annotations/image_labels_*.csv",),
                        "https://physionet.org/content/vindr-cxr/1.0.0/ (credentialed)",
                        "PhysioNet Credentialed Health Data License 1.5.0", "chest X-ray (DICOM)", convert_vindr,
                        label_columns=True,
                        note="Layout: annotations/{annotations,image_labels}_{train,test}.csv, train/*.dicom, "
                             "test/*.dicom."),
    "siim-covid": FormatInfo("siim-covid19", "siim-covid19", ("train_image_level.csv", "train_study_level.csv"),
                             "https://www.kaggle.com/c/siim-covid19-detection/data",
                             "Kaggle competition rules (research use)", "chest X-ray (DICOM)", convert_siim_covid,
                             note="Layout: train_image_level.csv, train_study_level.csv, train/<study>/<series>/*.dcm."),
    "nih": FormatInfo("nih-cxr14", "nih-cxr14", ("Data_Entry_2017*.csv",),
                      "https://nihcc.app.box.com/v/ChestXray-NIHCC", "CC0 1.0 (NIH Clinical Center)",
                      "chest X-ray (PNG)", convert_nih,
                      note="Layout: Data_Entry_2017.csv, BBox_List_2017.csv, train_val_list.txt, test_list.txt, "
                           "images*/**/*.png. Boxes exist for 880 test images only."),
    "ham10000": FormatInfo("ham10000", "ham10000", ("HAM10000_metadata.csv",),
                           "https://doi.org/10.7910/DVN/DBW86T (images, metadata, lesion masks)",
                           "CC BY-NC 4.0", "dermatoscopy (JPEG)", convert_ham10000, channels=3,
                           note="Layout: HAM10000_metadata.csv, HAM10000_images_part_{1,2}/*.jpg, "
                                "HAM10000_segmentations_lesion_tschandl/*_segmentation.png."),
    "brats": FormatInfo("brats", "brats", ("**/*_seg.nii*",),
                        "https://www.synapse.org/brats (BraTS 2020/2021 training data)",
                        "BraTS data use agreement (research use)", "brain MRI (NIfTI)", convert_brats,
                        note="Layout: one folder per case with <case>_{t1,t1ce,t2,flair,seg}.nii.gz."),
}

from xalbench.data.converters_cxr import CXR_FORMATS  # noqa: E402  (they use this module's helpers)

FORMATS.update(CXR_FORMATS)
