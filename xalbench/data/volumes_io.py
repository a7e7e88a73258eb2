"""Reading annotated 3D volumes as the public releases ship them, and resampling them to the suite's grid.

Every volume comes back as ``float32 D×H×W`` (axial slices along D, in ascending z):

* **NIfTI** (``.nii``/``.nii.gz``; e.g. the Medical Segmentation Decathlon's ``imagesTr``/``labelsTr``,
  NIH Pancreas-CT's labels): stored ``x×y×z`` → transposed to ``z×y×x``, the same axial orientation
  as :func:`xalbench.data.imageio.read_array` gives a NIfTI slice;
* **NumPy** ``.npy``: already ``D×H×W`` (e.g. volumes exported with pylidc);
* **a DICOM series**: a folder with one slice per file (LIDC-IDRI, Pancreas-CT as downloaded from
  TCIA), ordered by ``ImagePositionPatient`` z, then ``InstanceNumber``, then file name; rescale
  slope/intercept applied.

Masks: a label volume in one of those forms (any non-zero voxel, or only the values in ``labels``),
a folder of per-slice masks (PNG/TIFF/``.npy`` files whose name ends in the slice index, e.g.
``slice_012.png``: only the slices with a file were annotated), or LIDC-IDRI's XML reading file
(:mod:`xalbench.data.lidc_xml`; the image must then be the DICOM series it annotates).

Resampling (:func:`resample_image`, :func:`resample_mask`): a volume of ``d`` slices goes to ``depth``
slices and ``size×size`` pixels; images trilinearly (corner-aligned: slice ``t`` sits at original
position ``t·(d − 1)/(depth − 1)``), masks by nearest neighbour on the same grid. An original slice
``o`` lands on the target slice ``round(o·(depth − 1)/(d − 1))`` — DUE's sparse slices
``round(linspace(0, depth − 1, d))`` when every original slice is annotated — and only those target
slices are flagged annotated (:func:`annotated_on_grid`); the slices between them are missing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from xalbench.data.imageio import dicom_pixels, read_array
from xalbench.data.lidc_xml import SliceInfo, lidc_consensus_mask
from xalbench.errors import ConfigError, DataNotFoundError

__all__ = ["Crop", "parse_crop", "series_files", "volume_depth", "read_volume", "read_mask_volume", "slice_mask_files",
           "is_slice_mask_folder",
           "source_index", "annotated_on_grid", "resample_image", "resample_mask", "normalise"]

_NIFTI = (".nii", ".nii.gz")
_SLICE_SUFFIXES = (".png", ".tif", ".tiff", ".npy", ".jpg", ".jpeg")
_NOT_DICOM = (".xml", ".txt", ".json", ".csv", ".md", ".nii", ".nii.gz", ".gz", ".zip", ".mhd", ".raw", *_SLICE_SUFFIXES)
Crop = tuple[slice, slice, slice]


def _is_nifti(path: Path) -> bool:
    return path.name.lower().endswith(_NIFTI)


def parse_crop(text: str) -> Crop | None:
    """``"z0:z1,y0:y1,x0:x1"`` (voxel indices of the read ``D×H×W`` volume, Python slices) → slices."""
    text = str(text or "").strip()
    if not text:
        return None
    parts = [p.strip() for p in text.split(",")]
    try:
        if len(parts) != 3:
            raise ValueError
        out = []
        for p in parts:
            lo, hi = p.split(":")
            out.append(slice(int(lo) if lo.strip() else None, int(hi) if hi.strip() else None))
    except ValueError:
        raise ConfigError(f"crop {text!r} must read z0:z1,y0:y1,x0:x1 (voxel indices, e.g. 10:42,0:128,0:128)") from None
    return out[0], out[1], out[2]


def series_files(folder: Path) -> list[Path]:
    """The slice files of a DICOM series folder, by name: every file but hidden ones and known non-DICOM
    types (LIDC-IDRI keeps its XML reading file in the series folder; file names may be UIDs with dots)."""
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")
                   and not p.name.lower().endswith(_NOT_DICOM))
    if not files:
        raise DataNotFoundError(f"DICOM series folder {folder} holds no files")
    return files


def _read_series(folder: Path) -> tuple[np.ndarray, list[SliceInfo]]:
    import pydicom

    rows = []
    for p in series_files(folder):
        ds = pydicom.dcmread(str(p))
        pos = getattr(ds, "ImagePositionPatient", None)
        z = float(pos[2]) if pos is not None and len(pos) == 3 else float("nan")
        rows.append((z, int(getattr(ds, "InstanceNumber", 0) or 0), p.name, str(getattr(ds, "SOPInstanceUID", "")),
                     dicom_pixels(ds, p)))
    rows.sort(key=lambda r: (np.inf if np.isnan(r[0]) else r[0], r[1], r[2]))
    shapes = {r[4].shape for r in rows}
    if len(shapes) != 1:
        raise ConfigError(f"DICOM series {folder} mixes slice sizes {sorted(shapes)}; one folder must hold one series")
    return np.stack([r[4] for r in rows]).astype(np.float32), [SliceInfo(r[3], r[0]) for r in rows]


def volume_depth(path: str | Path) -> int:
    """Number of axial slices of a volume without reading its voxels (header / file count)."""
    p = Path(path)
    if p.is_dir():
        return len(series_files(p))
    if not p.is_file():
        raise DataNotFoundError(f"volume {p} listed in the manifest does not exist")
    if _is_nifti(p):
        import nibabel as nib

        shape = nib.load(str(p)).shape
        return int(shape[2]) if len(shape) >= 3 else 1
    if p.suffix.lower() == ".npy":
        return int(np.load(p, mmap_mode="r").shape[0])
    raise ConfigError(f"volume {p}: expected a NIfTI file (.nii/.nii.gz), a .npy array (D×H×W) or a DICOM series folder")


def read_volume(path: str | Path) -> tuple[np.ndarray, list[SliceInfo] | None]:
    """``(D×H×W float32, the series' slices or None)``; see the module docstring for the forms."""
    p = Path(path)
    if p.is_dir():
        return _read_series(p)
    volume_depth(p)  # existence and format check
    if _is_nifti(p):
        import nibabel as nib

        vol = np.asanyarray(nib.load(str(p)).dataobj)
        if vol.ndim == 4 and vol.shape[3] == 1:
            vol = vol[..., 0]
        if vol.ndim != 3:
            raise ConfigError(f"NIfTI volume {p} has shape {vol.shape}; expected x×y×z")
        return np.ascontiguousarray(np.transpose(vol, (2, 1, 0)), dtype=np.float32), None
    vol = np.load(p, allow_pickle=False)
    if vol.ndim != 3:
        raise ConfigError(f"NumPy volume {p} has shape {vol.shape}; expected D×H×W")
    return vol.astype(np.float32), None


def is_slice_mask_folder(path: str | Path) -> bool:
    """A folder of per-slice mask images (PNG/TIFF/JPEG/``.npy``) rather than a DICOM series."""
    p = Path(path)
    return p.is_dir() and any(f.name.lower().endswith(_SLICE_SUFFIXES) for f in p.iterdir())


def slice_mask_files(folder: Path) -> dict[int, Path]:
    """Per-slice mask files of a folder: slice index (the trailing integer of the name) → path."""
    out: dict[int, Path] = {}
    for p in sorted(folder.iterdir()):
        name = p.name.lower()
        suffix = next((s for s in _SLICE_SUFFIXES if name.endswith(s)), "")
        match = re.search(r"(\d+)$", p.name[: len(p.name) - len(suffix)]) if suffix else None
        if match is None:
            continue
        index = int(match.group(1))
        if index in out:
            raise ConfigError(f"mask folder {folder} has two files for slice {index}: {out[index].name}, {p.name}")
        out[index] = p
    if not out:
        raise DataNotFoundError(f"mask folder {folder} has no per-slice masks (files named <anything><slice index>"
                                f"{'|'.join(_SLICE_SUFFIXES)})")
    return out


def read_mask_volume(path: str | Path, shape: tuple[int, int, int], slices: Sequence[SliceInfo] | None,
                     labels: Sequence[int] = (), consensus: float = 0.5) -> tuple[np.ndarray, np.ndarray | None]:
    """``(D×H×W float32 {0, 1} mask, per-slice annotated flags or None = every slice)`` aligned with an
    image of ``shape`` (before cropping)."""
    p = Path(path)
    if p.suffix.lower() == ".xml":
        if slices is None:
            raise ConfigError(f"LIDC XML mask {p} needs the image as the DICOM series folder it annotates")
        return lidc_consensus_mask(p, slices, shape[1:], consensus), None
    if is_slice_mask_folder(p):
        mask = np.zeros(shape, dtype=np.float32)
        flags = np.zeros(shape[0], dtype=bool)
        for k, f in slice_mask_files(p).items():
            if not 0 <= k < shape[0]:
                raise ConfigError(f"mask {f} is for slice {k}, but the image has {shape[0]} slices")
            arr = read_array(f)
            arr = arr.max(-1) if arr.ndim == 3 else arr
            if arr.shape != shape[1:]:
                raise ConfigError(f"mask {f} is {arr.shape[0]}×{arr.shape[1]}, the image's slices "
                                  f"{shape[1]}×{shape[2]}")
            mask[k] = _select(arr, labels)
            flags[k] = True
        return mask, flags
    vol, _ = read_volume(p)
    if vol.shape != tuple(shape):
        raise ConfigError(f"mask volume {p} has shape {vol.shape} (D×H×W), the image {tuple(shape)}; they must "
                          "share the voxel grid and order")
    return _select(vol, labels), None


def _select(arr: np.ndarray, labels: Sequence[int]) -> np.ndarray:
    return (np.isin(np.rint(arr), list(labels)) if labels else arr != 0).astype(np.float32)


def source_index(d: int, depth: int) -> np.ndarray:
    """For each of ``depth`` target slices, the nearest of ``d`` original slices (corner-aligned grid)."""
    if depth == 1 or d == 1:
        return np.zeros(depth, dtype=np.int64)
    return np.rint(np.arange(depth) * (d - 1) / (depth - 1)).astype(np.int64)


def annotated_on_grid(annotated: np.ndarray, depth: int) -> np.ndarray:
    """Target-slice flags: target ``t`` is annotated iff its nearest original slice ``o`` was annotated
    and ``t`` is where ``o`` lands (``round(o·(depth − 1)/(d − 1))``); see the module docstring."""
    d = len(annotated)
    src = source_index(d, depth)
    lands = np.zeros(depth, dtype=bool) if d > 1 and depth > 1 else np.ones(depth, dtype=bool)
    if d > 1 and depth > 1:
        lands[np.rint(np.arange(d) * (depth - 1) / (d - 1)).astype(np.int64)] = True
    return np.asarray(annotated, dtype=bool)[src] & lands


def normalise(vol: np.ndarray, window: tuple[float, float] | None, per_slice: bool) -> np.ndarray:
    """Clip to ``window`` (e.g. CT Hounsfield units), then min–max to [0, 1] per volume or per slice."""
    if window is not None:
        vol = np.clip(vol, window[0], window[1])
    axes = (1, 2) if per_slice else None
    lo = vol.min(axis=axes, keepdims=per_slice)
    hi = vol.max(axis=axes, keepdims=per_slice)
    span = np.where(hi > lo, hi - lo, 1.0)
    return np.where(hi > lo, (vol - lo) / span, 0.0).astype(np.float32)


def resample_image(vol: np.ndarray, depth: int, size: int) -> np.ndarray:
    """``D×H×W`` → ``depth×size×size``, trilinear on the corner-aligned grid."""
    t = torch.from_numpy(np.ascontiguousarray(vol, dtype=np.float32))[None, None]
    out = F.interpolate(t, size=(depth, size, size), mode="trilinear", align_corners=True)
    return out[0, 0].numpy()


def resample_mask(mask: np.ndarray, depth: int, size: int) -> np.ndarray:
    """``D×H×W`` {0, 1} → ``depth×size×size`` by nearest neighbour on the same grid as the images."""
    d, h, w = mask.shape
    return np.ascontiguousarray(mask[np.ix_(source_index(d, depth), source_index(h, size), source_index(w, size))])
