"""Generic manifest loader: a table of images (+ labels, groups, splits, masks or boxes) →
:class:`DatasetBundle`.

Manifest columns (CSV; paths relative to the manifest's folder unless absolute):

* ``image_path`` (required) — PNG/JPEG/TIFF, DICOM (``.dcm``/``.dicom``), NIfTI, ``.npy``;
  ``slice`` (optional) — axial slice index for volumes;
* labels — ``label`` (one class per row → multi-class), ``labels`` (``|``-separated →
  multi-label), or the option ``label_columns`` (0/1 columns; multi-label, or one-hot
  multi-class with ``task = "multi-class"``; with ``ManifestSpec.unknown_value`` set, cells
  holding that value are unknown labels: 0 in ``Split.labels``, 0 in ``Split.label_mask``);
* ``split`` (optional: train/val/test; blanks or a missing column → assigned by group);
* ``group_id`` (optional patient/case/lesion id; splits never cut a group);
* ``mask_path`` (optional) — any non-zero pixel is ROI;
* ``mask_rle`` (optional) — ``|``-separated run-length masks in the SIIM-ACR competition
  encoding (:mod:`xalbench.data.rle`), decoded at the image's size; their union is ROI;
* ``image_id`` (optional, defaults to the file stem) — joins the optional long box table
  ``image_id, class, x_min, y_min, x_max, y_max[, rater_id]`` (original pixel coordinates)
  whose boxes become masks (``box_fusion`` = union of raters, or majority vote), per class
  in ``Split.class_roi`` for multi-label data.

Images are quantised to ``uint8`` (``bit_depth = 16``: ``uint16``) after resizing, by the
same code whether they are loaded directly (:func:`build_bundle`) or prepared into the
memory-mapped cache (:func:`plan_manifest` + :mod:`xalbench.data.prepared`).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from xalbench.base import DatasetBundle, DatasetMeta, Task
from xalbench.data.decode import BoxFusion, DecodeSpec, ManifestReader, RowItem
from xalbench.data.prepared import Plan, materialize
from xalbench.data.rle import is_empty_rle
from xalbench.errors import ConfigError
from xalbench.options import Options

__all__ = ["ManifestSpec", "SplitOptions", "SplitRows", "assign_splits", "split_rows", "build_bundle",
           "plan_manifest", "read_manifest"]

_SPLIT_ALIASES = {"train": "train", "training": "train", "val": "val", "valid": "val", "validation": "val",
                  "dev": "val", "test": "test", "testing": "test"}


@dataclass(frozen=True)
class SplitOptions(Options):
    """How a table's rows are split (:func:`assign_splits`): groups without a given split are ranked by a
    hash seeded with ``seed``, the first ``test_fraction`` becoming test and the next ``val_fraction`` val;
    ``max_*`` caps each split (0: keep every row). Shared by every manifest-backed dataset's options."""

    val_fraction: float = 0.1
    test_fraction: float = 0.2
    max_train: int = 0
    max_val: int = 0
    max_test: int = 0
    seed: int = 0

    def splits(self) -> dict[str, Any]:
        """These fields by name (to build a :class:`ManifestSpec` from a dataset's options)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(SplitOptions)}


@dataclass(frozen=True)
class ManifestSpec(SplitOptions):
    """How to turn a manifest into tensors (taken from the dataset options; the split fields are its
    :class:`SplitOptions`)."""

    size: int = 64
    channels: int = 1
    task: str = "auto"
    label_columns: tuple[str, ...] = ()
    class_names: tuple[str, ...] = ()
    negative_label: str = "No Finding"
    box_fusion: BoxFusion = "union"
    bit_depth: int = 8
    rle_relative: bool = True
    unknown_value: float | None = None  #: a label_columns value meaning "unknown" (→ ``Split.label_mask`` 0)


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


def _labels(df: pd.DataFrame, spec: ManifestSpec) -> tuple[np.ndarray, tuple[str, ...], Task, np.ndarray | None]:
    """Labels, class names, task and the multi-label known-label mask (``None``: every label known)."""
    if spec.label_columns:
        missing = [c for c in spec.label_columns if c not in df.columns]
        if missing:
            raise ConfigError(f"manifest has no label column(s) {missing}; columns are {list(df.columns)}")
        y = df[list(spec.label_columns)].apply(pd.to_numeric, errors="coerce").fillna(0).to_numpy(np.float32)
        names = spec.class_names or tuple(spec.label_columns)
        if spec.task == "multi-class":
            return y.argmax(1).astype(np.int64), names, "multi-class", None
        known = np.ones_like(y, dtype=bool) if spec.unknown_value is None else y != spec.unknown_value
        mask = None if known.all() else known.astype(np.float32)
        return ((y > 0) & known).astype(np.float32), names, "multi-label", mask
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
        return y, names, "multi-label", None
    if "label" in df.columns:
        raw = df["label"].astype(str).str.strip()
        names = spec.class_names or tuple(sorted(set(raw), key=lambda s: (not s.lstrip("-").isdigit(),
                                                                            int(s) if s.lstrip("-").isdigit() else 0, s)))
        index = {n: i for i, n in enumerate(names)}
        unknown = sorted(set(raw) - set(index))
        if unknown:
            raise ConfigError(f"manifest labels {unknown[:5]} are not in class_names {list(names)}")
        return raw.map(index).to_numpy(np.int64), names, "multi-class", None
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


def _box_groups(boxes: pd.DataFrame | None, names: Sequence[str]) -> dict[str, tuple[np.ndarray, tuple[str, ...],
                                                                                 tuple[int, ...]]]:
    """image_id → (K×4 coords, raters, class index per box; -1 for classes outside ``names``)."""
    if boxes is None:
        return {}
    index = {str(n): i for i, n in enumerate(names)}
    out = {}
    for image_id, b in boxes.assign(image_id=boxes["image_id"].astype(str)).groupby("image_id", sort=False):
        coords = b[["x_min", "y_min", "x_max", "y_max"]].to_numpy(np.float64)
        raters = tuple(b["rater_id"].astype(str)) if "rater_id" in b.columns else ()
        classes = tuple(index.get(str(c), -1) for c in b["class"]) if "class" in b.columns else ()
        out[str(image_id)] = (coords, raters, classes)
    return out


@dataclass(frozen=True)
class SplitRows:
    """A table's kept rows in stored order (train → val → test, stable), with their labels and split codes."""

    rows: pd.DataFrame
    labels: np.ndarray
    code: np.ndarray  #: 0 train, 1 val, 2 test
    label_mask: np.ndarray | None
    names: tuple[str, ...]
    task: Task


