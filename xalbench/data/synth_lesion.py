"""``synth-lesion-2d``: embedded single-channel "scans" whose lesion shape/texture is the class,
with a lesion ROI and a class-correlated shortcut marker (no download, seeded).

Generative model (vectorised numpy, ~0.1 s for 2 000 images at 32×32):

* **anatomy** — an elliptical "body" (random centre/axes/intensity, soft edge) times smooth
  low-frequency texture (Gaussian-blurred white noise), plus optional pixel noise;
* **lesion** (the class) — shape family ``c % 4`` ∈ {round, ring, elongated, bilobed} and
  texture ``(c // 4) % 2`` ∈ {smooth, speckled}; its pixels are the ROI (``Split.roi``);
  the lesion lies in the central region, never under a marker;
* **shortcut marker** — a small bright square at one of ``n_classes`` border positions
  (corners first, then edge midpoints). In the train pool the position encodes the true
  class with probability ``rho`` and a uniformly random class otherwise, so
  ``P(marker == label) = rho + (1 - rho) / K``; in val/test the position is uniform and
  independent of the class (``rho = 0``: no shortcut anywhere). The marker is never
  part of the ROI, so a model that uses it looks at the wrong place.

Each split has its own RNG stream (``SeedSequence([seed, split])``, ``seed`` = the dataset
seed), so ``n_test`` does not change the pool. ``class_priors`` (one weight per class,
summing to 1) draws labels from those priors in every split — the imbalanced variant.
Options are checked when the dataset is built (:mod:`xalbench.data.synthetic`), including
that the largest lesion fits between the markers (``size`` ≥ 17).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from scipy import ndimage

from xalbench.base import DatasetMeta
from xalbench.data.synthetic import LesionOptions, SyntheticDataset, smallest

__all__ = ["SynthLesion2D", "lesion_masks", "marker_boxes", "read_marker", "SHAPES", "TEXTURES", "class_names",
           "lesion_fits"]

SHAPES = ("round", "ring", "elongated", "bilobed")
TEXTURES = ("smooth", "speckled")
MAX_CLASSES = len(SHAPES) * len(TEXTURES)
MAX_RADIUS = 0.14  # largest lesion radius, as a fraction of the image side


def class_names(n_classes: int) -> tuple[str, ...]:
    return tuple(
        f"{SHAPES[c % len(SHAPES)]}" + ("" if n_classes <= len(SHAPES) else f"-{TEXTURES[c // len(SHAPES)]}")
        for c in range(n_classes)
    )


def marker_size(size: int) -> int:
    return max(2, size // 12)


def marker_boxes(size: int, n_classes: int) -> list[tuple[int, int]]:
    """Top-left (row, col) of each class's marker square: 4 corners, then 4 edge midpoints."""
    m = marker_size(size)
    lo, hi, mid = 1, size - 1 - m, (size - m) // 2
    return [(lo, lo), (lo, hi), (hi, lo), (hi, hi), (lo, mid), (hi, mid), (mid, lo), (mid, hi)][:n_classes]


def read_marker(images: np.ndarray, n_classes: int) -> np.ndarray:
    """Which class position holds the marker in each image (``N×H×W`` or ``N×1×H×W``)."""
    imgs = np.asarray(images)
    if imgs.ndim == 4:
        imgs = imgs[:, 0]
    size, m = imgs.shape[-1], marker_size(imgs.shape[-1])
    means = np.stack([imgs[:, r:r + m, c:c + m].mean(axis=(1, 2)) for r, c in marker_boxes(size, n_classes)], 1)
    return means.argmax(1)


def _smooth_noise(rng: np.random.Generator, n: int, size: int, sigma: float) -> np.ndarray:
    field = ndimage.gaussian_filter(rng.standard_normal((n, size, size)).astype(np.float32), (0, sigma, sigma))
    field /= field.reshape(n, -1).std(1).reshape(n, 1, 1) + 1e-6
    return field


def lesion_masks(shape_id: np.ndarray, dy: np.ndarray, dx: np.ndarray, r: np.ndarray, theta: np.ndarray,
                 dz: np.ndarray | None = None) -> np.ndarray:
    """Binary lesion masks from centred coordinates (``N×H×W``, or ``N×D×H×W`` with ``dz``).

    ``theta`` rotates the shape in the H×W plane; in 3D the shapes are their solids of
    the same family (sphere, hollow shell, prolate ellipsoid, two spheres).
    """
    masks = np.zeros(dx.shape, dtype=bool)
    for sid in range(len(SHAPES)):
        sel = np.flatnonzero(shape_id == sid)
        if sel.size == 0:
            continue
        extra = (sel.size,) + (1,) * (dx.ndim - 1)
        rs = r[sel].reshape(extra)
        c, s = np.cos(theta[sel]).reshape(extra), np.sin(theta[sel]).reshape(extra)
        dxs, dys = dx[sel], dy[sel]
        us, vs = c * dxs + s * dys, -s * dxs + c * dys
        w2 = 0.0 if dz is None else dz[sel] ** 2
        d2s = dxs * dxs + dys * dys + w2
        if sid == 0:  # round: filled disc / ball
            m = d2s <= rs**2
        elif sid == 1:  # ring: annulus / hollow shell
            m = (d2s <= rs**2) & (d2s >= (0.55 * rs) ** 2)
        elif sid == 2:  # elongated: ellipse / ellipsoid with axes 1.6r × 0.5r (× 0.5r)
            m = (us / (1.6 * rs)) ** 2 + (vs**2 + w2) / (0.5 * rs) ** 2 <= 1.0
        else:  # bilobed: two discs / balls of 0.6r at ±0.75r along theta
            rest = vs**2 + w2
            m = ((us - 0.75 * rs) ** 2 + rest <= (0.6 * rs) ** 2) | ((us + 0.75 * rs) ** 2 + rest <= (0.6 * rs) ** 2)
        masks[sel] = m
    return masks


