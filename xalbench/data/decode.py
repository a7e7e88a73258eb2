"""Decoding one manifest row: image (quantised), ROI and per-class ROIs at the target size.

The direct loader and the prepared cache both call :func:`decode_rows`, so they store the
same integers: images are read and resized by :func:`xalbench.data.imageio.read_image`
(float in [0, 1]) and quantised to ``uint8`` (or ``uint16``); ROIs are the union of a mask
file, competition run-length masks (:mod:`xalbench.data.rle`) and rasterised boxes
(``box_fusion``: union of raters, or majority vote), stored as ``uint8`` {0, 1}.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np

from xalbench.data import imageio
from xalbench.data.quant import quantize
from xalbench.data.rle import rle_decode_union

__all__ = ["BoxFusion", "RowItem", "DecodeSpec", "decode_rows", "ManifestReader"]


@dataclass(frozen=True)
class RowItem:
    """What is needed to decode one row (picklable; sent to worker processes)."""

    image_path: str
    slice_index: int | None = None
    mask_path: str = ""
    mask_rle: tuple[str, ...] = ()
    boxes: np.ndarray | None = None  # K×4 (x_min, y_min, x_max, y_max) in original pixels
    raters: tuple[str, ...] = ()
    box_classes: tuple[int, ...] = ()  # class index per box (-1: not a dataset class)

    @property
    def may_have_roi(self) -> bool:
        return bool(self.mask_path or self.mask_rle or (self.boxes is not None and len(self.boxes)))


#: how several raters' boxes of one finding become a mask: any rater (union) or most raters (majority)
BoxFusion = Literal["union", "majority"]


@dataclass(frozen=True)
class DecodeSpec:
    size: int
    channels: int
    dtype: str = "uint8"
    box_fusion: BoxFusion = "union"
    has_roi: bool = False
    n_class_roi: int = 0
    rle_relative: bool = True


def _roi(item: RowItem, hw: tuple[int, int], spec: DecodeSpec) -> tuple[np.ndarray, np.ndarray | None]:
    s = spec.size
    roi = np.zeros((s, s), dtype=np.float32)
    class_roi = np.zeros((spec.n_class_roi, s, s), dtype=np.float32) if spec.n_class_roi else None
    if item.mask_path:
        roi = np.maximum(roi, imageio.read_mask(item.mask_path, s, item.slice_index))
    if item.mask_rle:
        full = rle_decode_union(item.mask_rle, hw, relative=spec.rle_relative)
        roi = np.maximum(roi, (imageio.resize2d(full.astype(np.float32), s, nearest=True) > 0.5).astype(np.float32))
    if item.boxes is not None and len(item.boxes):
        coords = np.asarray(item.boxes, dtype=np.float64).reshape(-1, 4)
        raters = np.asarray(item.raters if item.raters else [""] * len(coords))
        distinct = sorted(set(raters.tolist()))
        if spec.box_fusion == "majority" and len(distinct) > 1:
            votes = sum(imageio.boxes_to_mask(coords[raters == r], hw, s) for r in distinct)
            roi = np.maximum(roi, (votes >= len(distinct) / 2.0).astype(np.float32))
        else:
            roi = np.maximum(roi, imageio.boxes_to_mask(coords, hw, s))
        if class_roi is not None and item.box_classes:
            classes = np.asarray(item.box_classes, dtype=np.int64)
            for k in sorted(set(classes.tolist()) - {-1}):
                class_roi[k] = np.maximum(class_roi[k], imageio.boxes_to_mask(coords[classes == k], hw, s))
    return roi, class_roi


def decode_rows(items: list[RowItem], spec: DecodeSpec) -> dict[str, np.ndarray]:
    """``images`` (n×C×S×S ``spec.dtype``), and for rows that may have one, ``roi`` (m×S×S
    uint8) and ``class_roi`` (m×K×S×S uint8), m = number of such rows, in row order."""
    s = spec.size
    images = np.zeros((len(items), spec.channels, s, s), dtype=spec.dtype)
    rois, class_rois = [], []
    for i, item in enumerate(items):
        img, hw = imageio.read_image(item.image_path, s, spec.channels, item.slice_index)
        images[i] = quantize(img, spec.dtype)
        if spec.has_roi and item.may_have_roi:
            roi, class_roi = _roi(item, hw, spec)
            rois.append(roi.astype(np.uint8))
            if class_roi is not None:
                class_rois.append(class_roi.astype(np.uint8))
    out = {"images": images}
    if spec.has_roi:
        out["roi"] = np.stack(rois) if rois else np.zeros((0, s, s), dtype=np.uint8)
        if spec.n_class_roi:
            out["class_roi"] = np.stack(class_rois) if class_rois else \
                np.zeros((0, spec.n_class_roi, s, s), dtype=np.uint8)
    return out


def _decode_chunk(cid: int, items: list[RowItem], spec: DecodeSpec) -> tuple[int, dict[str, np.ndarray]]:
    return cid, decode_rows(items, spec)


@dataclass
class ManifestReader:
    """Decodes chunks of manifest rows, in worker processes (joblib/loky) when ``n_jobs > 1``."""

    items: list[RowItem]
    spec: DecodeSpec

    def stream(self, chunk_rows: int, todo: list[int], n_jobs: int) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
        def rows(cid: int) -> list[RowItem]:
            return self.items[cid * chunk_rows:(cid + 1) * chunk_rows]

        if n_jobs <= 1 or len(todo) <= 1:
            for cid in todo:
                yield _decode_chunk(cid, rows(cid), self.spec)
            return
        from xalbench.utils.processes import map_in_processes

        yield from map_in_processes(_decode_chunk, ((cid, rows(cid), self.spec) for cid in todo), n_jobs)
