"""``volumes-3d``: annotated 3D volumes (LIDC-IDRI, Pancreas-CT / the Decathlon's pancreas, BraTS-like
releases) from a manifest CSV, resampled to ``depth×size×size``, with the sparse-slice flags DUE trains on.

Manifest columns (paths relative to the CSV's folder unless absolute):

* ``image_path`` — a NIfTI file, a ``.npy`` volume or a DICOM series folder (:mod:`xalbench.data.volumes_io`);
* ``mask_path`` (optional) — a label volume (NIfTI, ``.npy`` or DICOM), a folder of per-slice masks (only
  those slices annotated), or a LIDC-IDRI XML reading file; rows without one have no ROI;
* ``label`` (one class per volume) or ``labels`` (``|``-separated, multi-label);
* ``split``, ``group_id`` (patient; splits never cut it), ``image_id`` — as in the 2D manifest;
* ``annotated`` (optional) — the original slices an expert drew, ``|``-separated indices of the read
  (cropped) volume, or blank = every slice (per-slice mask folders: the slices with a file);
* ``crop`` (optional) — ``z0:z1,y0:y1,x0:x1`` voxels of the read ``D×H×W`` volume to keep (e.g. a block
  around a nodule, as DUE's LIDC samples), applied to image and mask alike.

``Split.annotated_slices`` flags the target slices an annotated original slice lands on
(:func:`~xalbench.data.volumes_io.annotated_on_grid`); the harness shows training only those, evaluation
the whole resampled ROI. Volumes are stored in the prepared, memory-mapped cache like the 2D datasets.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd

from xalbench.base import Dataset, DatasetBundle, DatasetMeta
from xalbench.data.common import resolve_data_root
from xalbench.data.manifest import ManifestSpec, SplitOptions, split_rows
from xalbench.data.prepared import Plan, identity, load_or_prepare, materialize
from xalbench.data.quant import quantize
from xalbench.data.volumes_io import (
    annotated_on_grid,
    is_slice_mask_folder,
    normalise,
    parse_crop,
    read_mask_volume,
    read_volume,
    resample_image,
    resample_mask,
    slice_mask_files,
    volume_depth,
)
from xalbench.errors import ConfigError, DataNotFoundError

__all__ = ["Volumes3D", "VolumeItem", "VolumeSpec", "decode_volume", "VOLUME_SOURCES"]

VOLUME_SOURCES = ("https://www.cancerimagingarchive.net/collection/lidc-idri/ ; "
                  "https://www.cancerimagingarchive.net/collection/pancreas-ct/ ; http://medicaldecathlon.com/")


@dataclass(frozen=True)
class VolumeSpec:
    """How every volume is decoded (from the dataset options)."""

    depth: int
    size: int
    dtype: str = "uint8"
    window: tuple[float, float] | None = None
    per_slice: bool = False
    mask_labels: tuple[int, ...] = ()
    consensus: float = 0.5


@dataclass(frozen=True)
class VolumeItem:
    """One manifest row (picklable, for decode workers)."""

    image_path: str
    mask_path: str = ""
    crop: str = ""


def _cropped(vol: np.ndarray, crop: str) -> np.ndarray:
    c = parse_crop(crop)
    if c is None:
        return vol
    out = vol[c]
    if 0 in out.shape:
        raise ConfigError(f"crop {crop!r} leaves nothing of a {vol.shape} volume")
    return out


def decode_volume(item: VolumeItem, spec: VolumeSpec) -> tuple[np.ndarray, np.ndarray | None]:
    """``(1×depth×size×size`` image in ``spec.dtype``, ``depth×size×size`` uint8 mask or None)."""
    vol, slices = read_volume(item.image_path)
    mask = None
    if item.mask_path:
        mask, _ = read_mask_volume(item.mask_path, vol.shape, slices, spec.mask_labels, spec.consensus)
        mask = resample_mask(_cropped(mask, item.crop), spec.depth, spec.size).astype(np.uint8)
    vol = normalise(_cropped(vol, item.crop), spec.window, spec.per_slice)
    image = quantize(resample_image(vol, spec.depth, spec.size), spec.dtype)[None]
    return image, mask


def _decode_chunk(cid: int, items: list[VolumeItem], spec: VolumeSpec) -> tuple[int, dict[str, np.ndarray]]:
    images, rois = [], []
    for item in items:
        image, mask = decode_volume(item, spec)
        images.append(image)
        if mask is not None:
            rois.append(mask)
    empty = np.zeros((0, spec.depth, spec.size, spec.size), dtype=np.uint8)
    return cid, {"images": np.stack(images), "roi": np.stack(rois) if rois else empty}


@dataclass
class VolumeReader:
    """Decodes chunks of volumes (in worker processes when ``n_jobs > 1``)."""

    items: list[VolumeItem]
    spec: VolumeSpec

    def stream(self, chunk_rows: int, todo: list[int], n_jobs: int) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
        def rows(cid: int) -> list[VolumeItem]:
            return self.items[cid * chunk_rows:(cid + 1) * chunk_rows]

        if n_jobs <= 1 or len(todo) <= 1:
            for cid in todo:
                yield _decode_chunk(cid, rows(cid), self.spec)
            return
        from joblib import Parallel, delayed

        yield from Parallel(n_jobs=n_jobs, backend="loky", return_as="generator_unordered")(
            delayed(_decode_chunk)(cid, rows(cid), self.spec) for cid in todo)


def _original_flags(row: pd.Series) -> np.ndarray:
    """Which slices of the read, cropped volume an expert drew (see the module docstring)."""
    depth = volume_depth(row["image_path"])
    flags = np.ones(depth, dtype=bool)
    mask = str(row.get("mask_path", "") or "")
    if mask and is_slice_mask_folder(mask):
        flags[:] = False
        flags[[k for k in slice_mask_files(Path(mask)) if 0 <= k < depth]] = True
    text = str(row.get("annotated", "") or "").strip()
    crop = parse_crop(str(row.get("crop", "") or ""))
    flags = flags[crop[0]] if crop is not None else flags
    if text and text.lower() != "all":
        try:
            drawn = [int(t) for t in text.split("|") if t.strip()]
        except ValueError:
            raise ConfigError(f"annotated = {text!r} must list slice indices separated by '|', e.g. 0|4|8") from None
        if any(not 0 <= k < len(flags) for k in drawn):
            raise ConfigError(f"annotated = {text!r} names slices outside the volume's {len(flags)} (cropped) slices")
        keep = np.zeros(len(flags), dtype=bool)
        keep[drawn] = True
        flags = flags & keep
    return flags


class Volumes3D(Dataset):
    """Annotated 3D volumes (NIfTI, NumPy or DICOM series; label volumes, per-slice masks or LIDC XML)."""

    name: ClassVar[str] = "volumes-3d"
    summary: ClassVar[str] = ("3D volumes from a manifest CSV: NIfTI/NumPy/DICOM series, label volumes, per-slice "
                              "masks or LIDC XML outlines; sparse annotated slices (DUE)")
    paper: ClassVar[str] = "LIDC-IDRI (Armato et al., Med Phys 2011); Pancreas-CT (Roth et al., TCIA 2016)"
    synthetic: ClassVar[bool] = False
    identity_exempt: ClassVar[tuple[str, ...]] = ("cache", "in_memory_mb")

    @dataclass(frozen=True)
    class Options(SplitOptions):
        """The splits (:class:`~xalbench.data.manifest.SplitOptions`); ``path``: the manifest CSV (relative:
        under the data root); volumes → ``depth×size×size``.
        ``window_low``/``window_high``: clip intensities first (both 0: no window; CT lung e.g. −1000/400);
        ``normalize``: min–max per ``volume`` or per ``slice`` (DUE's code); ``mask_labels``: label values that
        are ROI (empty: any non-zero; the Decathlon's pancreas tumour: [2]); ``consensus``: LIDC readers' share."""

        path: str = ""
        depth: int = 16
        size: int = 32
        task: Literal["auto", "multi-class", "multi-label"] = "auto"
        class_names: tuple[str, ...] = ()
        window_low: float = 0.0
        window_high: float = 0.0
        normalize: Literal["volume", "slice"] = "volume"
        mask_labels: tuple[int, ...] = ()
        consensus: float = 0.5
        bit_depth: int = 8
        modality_name: str = "CT volume"
        license: str = "unknown"
        cache: Literal["auto", "off"] = "auto"
        in_memory_mb: int = 256

        def __post_init__(self) -> None:
            if self.depth < 1 or self.size < 8 or self.bit_depth not in (8, 16):
                raise ValueError(f"need depth ≥ 1, size ≥ 8 and bit_depth 8 or 16; got depth={self.depth}, "
                                 f"size={self.size}, bit_depth={self.bit_depth}")
            if self.window_high < self.window_low:
                raise ValueError(f"window_high ({self.window_high}) must not be below window_low ({self.window_low})")
            if not 0.0 < self.consensus <= 1.0:
                raise ValueError(f"consensus must lie in (0, 1], got {self.consensus}")

    def csv(self, data_root: str | None = None) -> Path:
        p = Path(self.options.path).expanduser()
        return p if p.is_absolute() else resolve_data_root(data_root) / p

    def available(self, data_root: str | None = None) -> bool:
        return bool(self.options.path) and self.csv(data_root).is_file()

    def _spec(self) -> VolumeSpec:
        o = self.options
        window = (o.window_low, o.window_high) if (o.window_low, o.window_high) != (0.0, 0.0) else None
        return VolumeSpec(depth=o.depth, size=o.size, dtype="uint16" if o.bit_depth == 16 else "uint8",
                          window=window, per_slice=o.normalize == "slice", mask_labels=tuple(o.mask_labels),
                          consensus=o.consensus)

    def _read(self, data_root: str | None) -> pd.DataFrame:
        csv = self.csv(data_root)
        if not self.options.path or not csv.is_file():
            raise DataNotFoundError(
                f"volume manifest {csv if self.options.path else '(no path given)'} not found; write a CSV with "
                "columns image_path (NIfTI file, .npy or DICOM series folder), label, optional mask_path (label "
                "volume, per-slice mask folder or LIDC XML), split, group_id, annotated, crop, and pass its path")
        df = pd.read_csv(csv, dtype=str, keep_default_na=False)
        if "image_path" not in df.columns:
            raise ConfigError(f"volume manifest {csv} has no 'image_path' column (columns: {list(df.columns)})")
        for col in ("image_path", "mask_path"):
            if col in df.columns:
                df[col] = [str(p if not p or Path(p).is_absolute() else csv.parent / p) for p in df[col]]
        return df

    def cache_identity(self, data_root: str | None = None) -> tuple[str, dict[str, Any]]:
        csv = self.csv(data_root)
        return identity(f"volumes-{csv.stem}", self.options.size, self.options.to_dict(), self.Options().to_dict(),
                        {"csv": str(csv)})

    def make_plan(self, data_root: str | None = None) -> Plan:
        o = self.options
        df = self._read(data_root)
        if len(df) == 0:
            raise ConfigError(f"volume manifest {self.csv(data_root)} has no rows")
        if "group_id" not in df.columns or (df["group_id"] == "").all():
            df["group_id"] = df["image_path"]
        kept = split_rows(df, ManifestSpec(task=o.task, class_names=o.class_names, **o.splits()),
                          "dataset 'volumes-3d': split {split!r} is empty; add volumes or set the 'split' column")
        df, labels, code, names, task = kept.rows, kept.labels, kept.code, kept.names, kept.task
        masks = df["mask_path"] if "mask_path" in df.columns else pd.Series([""] * len(df))
        items = [VolumeItem(p, m, str(c)) for p, m, c in
                 zip(df["image_path"], masks, df["crop"] if "crop" in df.columns else [""] * len(df), strict=True)]
        annotated = np.stack([annotated_on_grid(_original_flags(row), o.depth) for _, row in df.iterrows()])
        cand = np.array([bool(it.mask_path) for it in items])
        roi_rows = np.where(cand, np.cumsum(cand) - 1, -1).astype(np.int64) if cand.any() else None
        shape = (1, o.depth, o.size, o.size)
        dtype = "uint16" if o.bit_depth == 16 else "uint8"
        meta = DatasetMeta(name=f"volumes-3d:{o.path}", task=task, class_names=tuple(str(c) for c in names),
                           in_channels=1, spatial_dims=3, image_shape=shape, modality=o.modality_name,
                           license=o.license, source=str(self.csv(data_root)), synthetic=False,
                           has_roi=roi_rows is not None,
                           notes=f"real 3D volumes at {o.depth}×{o.size}×{o.size}; annotated slices as drawn, mapped "
                                 "onto the depth grid (Split.annotated_slices); splits by group_id")
        dirname, key = self.cache_identity(data_root)
        return Plan(dirname=dirname, key=key, meta=meta, image_shape=shape, image_dtype=dtype,
                    labels=labels.astype(np.float32 if task == "multi-label" else np.int64), split=code,
                    reader=VolumeReader(items, self._spec()), groups=df["group_id"].astype(str).to_numpy(),
                    roi_rows=roi_rows, annotated_slices=annotated, sources=_sources(items, self.csv(data_root)))

    def load(self, data_root: str | None = None) -> DatasetBundle:
        if self.options.cache == "off":
            return materialize(self.make_plan(data_root))
        return load_or_prepare(self, data_root, in_memory_mb=self.options.in_memory_mb)


def _sources(items: list[VolumeItem], csv: Path) -> list[str]:
    """Every file a volume is read from (DICOM and per-slice folders: their files and the folder)."""
    out = {str(csv)}
    for item in items:
        for path in (item.image_path, item.mask_path):
            if not path:
                continue
            p = Path(path)
            out.add(str(p))
            if p.is_dir():
                out.update(str(f) for f in p.iterdir() if f.is_file() and not f.name.startswith("."))
    return sorted(out)
