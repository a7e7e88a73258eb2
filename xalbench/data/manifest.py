"""Generic manifest loader: a table of images (+ labels, groups, splits, masks or boxes) →
:class:`DatasetBundle`.

Manifest columns (CSV; paths relative to the manifest's folder unless absolute):

* ``image_path`` (required) — PNG/JPEG/TIFF, DICOM (``.dcm``/``.dicom``), NIfTI, ``.npy``;
  ``slice`` (optional) — axial slice index for volumes;
* labels — ``label`` (one class per row → multi-class), ``labels`` (``|``-separated →
  multi-label), or the option ``label_columns`` (0/1 columns; multi-label, or one-hot
  multi-class with ``task = "multi-class"``);
* ``split`` (optional: train/val/test; blanks or a missing column → assigned by group);
* ``group_id`` (optional patient/case/lesion id; splits never cut a group);
* ``mask_path`` (optional) — any non-zero pixel is ROI;
* ``image_id`` (optional, defaults to the file stem) — joins the optional long box table
  ``image_id, class, x_min, y_min, x_max, y_max[, rater_id]`` (original pixel coordinates)
  whose boxes become masks (``box_fusion`` = union of raters, or majority vote), per class
  in ``Split.class_roi`` for multi-label data.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from xalbench.base import DatasetBundle, DatasetMeta, Split, Task
from xalbench.data.common import to_split
from xalbench.data.imageio import boxes_to_mask, read_image, read_mask
from xalbench.errors import ConfigError

__all__ = ["ManifestSpec", "assign_splits", "build_bundle", "read_manifest"]

_SPLIT_ALIASES = {"train": "train", "training": "train", "val": "val", "valid": "val", "validation": "val",
                  "dev": "val", "test": "test", "testing": "test"}


@dataclass(frozen=True)
class ManifestSpec:
    """How to turn a manifest into tensors (taken from the dataset options)."""

    size: int = 64
    channels: int = 1
    task: str = "auto"
    label_columns: tuple[str, ...] = ()
    class_names: tuple[str, ...] = ()
    negative_label: str = "No Finding"
    box_fusion: str = "union"
    val_fraction: float = 0.1
    test_fraction: float = 0.2
    max_train: int = 0
    max_val: int = 0
    max_test: int = 0
    seed: int = 0


def read_manifest(path: Path) -> pd.DataFrame:
    """Read a manifest CSV and make its paths absolute."""
    df = pd.read_csv(path, dtype={"split": str, "group_id": str, "image_id": str, "mask_path": str}, keep_default_na=False)
    if "image_path" not in df.columns:
        raise ConfigError(f"manifest {path} has no 'image_path' column (columns: {list(df.columns)})")
    base = path.parent
    for col in ("image_path", "mask_path"):
        if col in df.columns:
            df[col] = [str(p if not p or Path(p).is_absolute() else base / p) for p in df[col].astype(str)]
    return df


def _unit_hash(key: str, seed: int) -> float:
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def _rank_split(groups: list[str], fractions: tuple[float, ...], names: tuple[str, ...], seed: int) -> dict[str, str]:
    """Order groups by a seeded SHA-256 and cut them by ``fractions`` (≥ 1 group each if possible)."""
    order = sorted(set(groups), key=lambda g: (_unit_hash(g, seed), g))
    out, start = {}, 0
    for frac, name in zip(fractions, names, strict=True):
        take = max(1, int(round(frac * len(order)))) if len(order) > len(fractions) else 0
        for g in order[start:start + take]:
            out[g] = name
        start += take
    return out


def assign_splits(df: pd.DataFrame, val_fraction: float, test_fraction: float, seed: int) -> pd.Series:
    """Fill missing splits by group, so a patient never straddles splits.

    Rows with ``split`` = train/val/test keep it. Groups without a split are ranked by a
    seeded hash: the first ``test_fraction`` become test, the next ``val_fraction`` val, the
    rest train. If no row ends up in val, ``val_fraction`` of the train groups become val.
    Raises :class:`ConfigError` if a group is in two splits.
    """
    groups = df["group_id"].astype(str)
    given = df["split"].astype(str).str.strip().str.lower().map(lambda s: _SPLIT_ALIASES.get(s, "")) \
        if "split" in df.columns else pd.Series([""] * len(df), index=df.index)
    per_group = given[given != ""].groupby(groups[given != ""]).nunique()
    bad = per_group[per_group > 1]
    if len(bad):
        raise ConfigError(f"manifest puts group(s) {list(bad.index[:5])} in more than one split; splits must be "
                          "at patient/case level (fix the 'split' or 'group_id' column)")
    free = sorted(set(groups[given == ""]) - set(groups[given != ""]))
    auto = _rank_split(free, (test_fraction, val_fraction), ("test", "val"), seed)
    known = dict(zip(groups[given != ""], given[given != ""], strict=True))
    split = groups.map(lambda g: known.get(g) or auto.get(g, "train"))
    if "val" not in set(split):
        carve = _rank_split(sorted(set(groups[split == "train"])), (val_fraction,), ("val",), seed + 1)
        split = pd.Series(np.where(groups.map(carve).fillna("") == "val", "val", split), index=df.index)
    return split


def _labels(df: pd.DataFrame, spec: ManifestSpec) -> tuple[np.ndarray, tuple[str, ...], Task]:
    if spec.label_columns:
        missing = [c for c in spec.label_columns if c not in df.columns]
        if missing:
            raise ConfigError(f"manifest has no label column(s) {missing}; columns are {list(df.columns)}")
        y = df[list(spec.label_columns)].apply(pd.to_numeric, errors="coerce").fillna(0).to_numpy(np.float32)
        names = spec.class_names or tuple(spec.label_columns)
        if spec.task == "multi-class":
            return y.argmax(1).astype(np.int64), names, "multi-class"
        return (y > 0).astype(np.float32), names, "multi-label"
    if "labels" in df.columns and spec.task != "multi-class":
        tokens = [[t.strip() for t in str(s).split("|") if t.strip() and t.strip() != spec.negative_label]
                  for s in df["labels"]]
        names = spec.class_names or tuple(sorted({t for ts in tokens for t in ts}))
        index = {n: i for i, n in enumerate(names)}
        y = np.zeros((len(df), len(names)), dtype=np.float32)
        for i, ts in enumerate(tokens):
            for t in ts:
                if t in index:
                    y[i, index[t]] = 1.0
        return y, names, "multi-label"
    if "label" in df.columns:
        raw = df["label"].astype(str).str.strip()
        names = spec.class_names or tuple(sorted(set(raw), key=lambda s: (not s.lstrip("-").isdigit(),
                                                                            int(s) if s.lstrip("-").isdigit() else 0, s)))
        index = {n: i for i, n in enumerate(names)}
        unknown = sorted(set(raw) - set(index))
        if unknown:
            raise ConfigError(f"manifest labels {unknown[:5]} are not in class_names {list(names)}")
        return raw.map(index).to_numpy(np.int64), names, "multi-class"
    raise ConfigError("manifest needs a 'label' column, a 'labels' column ('|'-separated) or label_columns")


def _cap(split: pd.Series, groups: pd.Series, spec: ManifestSpec) -> pd.Series:
    """Keep at most ``max_<split>`` rows per split, taking whole groups in hash order."""
    keep = pd.Series(True, index=split.index)
    for name, cap in (("train", spec.max_train), ("val", spec.max_val), ("test", spec.max_test)):
        rows = split.index[split == name]
        if cap <= 0 or len(rows) <= cap:
            continue
        order = sorted(rows, key=lambda i: (_unit_hash(str(groups[i]), spec.seed + 2), i))
        keep[order[cap:]] = False
    return keep


def _rois(df: pd.DataFrame, boxes: pd.DataFrame | None, hw: Sequence[tuple[int, int]], names: Sequence[str],
          task: Task, spec: ManifestSpec) -> tuple[np.ndarray | None, np.ndarray | None]:
    n, s = len(df), spec.size
    has_masks = "mask_path" in df.columns and (df["mask_path"].astype(str) != "").any()
    if not has_masks and boxes is None:
        return None, None
    roi = np.zeros((n, s, s), dtype=np.float32)
    class_roi = np.zeros((n, len(names), s, s), dtype=np.float32) if task == "multi-label" and boxes is not None \
        else None
    if has_masks:
        slices = df["slice"] if "slice" in df.columns else pd.Series([None] * n)
        for i, (mp, sl) in enumerate(zip(df["mask_path"].astype(str), slices, strict=True)):
            if mp:
                roi[i] = read_mask(mp, s, None if sl in (None, "") else int(sl))
    if boxes is not None:
        index = {n_: i for i, n_ in enumerate(names)}
        by_image = dict(tuple(boxes.groupby("image_id", sort=False)))
        for i, image_id in enumerate(df["image_id"].astype(str)):
            b = by_image.get(image_id)
            if b is None:
                continue
            coords = b[["x_min", "y_min", "x_max", "y_max"]].to_numpy(np.float64)
            raters = b["rater_id"].astype(str).to_numpy() if "rater_id" in b.columns else np.zeros(len(b), str)
            if spec.box_fusion == "majority" and len(set(raters)) > 1:
                votes = sum(boxes_to_mask(coords[raters == r], hw[i], s) for r in sorted(set(raters)))
                roi[i] = np.maximum(roi[i], (votes >= len(set(raters)) / 2.0).astype(np.float32))
            else:
                roi[i] = np.maximum(roi[i], boxes_to_mask(coords, hw[i], s))
            if class_roi is not None and "class" in b.columns:
                for cls, cb in b.groupby("class"):
                    if str(cls) in index:
                        k = index[str(cls)]
                        class_roi[i, k] = np.maximum(class_roi[i, k], boxes_to_mask(
                            cb[["x_min", "y_min", "x_max", "y_max"]].to_numpy(np.float64), hw[i], s))
    return roi, class_roi


def build_bundle(df: pd.DataFrame, boxes: pd.DataFrame | None, spec: ManifestSpec, *, name: str, modality: str,
                 license: str, source: str, notes: str = "") -> DatasetBundle:
    """Load every image of the manifest (resized to ``spec.size``) and split it by group."""
    df = df.reset_index(drop=True).copy()
    if len(df) == 0:
        raise ConfigError(f"dataset {name!r}: the manifest has no rows")
    if "group_id" not in df.columns or (df["group_id"].astype(str) == "").all():
        df["group_id"] = df["image_path"].astype(str)
    if "image_id" not in df.columns:
        df["image_id"] = [Path(p).name.split(".")[0] for p in df["image_path"].astype(str)]
    split = assign_splits(df, spec.val_fraction, spec.test_fraction, spec.seed)
    labels, names, task = _labels(df, spec)
    keep = _cap(split, df["group_id"], spec).to_numpy()
    df, split, labels = df[keep].reset_index(drop=True), split[keep].reset_index(drop=True), labels[keep]
    slices = df["slice"] if "slice" in df.columns else pd.Series([""] * len(df))
    images, hw = [], []
    for path, sl in zip(df["image_path"].astype(str), slices, strict=True):
        img, shape = read_image(path, spec.size, spec.channels, None if sl in (None, "") else int(sl))
        images.append(img)
        hw.append(shape)
    if boxes is not None:
        boxes = boxes.assign(image_id=boxes["image_id"].astype(str))
    roi, class_roi = _rois(df, boxes, hw, names, task, spec)
    x = np.stack(images)
    splits: dict[str, Split] = {}
    for s in ("train", "val", "test"):
        idx = np.flatnonzero(split.to_numpy() == s)
        if idx.size == 0:
            raise ConfigError(f"dataset {name!r}: split {s!r} is empty after splitting by group; add rows, "
                              "lower max_* caps or raise val_fraction/test_fraction")
        groups = df["group_id"].astype(str).to_numpy()[idx]
        splits[s] = to_split(x[idx], labels[idx], None if roi is None else roi[idx],
                             class_roi=None if class_roi is None else class_roi[idx], groups=groups,
                             multilabel=task == "multi-label")
    meta = DatasetMeta(name=name, task=task, class_names=tuple(str(c) for c in names), in_channels=spec.channels,
                       spatial_dims=2, image_shape=(spec.channels, spec.size, spec.size), modality=modality,
                       license=license, source=source, synthetic=False, has_roi=roi is not None,
                       notes=notes or "real data; splits at patient/case level (group_id)")
    return DatasetBundle(meta, splits["train"], splits["val"], splits["test"])
