"""``synth-lesion-3d``: small embedded volumes (default 16×32×32) with 3D lesions whose
shape/texture is the class, sparse slice annotations (for DUE-style training) and the full
3D ROI for evaluation.

Generative model (vectorised numpy + MONAI):

* **anatomy** — a soft ellipsoidal "organ" with smooth 3D texture, plus faint
  class-independent spherical structures ("vessels/cysts") drawn with
  :func:`monai.data.synthetic.create_test_image_3d` (``num_seg_classes=1``; only its
  object mask is used, at low contrast, because its circle intensity would otherwise
  encode the segment class);
* **lesion** — the 3D solid of the 2D families (ball, hollow shell, prolate ellipsoid,
  two balls; smooth or speckled), bright, in the central region; ``Split.roi`` is the full
  ``N×D×H×W`` lesion mask. Its radius is drawn from ``[0.88, 1.12] × min(depth / 4, size / 8)
  × lesion_scale`` voxels: ``lesion_scale > 1`` keeps a lesion's size in voxels in a smaller
  field of view (a 12×20×20 volume with ``lesion_scale = 1.2`` holds the lesions of a
  12×24×24 one), as far as the lesion and the markers fit;
* **annotations** — ``Split.annotated_slices`` (``N×D`` bool) marks every
  ``annotate_every``-th axial slice (random phase per volume) as drawn by an expert.
  Training sees ROI on annotated slices only (the harness zeroes the others in every
  revealed mask — :func:`annotated_roi` — and passes ``annotated_slices`` into
  :class:`xalbench.base.Batch`); evaluation uses the full ROI;
* **shortcut marker** — a bright cube in one of ``n_classes`` corners of the first
  slices, encoding the class with probability ``rho`` in the pool (as in
  ``synth-lesion-2d``), independent in val/test.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from scipy import ndimage

from xalbench.base import DatasetMeta
from xalbench.data.synth_lesion import SHAPES, class_names, lesion_masks
from xalbench.data.synthetic import LesionOptions, SyntheticDataset, smallest

__all__ = ["SynthLesion3D", "annotated_roi", "generate_lesion_3d", "lesion_fits_3d", "marker_corners_3d",
           "smallest_volume"]

MAX_RADIUS = 1.12  # largest lesion radius, as a fraction of min(depth / 4, size / 8) × lesion_scale


def annotated_roi(roi: torch.Tensor, annotated_slices: torch.Tensor | None) -> torch.Tensor:
    """ROI ``N×D×H×W`` with non-annotated slices zeroed (what a partial-annotation loss may see)."""
    if annotated_slices is None:
        return roi
    return roi * annotated_slices.to(roi.dtype)[:, :, None, None]


def marker_corners_3d(depth: int, size: int, n_classes: int) -> list[tuple[int, int, int]]:
    """(z, y, x) origin of each class's marker cube: 4 corners of the first slices, then of the last."""
    m = max(2, size // 12)
    lo, hi, zlo, zhi = 1, size - 1 - m, 1, depth - 1 - m
    corners = [(lo, lo), (lo, hi), (hi, lo), (hi, hi)]
    return [(z, y, x) for z in (zlo, zhi) for (y, x) in corners][:n_classes]


def generate_lesion_3d(rng: np.random.Generator, n: int, depth: int, size: int, n_classes: int,
                       priors: np.ndarray, rho: float, noise: float, every: int,
                       lesion_scale: float = 1.0) -> dict[str, np.ndarray]:
    """One split: ``images`` N×1×D×H×W, ``labels``, ``roi`` N×D×H×W, ``annotated`` N×D, ``marker``."""
    from monai.data.synthetic import create_test_image_3d  # lazy: monai import costs ~4 s
    labels = rng.choice(n_classes, size=n, p=priors).astype(np.int64)
    zz, yy, xx = (g[None] for g in np.mgrid[0:depth, 0:size, 0:size].astype(np.float32))
    col = (slice(None), None, None, None)
    cz = depth / 2 + rng.uniform(-0.5, 0.5, n).astype(np.float32)
    cy = size / 2 + rng.uniform(-0.04, 0.04, n).astype(np.float32) * size
    cx = size / 2 + rng.uniform(-0.04, 0.04, n).astype(np.float32) * size
    az = rng.uniform(0.42, 0.5, n).astype(np.float32) * depth
    ay = rng.uniform(0.36, 0.44, n).astype(np.float32) * size
    ax = rng.uniform(0.30, 0.40, n).astype(np.float32) * size
    ell = ((zz - cz[col]) / az[col]) ** 2 + ((yy - cy[col]) / ay[col]) ** 2 + ((xx - cx[col]) / ax[col]) ** 2
    body = 1.0 / (1.0 + np.exp((ell - 1.0) * 10.0))
    tex = ndimage.gaussian_filter(rng.standard_normal((n, depth, size, size)).astype(np.float32),
                                  (0, depth / 10, size / 12, size / 12))
    tex /= tex.reshape(n, -1).std(1)[col] + 1e-6
    level = rng.uniform(0.30, 0.42, n).astype(np.float32)[col]
    img = body * (level + 0.05 * tex) + 0.03
    # faint anatomical clutter from MONAI's generator (object mask only; see module docstring)
    legacy = np.random.RandomState(int(rng.integers(2**31 - 1)))
    rad_max = max(2, min(depth, size) // 2 - 1)
    clutter = np.stack([
        create_test_image_3d(depth, size, size, num_objs=3, rad_max=min(3, rad_max), rad_min=1, noise_max=0.0,
                             num_seg_classes=1, random_state=legacy)[1] > 0
        for _ in range(n)
    ]).astype(np.float32)
    img = img + 0.08 * clutter * body
    # lesion
    radius = rng.uniform(0.88, MAX_RADIUS, n).astype(np.float32) * np.float32(min(depth / 4, size / 8) * lesion_scale)
    m = max(2, size // 12)
    ly = rng.uniform(m + 2 + 1.6 * radius, size - 3 - m - 1.6 * radius).astype(np.float32)
    lx = rng.uniform(m + 2 + 1.6 * radius, size - 3 - m - 1.6 * radius).astype(np.float32)
    lz = rng.uniform(m + 1 + 0.6 * radius, depth - 2 - m - 0.6 * radius).astype(np.float32)
    theta = rng.uniform(0, np.pi, n).astype(np.float32)
    dz, dy, dx = zz - lz[col], yy - ly[col], xx - lx[col]
    roi = lesion_masks(labels % len(SHAPES), dy, dx, radius, theta, dz=dz)
    contrast = rng.uniform(0.28, 0.42, n).astype(np.float32)[col]
    smooth = 1.0 - 0.35 * np.clip((dz * dz + dy * dy + dx * dx) / radius[col] ** 2, 0, 1)
    speck = np.where(rng.random(roi.shape) < 0.5, 1.0, 0.35).astype(np.float32)
    pattern = np.where(((labels // len(SHAPES)) % 2 == 1)[col], speck, smooth)
    img = img + roi * contrast * pattern
    if noise > 0:
        img = img + rng.normal(0.0, noise, img.shape).astype(np.float32)
    img = np.clip(img, 0.0, 0.92).astype(np.float32)
    keep = rng.random(n) < rho
    marker = np.where(keep, labels, rng.integers(0, n_classes, n)).astype(np.int64)
    for k, (z0, y0, x0) in enumerate(marker_corners_3d(depth, size, n_classes)):
        idx = np.flatnonzero(marker == k)
        img[idx, z0:z0 + m, y0:y0 + m, x0:x0 + m] = 1.0
    phase = rng.integers(0, every, n)
    annotated = (np.arange(depth)[None, :] - phase[:, None]) % every == 0
    return {"images": img[:, None], "labels": labels, "roi": roi.astype(np.float32), "annotated": annotated,
            "marker": marker}


def lesion_fits_3d(size: int, depth: int, lesion_scale: float = 1.0) -> tuple[bool, bool]:
    """Whether the largest lesion plus the marker fit across a slice (H, W) and along the depth."""
    r, m = MAX_RADIUS * min(depth / 4, size / 8) * lesion_scale, max(2, size // 12)
    return 2 * m + 5 + 3.2 * r <= size, 2 * m + 3 + 1.2 * r <= depth


def smallest_volume(size: int, depth: int, lesion_scale: float = 1.0) -> tuple[int, int]:
    """The smallest ``(size, depth)``, not below the given ones, in which the largest lesion fits."""
    while True:
        across, along = lesion_fits_3d(size, depth, lesion_scale)
        if across and along:
            return size, depth
        if not across:
            size = smallest(lambda s, d=depth: lesion_fits_3d(s, d, lesion_scale)[0], size)
        if not along:
            depth = smallest(lambda d, s=size: lesion_fits_3d(s, d, lesion_scale)[1], depth)


class SynthLesion3D(SyntheticDataset):
    """Embedded 3D lesion volumes with per-slice annotation flags (every k-th slice) and full ROI."""

    name: ClassVar[str] = "synth-lesion-3d"
    summary: ClassVar[str] = ("Embedded 3D volumes (16×32×32): lesion shape/texture is the class; ROI annotated "
                              "on every k-th slice for training, full 3D ROI for evaluation")
    paper: ClassVar[str] = "Sparse slice annotations as in DUE; MONAI synthetic generator"
    salt: ClassVar[int] = 3

    @dataclass(frozen=True)
    class Options(LesionOptions):
        """Volumes ``depth×size×size``; ``annotate_every`` = k (1: every slice annotated); ``lesion_scale``
        multiplies every lesion's radius (module docstring)."""

        size: int = 32
        n_train: int = 300
        n_val: int = 60
        n_test: int = 150
        depth: int = 16
        annotate_every: int = 4
        lesion_scale: float = 1.0

        def validate(self) -> None:
            super().validate()
            if self.depth < 8:
                raise ValueError(f"depth must be ≥ 8, got {self.depth}")
            if self.annotate_every < 1:
                raise ValueError(f"annotate_every must be ≥ 1, got {self.annotate_every}")
            if not 0.5 <= self.lesion_scale <= 2.0:
                raise ValueError(f"lesion_scale must be in [0.5, 2], got {self.lesion_scale}")
            size, depth = smallest_volume(self.size, self.depth, self.lesion_scale)
            if (size, depth) != (self.size, self.depth):
                radius = MAX_RADIUS * min(self.depth / 4, self.size / 8) * self.lesion_scale
                need = " and ".join(f"{k} ≥ {v}" for k, v, now in (("size", size, self.size),
                                                                    ("depth", depth, self.depth)) if v != now)
                raise ValueError(f"a {self.depth}×{self.size}×{self.size} volume is too small for a lesion of "
                                 f"radius up to {radius:.1f} px plus the markers; use {need}")

    def generate_split(self, rng: np.random.Generator, split: str, n: int) -> dict[str, np.ndarray]:
        o = self.options
        rho = o.rho if split == "train" else 0.0
        return generate_lesion_3d(rng, n, o.depth, o.size, o.n_classes, o.priors(), rho, o.noise, o.annotate_every,
                                  o.lesion_scale)

    def split_extras(self, arrays: dict[str, np.ndarray], split: str) -> dict[str, Any]:
        return {"annotated_slices": arrays[f"{split}_annotated"]}

    def meta(self) -> DatasetMeta:
        o = self.options
        return self.synthetic_meta(
            task="multi-class", class_names=class_names(o.n_classes), spatial_dims=3,
            image_shape=(1, o.depth, o.size, o.size), modality="synthetic volume",
            source="generated in-process from the seed (MONAI create_test_image_3d for clutter; no download)",
            notes=(f"synthetic; ROI annotated on every {o.annotate_every}th slice (Split.annotated_slices), full "
                   f"ROI for evaluation; shortcut marker rho={o.rho} in the pool; seed={o.seed}"),
        )