def split_rows(df: pd.DataFrame, spec: ManifestSpec, empty: str) -> SplitRows:
    """Labels (:func:`_labels`), splits by group (:func:`assign_splits`) and caps (:func:`_cap`) of ``df``
    (``group_id`` filled); ``empty`` is the error for a split left empty (``{split}`` names it)."""
    split = assign_splits(df, spec.val_fraction, spec.test_fraction, spec.seed)
    labels, names, task, label_mask = _labels(df, spec)
    keep = _cap(split, df["group_id"], spec).to_numpy()
    code = split[keep].map({"train": 0, "val": 1, "test": 2}).to_numpy(np.int8)
    for c, s in enumerate(("train", "val", "test")):
        if not (code == c).any():
            raise ConfigError(empty.format(split=s))
    order = np.argsort(code, kind="stable")
    rows = df[keep].reset_index(drop=True).iloc[order].reset_index(drop=True)
    return SplitRows(rows, labels[keep][order], code[order], None if label_mask is None else label_mask[keep][order],
                     names, task)


def _items(df: pd.DataFrame, boxes: pd.DataFrame | None, names: Sequence[str]) -> list[RowItem]:
    by_image = _box_groups(boxes, names)
    n = len(df)
    slices = df["slice"] if "slice" in df.columns else pd.Series([""] * n)
    masks = df["mask_path"].astype(str) if "mask_path" in df.columns else pd.Series([""] * n)
    rles = df["mask_rle"].astype(str) if "mask_rle" in df.columns else pd.Series([""] * n)
    items = []
    for path, sl, mask, rle, image_id in zip(df["image_path"].astype(str), slices, masks, rles,
                                             df["image_id"].astype(str), strict=True):
        coords, raters, classes = by_image.get(image_id, (None, (), ()))
        runs = tuple(r for r in rle.split("|") if not is_empty_rle(r)) if rle else ()
        items.append(RowItem(image_path=path, slice_index=None if sl in (None, "") else int(sl), mask_path=mask,
                             mask_rle=runs, boxes=coords, raters=raters, box_classes=classes))
    return items


