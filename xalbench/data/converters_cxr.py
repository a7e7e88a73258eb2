"""Converters for three chest X-ray datasets users bring for explanation benchmarks.

* **RSNA Pneumonia Detection** — ``stage_2_train_labels.csv`` (``patientId,x,y,width,height,Target``):
  one row per box, so a patient with k opacities has k rows; ``Target = 0`` rows have
  blank coordinates. Optional ``stage_2_detailed_class_info.csv`` (``patientId,class``;
  duplicated rows for patients with several boxes) gives the 3-class variant. Images
  ``stage_2_train_images/<patientId>.dcm``.
* **SIIM-ACR Pneumothorax** — ``train-rle.csv`` with header ``ImageId, EncodedPixels``
  (a space before the second name, and before each value), competition RLE
  (:mod:`xalbench.data.rle`), ``-1`` when empty, several rows per image = several masks
  (their union is the ROI). Images ``dicom-images-train/<study>/<series>/<ImageId>.dcm``
  (the ImageId is a DICOM UID with dots, so files are matched on the full stem).
* **CheXpert** — ``train.csv`` / ``valid.csv`` (``Path,Sex,Age,Frontal/Lateral,AP/PA`` + 14
  observations coded 1 / 0 / −1 (uncertain) / blank). ``Path`` starts with the archive's
  folder (``CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg``). Blank =
  not mentioned = negative; −1 follows the uncertainty policy of the CheXpert paper
  (Irvin et al., AAAI 2019, §"Uncertainty approaches"): U-Zeros → 0, U-Ones → 1, U-Ignore →
  unknown (kept as −1 here; ``Split.label_mask`` 0, left out of losses and metrics), or
  ``U-Ignore-drop`` (drops the image). No masks (``has_roi`` False).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from xalbench.data import converters as base
from xalbench.data.rle import is_empty_rle
from xalbench.errors import ConfigError

__all__ = ["convert_rsna", "convert_siim_acr", "convert_chexpert", "CHEXPERT_OBSERVATIONS", "RSNA_BINARY",
           "RSNA_DETAILED", "CXR_FORMATS"]

RSNA_BINARY = ("No Lung Opacity", "Lung Opacity")
RSNA_DETAILED = ("Normal", "No Lung Opacity / Not Normal", "Lung Opacity")
CHEXPERT_OBSERVATIONS = ("No Finding", "Enlarged Cardiomediastinum", "Cardiomegaly", "Lung Opacity", "Lung Lesion",
                         "Edema", "Consolidation", "Pneumonia", "Atelectasis", "Pneumothorax", "Pleural Effusion",
                         "Pleural Other", "Fracture", "Support Devices")


def _first(root: Path, names: Sequence[str]) -> Path:
    for name in names:
        if (root / name).is_file():
            return root / name
    raise base.missing_error(base.FORMATS[_FORMAT_OF[names[0]]], root, [" or ".join(names)])


def _dicoms(root: Path) -> dict[str, Path]:
    """file stem (everything before ``.dcm``) → path; UIDs keep their dots."""
    out: dict[str, Path] = {}
    for p in sorted(root.rglob("*.dcm")):
        out.setdefault(p.name[: -len(".dcm")], p)
    return out


# ---------------------------------------------------------------------------------- RSNA
def convert_rsna(root: Path, classes: str = "binary", **_: object) -> base.Converted:
    """Labels per patient (``Target`` of any of its rows), one box per positive row."""
    lab = pd.read_csv(_first(root, ("stage_2_train_labels.csv", "stage_1_train_labels.csv")),
                      dtype={"patientId": str})
    missing = {"patientId", "x", "y", "width", "height", "Target"} - set(lab.columns)
    if missing:
        raise ConfigError(f"RSNA labels file has no column(s) {sorted(missing)}; expected "
                          "patientId,x,y,width,height,Target")
    target = lab.groupby("patientId", sort=True)["Target"].max()
    if classes == "detailed":
        info = pd.read_csv(_first(root, ("stage_2_detailed_class_info.csv", "stage_1_detailed_class_info.csv")),
                           dtype={"patientId": str}).drop_duplicates("patientId").set_index("patientId")["class"]
        unknown = sorted(set(info) - set(RSNA_DETAILED))
        if unknown:
            raise ConfigError(f"RSNA detailed class info has unknown classes {unknown}; expected {list(RSNA_DETAILED)}")
        names: tuple[str, ...] = RSNA_DETAILED
        label = [str(info.get(p, RSNA_DETAILED[2] if t else RSNA_DETAILED[0])) for p, t in target.items()]
    else:
        names = RSNA_BINARY
        label = [RSNA_BINARY[int(t)] for t in target.to_numpy()]
    files = _dicoms(root)
    df = pd.DataFrame({"image_id": target.index, "image_path": [str(files.get(p, "")) for p in target.index],
                       "group_id": target.index, "label": label})
    pos = lab[(lab["Target"] == 1) & lab["x"].notna()]
    boxes = pd.DataFrame({"image_id": pos["patientId"], "class": "Lung Opacity", "x_min": pos["x"],
                          "y_min": pos["y"], "x_max": pos["x"] + pos["width"], "y_max": pos["y"] + pos["height"]})
    return base._present(df, base.FORMATS["rsna"], root), boxes.reset_index(drop=True), names


# ----------------------------------------------------------------------------- SIIM-ACR
def convert_siim_acr(root: Path, **_: object) -> base.Converted:
    """One row per image: label = any non-empty mask; ``mask_rle`` = its masks joined by ``|``."""
    path = _first(root, ("train-rle.csv", "stage_2_train.csv"))
    rle = pd.read_csv(path, dtype=str, keep_default_na=False)
    rle.columns = [str(c).strip() for c in rle.columns]  # ' EncodedPixels' (leading space)
    if not {"ImageId", "EncodedPixels"} <= set(rle.columns):
        raise ConfigError(f"{path.name} needs columns ImageId and EncodedPixels, has {list(rle.columns)}")
    rle["ImageId"] = rle["ImageId"].str.strip()
    rle["EncodedPixels"] = rle["EncodedPixels"].str.strip()
    runs = rle[~rle["EncodedPixels"].map(is_empty_rle)].groupby("ImageId", sort=False)["EncodedPixels"]
    masks = runs.agg("|".join)
    ids = list(dict.fromkeys(rle["ImageId"]))
    files = _dicoms(root)
    df = pd.DataFrame({
        "image_id": ids, "image_path": [str(files.get(i, "")) for i in ids], "group_id": ids,
        "label": ["Pneumothorax" if i in masks.index else "No pneumothorax" for i in ids],
        "mask_rle": [masks.get(i, "") for i in ids],
    })
    return base._present(df, base.FORMATS["siim-acr"], root), None, ("No pneumothorax", "Pneumothorax")


# ------------------------------------------------------------------------------ CheXpert
def _chexpert_base(root: Path) -> Path:
    if (root / "train.csv").is_file():
        return root
    for cand in sorted(root.glob("*/train.csv")):
        return cand.parent
    raise base.missing_error(base.FORMATS["chexpert"], root, ["train.csv (or <folder>/train.csv)"])


def _resolve(folder: Path, rel: str) -> str:
    parts = Path(rel).parts
    for cand in (folder / Path(*parts[1:]) if len(parts) > 1 else None, folder / rel, folder.parent / rel):
        if cand is not None and cand.is_file():
            return str(cand)
    return ""


def convert_chexpert(root: Path, uncertain: str = "U-Ones", view: str = "frontal",
                     observations: Sequence[str] = (), valid_split: str = "none", **_: object) -> base.Converted:
    """``train.csv`` (+ ``valid.csv`` as the ``valid_split`` split) → 0/1 label columns.

    ``U-Ignore`` (the CheXpert paper: "ignore the uncertain labels during training") keeps every
    image and writes −1 for its uncertain labels; the dataset turns them into a per-label mask
    (``Split.label_mask``: 1 known, 0 uncertain) that the multi-label losses and metrics honour.
    ``U-Ignore-drop`` drops every image with an uncertain label in a selected observation instead
    (38 % of the frontal training images of the real file for all 14; narrow ``observations``).
    Splits: by patient (``patientNNNNN`` in ``Path``) with ``val_fraction``/``test_fraction``.
    """
    if uncertain not in ("U-Ones", "U-Zeros", "U-Ignore", "U-Ignore-drop"):
        raise ConfigError(f"CheXpert uncertain = {uncertain!r}: choose U-Ones, U-Zeros, U-Ignore or U-Ignore-drop")
    obs = tuple(observations) or CHEXPERT_OBSERVATIONS
    unknown = [o for o in obs if o not in CHEXPERT_OBSERVATIONS]
    if unknown:
        raise ConfigError(f"unknown CheXpert observation(s) {unknown}; choose from {list(CHEXPERT_OBSERVATIONS)}")
    folder = _chexpert_base(root)
    frames = []
    for fname, split in (("train.csv", ""), ("valid.csv", valid_split)):
        if (folder / fname).is_file() and split != "none":
            t = pd.read_csv(folder / fname)
            t["split"] = split
            frames.append(t)
    df = pd.concat(frames, ignore_index=True)
    missing = [c for c in ("Path", "Frontal/Lateral", *obs) if c not in df.columns]
    if missing:
        raise ConfigError(f"CheXpert {folder / 'train.csv'} has no column(s) {missing}")
    if view != "both":
        df = df[df["Frontal/Lateral"].astype(str).str.lower() == view].reset_index(drop=True)
    y = df[list(obs)].apply(pd.to_numeric, errors="coerce").to_numpy(np.float64)
    y = np.nan_to_num(y, nan=0.0)  # blank: not mentioned → negative
    if uncertain == "U-Ignore-drop":
        keep = ~(y == -1).any(1)
        df, y = df[keep].reset_index(drop=True), y[keep]
    elif uncertain != "U-Ignore":
        y[y == -1] = 1.0 if uncertain == "U-Ones" else 0.0
    parts = [Path(str(p)).parts for p in df["Path"]]
    out = pd.DataFrame({
        "image_id": ["_".join(p[-3:]).rsplit(".", 1)[0] for p in parts],
        "image_path": [_resolve(folder, str(p)) for p in df["Path"]],
        "group_id": [next((x for x in p if x.startswith("patient")), "/".join(p[:-2])) for p in parts],
        "split": df["split"].to_numpy(),
    })
    for j, o in enumerate(obs):
        out[o] = np.where(y[:, j] == -1, -1, y[:, j] > 0).astype(int)  # −1 survives only under U-Ignore
    return base._present(out, base.FORMATS["chexpert"], root), None, obs


_FORMAT_OF = {"stage_2_train_labels.csv": "rsna", "stage_2_detailed_class_info.csv": "rsna",
              "train-rle.csv": "siim-acr"}

CXR_FORMATS: dict[str, base.FormatInfo] = {
    "rsna": base.FormatInfo(
        "rsna-pneumonia", "rsna-pneumonia", ("stage_2_train_labels.csv|stage_1_train_labels.csv",),
        "https://www.kaggle.com/c/rsna-pneumonia-detection-challenge/data (also https://www.rsna.org/education/"
        "ai-resources-and-training/ai-image-challenge/rsna-pneumonia-detection-challenge-2018)",
        "RSNA terms of use: research, education, commercial or non-commercial use with the required attribution",
        "chest X-ray (DICOM)", convert_rsna,
        note="Layout: stage_2_train_labels.csv, stage_2_detailed_class_info.csv (optional), "
             "stage_2_train_images/*.dcm."),
    "siim-acr": base.FormatInfo(
        "siim-acr-pneumothorax", "siim-acr-pneumothorax", ("train-rle.csv|stage_2_train.csv",),
        "https://www.kaggle.com/c/siim-acr-pneumothorax-segmentation/data",
        "Kaggle competition rules (SIIM-ACR; images from NIH ChestX-ray14)", "chest X-ray (DICOM)",
        convert_siim_acr,
        note="Layout: train-rle.csv, dicom-images-train/<study>/<series>/<ImageId>.dcm. train-rle.csv uses "
             "relative starts; for another file set rle_starts = \"absolute\" if it uses absolute ones."),
    "chexpert": base.FormatInfo(
        "chexpert", "chexpert", ("train.csv|*/train.csv",),
        "https://stanfordmlgroup.github.io/competitions/chexpert/ (registration)",
        "Stanford University CheXpert Dataset Research Use Agreement (non-commercial research)",
        "chest X-ray (JPEG)", convert_chexpert, label_columns=True,
        note="Layout: train.csv, valid.csv, train/patient*/study*/view*.jpg (CheXpert-v1.0-small or "
             "CheXpert-v1.0, optionally in one subfolder). No masks."),
}
