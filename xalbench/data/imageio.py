"""Reading real images and masks (PNG/JPEG/TIFF via Pillow, DICOM via pydicom, NIfTI via
nibabel, ``.npy``), resizing them, and rasterising bounding boxes into masks.

Every image comes back as ``float32 C×H×W`` in [0, 1] at the requested size; masks as
``float32 H×W`` in {0, 1}. DICOM: rescale slope/intercept applied, ``MONOCHROME1``
inverted, then min–max normalised (no windowing metadata is assumed).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from xalbench.errors import DataNotFoundError, UnsupportedError

__all__ = ["read_array", "read_image", "read_mask", "boxes_to_mask", "resize2d", "dicom_pixels"]

_NIFTI = (".nii", ".nii.gz")
_DICOM = (".dcm", ".dicom")


def _suffix(path: Path) -> str:
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else path.suffix.lower()


def _read_dicom(path: Path) -> np.ndarray:
    import pydicom

    return dicom_pixels(pydicom.dcmread(str(path)), path)


def dicom_pixels(ds: Any, path: Path) -> np.ndarray:
    """A read DICOM dataset's pixels as ``float32``: rescale slope/intercept applied, MONOCHROME1 inverted."""
    try:
        arr = ds.pixel_array.astype(np.float32)
    except Exception as exc:  # compressed transfer syntax without a decoder plugin
        raise UnsupportedError(
            f"cannot decode DICOM {path} ({exc}); install a pydicom pixel-data plugin, e.g. "
            "`pip install pylibjpeg pylibjpeg-libjpeg pylibjpeg-openjpeg` or `pip install python-gdcm`"
        ) from exc
    arr = arr * float(getattr(ds, "RescaleSlope", 1) or 1) + float(getattr(ds, "RescaleIntercept", 0) or 0)
    if str(getattr(ds, "PhotometricInterpretation", "")).upper() == "MONOCHROME1":
        arr = arr.max() - arr
    return arr


@functools.lru_cache(maxsize=4)
def _nifti_volume(path: str) -> np.ndarray:
    """Whole NIfTI volume (cached: manifests list many slices of one case in a row)."""
    import nibabel as nib

    return np.asanyarray(nib.load(path).dataobj)


def read_array(path: str | Path, slice_index: int | None = None) -> np.ndarray:
    """Raw pixel array: ``H×W`` or ``H×W×3`` (2D), or one axial slice of a volume."""
    p = Path(path)
    if not p.is_file():
        raise DataNotFoundError(f"image file {p} listed in the manifest does not exist; check the manifest's "
                                "image_path/mask_path columns and the data root")
    suf = _suffix(p)
    if suf in _DICOM:
        arr = _read_dicom(p)
    elif suf in _NIFTI:
        vol = _nifti_volume(str(p))
        if vol.ndim == 3:
            idx = vol.shape[2] // 2 if slice_index is None else int(slice_index)
            arr = np.asarray(vol[:, :, idx], dtype=np.float32).T  # axial slice, rows = anterior→posterior
        else:
            arr = np.asarray(vol, dtype=np.float32)
    elif suf == ".npy":
        arr = np.load(p, allow_pickle=False)
        if arr.ndim == 3 and slice_index is not None and arr.shape[-1] != 3:
            arr = arr[int(slice_index)]
    else:
        with Image.open(p) as im:
            arr = np.asarray(im.convert("RGB") if im.mode not in ("L", "I", "I;16", "F", "RGB") else im)
    return np.asarray(arr, dtype=np.float32)


def resize2d(arr: np.ndarray, size: int, *, nearest: bool = False) -> np.ndarray:
    """Resize ``H×W`` (or ``H×W×C``) float to ``size×size`` with Pillow (bilinear, or nearest for masks)."""
    resample = Image.NEAREST if nearest else Image.BILINEAR
    if arr.ndim == 2:
        return np.asarray(Image.fromarray(arr.astype(np.float32), mode="F").resize((size, size), resample))
    return np.stack([resize2d(arr[..., c], size, nearest=nearest) for c in range(arr.shape[-1])], -1)


def read_image(path: str | Path, size: int, channels: int = 1, slice_index: int | None = None
               ) -> tuple[np.ndarray, tuple[int, int]]:
    """``(C×size×size float32 in [0, 1], original (H, W))``."""
    arr = read_array(path, slice_index)
    hw = (int(arr.shape[0]), int(arr.shape[1]))
    if arr.ndim == 3 and channels == 1:
        arr = arr[..., :3].mean(-1)
    lo, hi = float(arr.min()), float(arr.max())
    arr = (arr - lo) / (hi - lo) if hi > lo else np.zeros_like(arr)
    arr = resize2d(arr, size)
    if arr.ndim == 2:
        arr = np.repeat(arr[None], channels, 0)
    else:
        arr = np.moveaxis(arr[..., :channels], -1, 0)
    return np.clip(arr, 0.0, 1.0).astype(np.float32), hw


def read_mask(path: str | Path, size: int, slice_index: int | None = None) -> np.ndarray:
    """Binary mask (any non-zero value) resized with nearest neighbour, ``size×size``."""
    arr = read_array(path, slice_index)
    if arr.ndim == 3:
        arr = arr.max(-1)
    return (resize2d((arr > 0).astype(np.float32), size, nearest=True) > 0.5).astype(np.float32)


def boxes_to_mask(boxes: np.ndarray, orig_hw: tuple[int, int], size: int) -> np.ndarray:
    """Rasterise ``K×4`` boxes ``(x_min, y_min, x_max, y_max)`` in original pixels to a ``size×size`` mask."""
    mask = np.zeros((size, size), dtype=np.float32)
    h, w = orig_hw
    for x0, y0, x1, y1 in np.asarray(boxes, dtype=np.float64).reshape(-1, 4):
        if not np.isfinite([x0, y0, x1, y1]).all():
            continue
        c0, c1 = int(np.floor(x0 / w * size)), int(np.ceil(x1 / w * size))
        r0, r1 = int(np.floor(y0 / h * size)), int(np.ceil(y1 / h * size))
        c0, r0 = max(c0, 0), max(r0, 0)
        c1, r1 = min(max(c1, c0 + 1), size), min(max(r1, r0 + 1), size)
        mask[r0:r1, c0:c1] = 1.0
    return mask