def plan_manifest(df: pd.DataFrame, boxes: pd.DataFrame | None, spec: ManifestSpec, *, name: str, modality: str,
                  license: str, source: str, notes: str = "", dirname: str = "", key: dict | None = None,
                  extra_sources: Sequence[str | Path] = ()) -> Plan:
    """Labels, splits (by group), caps and per-row decode items of a manifest, rows stored
    train → val → test; images are decoded later (:mod:`xalbench.data.prepared`)."""
    df = df.reset_index(drop=True).copy()
    if len(df) == 0:
        raise ConfigError(f"dataset {name!r}: the manifest has no rows")
    if spec.bit_depth not in (8, 16):
        raise ConfigError(f"dataset {name!r}: bit_depth must be 8 or 16, not {spec.bit_depth}")
    if "group_id" not in df.columns or (df["group_id"].astype(str) == "").all():
        df["group_id"] = df["image_path"].astype(str)
    if "image_id" not in df.columns:
        df["image_id"] = [Path(p).name.split(".")[0] for p in df["image_path"].astype(str)]
    kept = split_rows(df, spec, f"dataset {name!r}: split {{split!r}} is empty after splitting by group; add rows, "
                                "lower max_* caps or raise val_fraction/test_fraction")
    df, labels, code, label_mask = kept.rows, kept.labels, kept.code, kept.label_mask
    names, task = kept.names, kept.task
    has_masks = ("mask_path" in df.columns and (df["mask_path"].astype(str) != "").any()) or \
        ("mask_rle" in df.columns and (df["mask_rle"].astype(str) != "").any())
    has_roi = bool(has_masks or boxes is not None)
    n_class_roi = len(names) if task == "multi-label" and boxes is not None else 0
    items = _items(df, boxes, names)
    roi_rows = None
    if has_roi:
        cand = np.array([it.may_have_roi for it in items], dtype=bool)
        roi_rows = np.where(cand, np.cumsum(cand) - 1, -1).astype(np.int64)
    dtype = "uint16" if spec.bit_depth == 16 else "uint8"
    meta = DatasetMeta(name=name, task=task, class_names=tuple(str(c) for c in names), in_channels=spec.channels,
                       spatial_dims=2, image_shape=(spec.channels, spec.size, spec.size), modality=modality,
                       license=license, source=source, synthetic=False, has_roi=has_roi,
                       notes=notes or "real data; splits at patient/case level (group_id)")
    files = {it.image_path for it in items} | {it.mask_path for it in items if it.mask_path}
    folders = {str(Path(f).parent) for f in files}
    decode = DecodeSpec(size=spec.size, channels=spec.channels, dtype=dtype, box_fusion=spec.box_fusion,
                        has_roi=has_roi, n_class_roi=n_class_roi, rle_relative=spec.rle_relative)
    return Plan(dirname=dirname or name, key=key or {"dataset": name}, meta=meta,
                image_shape=(spec.channels, spec.size, spec.size), image_dtype=dtype,
                labels=labels.astype(np.float32 if task == "multi-label" else np.int64), split=code,
                reader=ManifestReader(items, decode), groups=df["group_id"].astype(str).to_numpy(),
                roi_rows=roi_rows, class_roi_k=n_class_roi, label_mask=label_mask,
                sources=sorted(files | folders | {str(p) for p in extra_sources}))


def build_bundle(df: pd.DataFrame, boxes: pd.DataFrame | None, spec: ManifestSpec, *, name: str, modality: str,
                 license: str, source: str, notes: str = "") -> DatasetBundle:
    """Load every image of the manifest (resized to ``spec.size``) in memory, split by group."""
    return materialize(plan_manifest(df, boxes, spec, name=name, modality=modality, license=license,
                                     source=source, notes=notes))
