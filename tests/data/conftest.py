"""Fabricators of tiny real-format files (DICOM, PNG/JPEG, NIfTI, npz, CSV) for the loader tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def write_dicom(path: Path, arr: np.ndarray, monochrome1: bool = False) -> None:
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Rows, ds.Columns = arr.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME1" if monochrome1 else "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.RescaleSlope, ds.RescaleIntercept = 1, 0
    ds.PixelData = arr.astype(np.uint16).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(str(path), enforce_file_format=True)


def box_image(h: int, w: int, boxes: list[tuple[int, int, int, int]], rng: np.random.Generator,
              hi: float = 3000.0) -> np.ndarray:
    """Dim noisy image with bright rectangles at ``(x0, y0, x1, y1)`` boxes."""
    img = rng.uniform(100, 400, (h, w))
    for x0, y0, x1, y1 in boxes:
        img[y0:y1, x0:x1] = hi
    return img


def write_png(path: Path, arr: np.ndarray, mode: str = "L") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    a = np.clip(arr, 0, 255).astype(np.uint8)
    Image.fromarray(a, mode=None).convert(mode).save(path)


@pytest.fixture(scope="session")
def fab():
    """Namespace of fabricator functions."""

    class Fab:
        dicom = staticmethod(write_dicom)
        png = staticmethod(write_png)
        boxes = staticmethod(box_image)

    return Fab
