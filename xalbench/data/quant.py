"""Quantising images for storage and converting them back (numpy only; imported by decode workers).

Every path that turns stored integers into tensors — the direct loaders and the mapped
views — calls :func:`to_float`, so both give bitwise-identical ``float32`` values.
"""

from __future__ import annotations

import numpy as np

__all__ = ["MAX_VALUE", "quantize", "to_float"]

MAX_VALUE: dict[str, float] = {"uint8": 255.0, "uint16": 65535.0, "bool": 1.0}


def quantize(x: np.ndarray, dtype: str = "uint8") -> np.ndarray:
    """Float in [0, 1] → ``uint8``/``uint16`` by rounding to the nearest level."""
    out = np.clip(np.asarray(x, dtype=np.float32), 0.0, 1.0)
    out *= np.float32(MAX_VALUE[dtype])
    return np.rint(out, out=out).astype(dtype)


def to_float(arr: np.ndarray, max_value: float = 255.0) -> np.ndarray:
    """Stored integers → ``float32`` ``arr / max_value`` (a new C-contiguous array)."""
    out = np.array(arr, dtype=np.float32, order="C", copy=True)
    if max_value != 1.0:
        out /= np.float32(max_value)
    return out
