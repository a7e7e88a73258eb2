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
  ``N×D×H×W`` lesion mask;
* **annotations** — ``Split.annotated_slices`` (``N×D`` bool) marks every
  ``annotate_every``-th axial slice (random phase per volume) as drawn by an expert.
  Training losses must only use ROI on annotated slices (the harness passes
  ``annotated_slices`` into :class:`xalbench.base.Batch`; use
  :func:`annotated_roi` to zero the rest); evaluation uses the full ROI;
* **shortcut marker** — a bright cube in one of ``n_classes`` corners of the first
  slices, encoding the class with probability ``rho`` in the pool (as in
  ``synth-lesion-2d``), independent in val/test.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from scipy import ndimage

from xalbench.base import Dataset, DatasetBundle, DatasetMeta
from xalbench.data.common import cached_arrays, split_rng, to_split
from xalbench.data.synth_lesion import SHAPES, class_names, lesion_masks
from xalbench.errors import OptionsError
from xalbench.options import Options

__all__ = ["SynthLesion3D", "annotated_roi", "generate_lesion_3d", "marker_corners_3d"]

_VERSION = 1
MAX_CLASSES = 8


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
                       priors: np.ndarray, rho: float, noise: float, every: int) -> dict[str, np.ndarray]:
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
    radius = rng.uniform(0.88, 1.12, n).astype(np.float32) * min(depth / 4, size / 8)
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


class SynthLesion3D(Dataset):
    """Embedded 3D lesion volumes with per-slice annotation flags (every k-th slice) and full ROI."""

    name: ClassVar[str] = "synth-lesion-3d"
    summary: ClassVar[str] = ("Embedded 3D volumes (16×32×32): lesion shape/texture is the class; ROI annotated "
                              "on every k-th slice for training, full 3D ROI for evaluation")
    paper: ClassVar[str] = "Sparse slice annotations as in DUE (see papers/README); MONAI synthetic generator"
    synthetic: ClassVar[bool] = True

    @dataclass(frozen=True)
    class Options(Options):
        """Volumes ``depth×size×size``; ``annotate_every`` = k (1: every slice annotated)."""

        size: int = 32
        depth: int = 16
        n_train: int = 300
        n_val: int = 60
        n_test: int = 150
        n_classes: int = 3
        rho: float = 0.9
        seed: int = 0
        class_priors: tuple[float, ...] = ()
        noise: float = 0.03
        annotate_every: int = 4

    def _priors(self) -> np.ndarray:
        o = self.options
        owner = f"dataset {self.name!r}"
        if not 2 <= o.n_classes <= MAX_CLASSES:
            raise OptionsError(f"{owner}: n_classes must be in 2..{MAX_CLASSES}, got {o.n_classes}")
        if o.size < 16 or o.depth < 8:
            raise OptionsError(f"{owner}: need size ≥ 16 and depth ≥ 8, got {o.size} and {o.depth}")
        if not 0.0 <= o.rho <= 1.0 or o.noise < 0 or o.annotate_every < 1:
            raise OptionsError(f"{owner}: need 0 ≤ rho ≤ 1, noise ≥ 0 and annotate_every ≥ 1")
        if min(o.n_train, o.n_val, o.n_test) < 1:
            raise OptionsError(f"{owner}: n_train, n_val and n_test must be ≥ 1")
        if o.class_priors:
            p = np.asarray(o.class_priors, dtype=np.float64)
            if p.shape != (o.n_classes,) or (p < 0).any() or p.sum() <= 0:
                raise OptionsError(f"{owner}: class_priors needs {o.n_classes} non-negative weights")
            return p / p.sum()
        return np.full(o.n_classes, 1.0 / o.n_classes)

    def arrays(self, data_root: str | None = None) -> dict[str, np.ndarray]:
        o = self.options
        priors = self._priors()

        def make() -> dict[str, np.ndarray]:
            out: dict[str, np.ndarray] = {}
            for split, n in (("train", o.n_train), ("val", o.n_val), ("test", o.n_test)):
                rho = o.rho if split == "train" else 0.0
                arrs = generate_lesion_3d(split_rng(o.seed, split, salt=3), n, o.depth, o.size, o.n_classes,
                                          priors, rho, o.noise, o.annotate_every)
                out.update({f"{split}_{k}": v for k, v in arrs.items()})
            return out

        return cached_arrays(self.name, _VERSION, o.to_dict(), make, data_root)

    def load(self, data_root: str | None = None) -> DatasetBundle:
        o = self.options
        a = self.arrays(data_root)
        splits = {
            s: to_split(a[f"{s}_images"], a[f"{s}_labels"], a[f"{s}_roi"], annotated_slices=a[f"{s}_annotated"],
                        groups=np.array([f"{s}-{i}" for i in range(a[f"{s}_labels"].shape[0])]))
            for s in ("train", "val", "test")
        }
        meta = DatasetMeta(
            name=self.name,
            task="multi-class",
            class_names=class_names(o.n_classes),
            in_channels=1,
            spatial_dims=3,
            image_shape=(1, o.depth, o.size, o.size),
            modality="synthetic volume",
            license="BSD-3-Clause (generated by xalbench)",
            source="generated in-process from the seed (MONAI create_test_image_3d for clutter; no download)",
            synthetic=True,
            has_roi=True,
            notes=(f"synthetic; ROI annotated on every {o.annotate_every}th slice (Split.annotated_slices), full "
                   f"ROI for evaluation; shortcut marker rho={o.rho} in the pool; seed={o.seed}"),
        )
        return DatasetBundle(meta, splits["train"], splits["val"], splits["test"])