def generate_lesion_2d(rng: np.random.Generator, n: int, size: int, n_classes: int, priors: np.ndarray,
                       rho: float, noise: float) -> dict[str, np.ndarray]:
    """One split: ``images`` N×1×H×W float32, ``labels`` N, ``roi`` N×H×W, ``marker`` N."""
    labels = rng.choice(n_classes, size=n, p=priors).astype(np.int64)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    yy, xx = yy[None], xx[None]
    # anatomy: soft-edged ellipse "body" modulated by smooth texture
    cy = size / 2 + rng.uniform(-0.04, 0.04, n).astype(np.float32) * size
    cx = size / 2 + rng.uniform(-0.04, 0.04, n).astype(np.float32) * size
    ay = rng.uniform(0.36, 0.44, n).astype(np.float32) * size
    ax = rng.uniform(0.30, 0.40, n).astype(np.float32) * size
    ell = ((yy - cy[:, None, None]) / ay[:, None, None]) ** 2 + ((xx - cx[:, None, None]) / ax[:, None, None]) ** 2
    body = 1.0 / (1.0 + np.exp((ell - 1.0) * 12.0))
    level = rng.uniform(0.30, 0.45, n).astype(np.float32)[:, None, None]
    texture = _smooth_noise(rng, n, size, sigma=size / 12)
    img = body * (level + 0.06 * texture) + 0.03
    # lesion: class-specific shape/texture in the central region (clear of the markers)
    radius = rng.uniform(0.10, MAX_RADIUS, n).astype(np.float32) * size
    margin = marker_size(size) + 2 + 1.6 * radius
    ly = rng.uniform(margin, size - 1 - margin).astype(np.float32)
    lx = rng.uniform(margin, size - 1 - margin).astype(np.float32)
    theta = rng.uniform(0, np.pi, n).astype(np.float32)
    dy, dx = yy - ly[:, None, None], xx - lx[:, None, None]
    roi = lesion_masks(labels % len(SHAPES), dy, dx, radius, theta)
    contrast = rng.uniform(0.28, 0.42, n).astype(np.float32)[:, None, None]
    smooth = 1.0 - 0.35 * np.clip((dy * dy + dx * dx) / radius[:, None, None] ** 2, 0, 1)
    speck = np.where(rng.random((n, size, size)) < 0.5, 1.0, 0.35).astype(np.float32)
    pattern = np.where(((labels // len(SHAPES)) % 2 == 1)[:, None, None], speck, smooth)
    img = img + roi * contrast * pattern
    if noise > 0:
        img = img + rng.normal(0.0, noise, (n, size, size)).astype(np.float32)
    # shortcut marker: true class w.p. rho, else a uniformly random class
    keep = rng.random(n) < rho
    marker = np.where(keep, labels, rng.integers(0, n_classes, n)).astype(np.int64)
    img = np.clip(img, 0.0, 0.92).astype(np.float32)
    m = marker_size(size)
    boxes = marker_boxes(size, n_classes)
    for k, (r0, c0) in enumerate(boxes):
        idx = np.flatnonzero(marker == k)
        img[idx, r0:r0 + m, c0:c0 + m] = 1.0
    return {"images": img[:, None], "labels": labels, "roi": roi.astype(np.float32), "marker": marker}


def lesion_fits(size: int) -> bool:
    """Whether the largest lesion (radius ``0.14·size``, elongated to 1.6×) fits between the markers."""
    margin = marker_size(size) + 2 + 1.6 * MAX_RADIUS * size
    return margin <= size - 1 - margin


class SynthLesion2D(SyntheticDataset):
    """Embedded 2D lesion scans: shape/texture = class, lesion mask = ROI, shortcut marker with strength rho."""

    name: ClassVar[str] = "synth-lesion-2d"
    summary: ClassVar[str] = ("Embedded 2D scans: lesion shape/texture is the class, lesion mask is the ROI, "
                              "border marker correlates with the class in the pool (rho)")
    paper: ClassVar[str] = "Shortcut marker after Ross et al., IJCAI 2017 (Decoy MNIST); xalbench synthetic data"

    @dataclass(frozen=True)
    class Options(LesionOptions):
        """``size`` px square; ``rho`` shortcut strength in the pool; ``class_priors`` () = uniform."""

        min_size: ClassVar[int] = smallest(lesion_fits, 2)
        min_size_reason: ClassVar[str] = f" (a lesion of radius up to {MAX_RADIUS:.0%} of it must fit between the markers)"

    def generate_split(self, rng: np.random.Generator, split: str, n: int) -> dict[str, np.ndarray]:
        """``images``, ``labels``, ``roi`` and ``marker`` (the marker's class position) of one split."""
        o = self.options
        rho = o.rho if split == "train" else 0.0
        return generate_lesion_2d(rng, n, o.size, o.n_classes, o.priors(), rho, o.noise)

    def meta(self) -> DatasetMeta:
        o = self.options
        imbalanced = f", class priors {list(o.class_priors)}" if o.class_priors else ""
        return self.synthetic_meta(
            task="multi-class", class_names=class_names(o.n_classes), spatial_dims=2, image_shape=(1, o.size, o.size),
            modality="synthetic scan",
            notes=(f"synthetic; shortcut marker rho={o.rho} in the train pool, independent in val/test"
                   f"{imbalanced}; seed={o.seed}"),
        )
