"""The SIIM-ACR Pneumothorax competition's run-length encoding of masks.

``EncodedPixels`` is ``-1`` for an image without pneumothorax, else space-separated pairs
``start length``. Two quirks differ from the common (Carvana/COCO-style) RLE:

* **relative starts** — each ``start`` counts pixels from the end of the previous run
  (the first from pixel 0), not from the start of the image;
* **column-major order** — pixels are numbered down the columns: flat position ``p`` is
  row ``p % H``, column ``p // H`` of an ``H×W`` image (the organisers' decoder fills a
  ``W×H`` array row by row and transposes it).

An image with several rows in ``train-rle.csv`` has several masks; its ROI is their union.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

__all__ = ["rle_decode", "rle_encode", "rle_decode_union", "is_empty_rle"]


def is_empty_rle(text: str) -> bool:
    """True for the competition's empty mask (``-1``, possibly with spaces) or a blank cell."""
    t = str(text).strip()
    return t in ("", "-1", "nan")


def rle_decode(text: str, hw: tuple[int, int], *, relative: bool = True) -> np.ndarray:
    """One competition RLE string → ``H×W`` uint8 mask in {0, 1} (image orientation).

    ``relative = False`` reads absolute 0-based starts (still column-major)."""
    h, w = int(hw[0]), int(hw[1])
    flat = np.zeros(h * w, dtype=np.uint8)
    if is_empty_rle(text):
        return flat.reshape(h, w)
    try:
        values = np.asarray([int(v) for v in str(text).split()], dtype=np.int64)
    except ValueError as exc:
        raise ValueError(f"run-length mask {str(text)[:40]!r}… is not space-separated integers") from exc
    if values.size % 2:
        raise ValueError(f"run-length mask has an odd number of values ({values.size}); expected start/length pairs")
    pos = 0
    for start, length in zip(values[0::2], values[1::2], strict=True):
        if start < 0 or length < 0:
            raise ValueError("run-length mask has a negative start or length")
        pos = pos + int(start) if relative else int(start)
        if pos + length > h * w:
            raise ValueError(f"run-length mask runs past the end of a {h}×{w} image; is the image size right?")
        flat[pos:pos + length] = 1
        pos += int(length)
    return flat.reshape((h, w), order="F")


def rle_decode_union(texts: Iterable[str], hw: tuple[int, int], *, relative: bool = True) -> np.ndarray:
    """Union of several masks of one image (the competition's several rows per image)."""
    out = np.zeros((int(hw[0]), int(hw[1])), dtype=np.uint8)
    for text in texts:
        out |= rle_decode(text, hw, relative=relative)
    return out


def rle_encode(mask: np.ndarray) -> str:
    """Inverse of :func:`rle_decode` (``-1`` for an empty mask)."""
    flat = (np.asarray(mask) > 0).reshape(-1, order="F").astype(np.int8)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], flat, [0]])))
    if edges.size == 0:
        return "-1"
    starts, ends = edges[0::2], edges[1::2]
    out, prev_end = [], 0
    for s, e in zip(starts, ends, strict=True):
        out += [str(int(s - prev_end)), str(int(e - s))]
        prev_end = e
    return " ".join(out)
