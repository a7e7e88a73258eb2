"""``synth-cxr-multilabel``: embedded chest-radiograph-like images with 4–5 co-occurring
findings, each in its own anatomical region, with one ROI per finding.

Anatomy (vectorised numpy): a soft thorax, two dark lung fields with rib-like stripes,
a bright heart/mediastinum. Findings (present independently given a shared latent
"severity", so they co-occur — Gaussian copula with correlation ``correlation``):

====  ===============  ============================================  ====================
 k    finding          appearance                                   region (ROI)
====  ===============  ============================================  ====================
 0    nodule           small bright disc                            upper-medial lung
 1    effusion         bright fill of the lung base, meniscus top   lung base
 2    cardiomegaly     heart enlarged (×1.35 wide)                   the heart
 3    pneumothorax     dark rim without lung markings                lateral upper lung
 4    consolidation    speckled bright patch                        mid lung
====  ===============  ============================================  ====================

``labels`` are ``float32 N×K`` in {0, 1}; ``Split.class_roi`` is ``N×K×H×W`` (zeros
for absent findings) and ``Split.roi`` their union (``has_roi`` False for normal images).
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist
from typing import Any, ClassVar

import numpy as np
from scipy import ndimage

from xalbench.base import DatasetMeta
from xalbench.data.synthetic import SyntheticDataset, SyntheticOptions

__all__ = ["SynthCXRMultilabel", "FINDINGS", "generate_cxr"]

FINDINGS = ("nodule", "effusion", "cardiomegaly", "pneumothorax", "consolidation")


def _col(a: np.ndarray) -> np.ndarray:
    return a.astype(np.float32)[:, None, None]


def generate_cxr(rng: np.random.Generator, n: int, size: int, prevalence: np.ndarray, correlation: float,
                 noise: float) -> dict[str, np.ndarray]:
    """One split: ``images`` N×1×H×W, ``labels`` N×K float, ``class_roi`` N×K×H×W, ``roi`` N×H×W."""
    k = prevalence.shape[0]
    z = rng.standard_normal((n, 1))
    e = rng.standard_normal((n, k))
    thr = np.array([NormalDist().inv_cdf(1.0 - p) for p in prevalence])
    labels = (np.sqrt(correlation) * z + np.sqrt(1.0 - correlation) * e > thr).astype(np.float32)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    yy, xx = yy[None], xx[None]
    jit = lambda lo, hi: _col(rng.uniform(lo, hi, n))  # noqa: E731
    # thorax and lungs (side 0 = image left, side 1 = image right)
    thorax = ((yy - 0.55) / 0.48) ** 2 + ((xx - 0.5) / 0.46) ** 2 <= 1.0
    img = np.where(thorax, 0.42, 0.05) + jit(-0.03, 0.03)
    lung_cy, lung_ay, lung_ax = jit(0.47, 0.52), jit(0.28, 0.32), jit(0.13, 0.15)
    lung_cx = [jit(0.28, 0.31), jit(0.69, 0.72)]
    lungs = [((yy - lung_cy) / lung_ay) ** 2 + ((xx - cx) / lung_ax) ** 2 <= 1.0 for cx in lung_cx]
    lung_any = lungs[0] | lungs[1]
    ribs = 0.04 * np.sin(2 * np.pi * (yy * 9 + jit(0, 1)) + 3 * np.abs(xx - 0.5))
    texture = ndimage.gaussian_filter(rng.standard_normal((n, size, size)).astype(np.float32),
                                      (0, size / 24, size / 24))
    texture /= texture.reshape(n, -1).std(1)[:, None, None] + 1e-6
    lung_tone = 0.16 + ribs + 0.03 * texture
    img = np.where(lung_any, lung_tone, img)
    # heart: normal or enlarged (cardiomegaly)
    wide = np.where(labels[:, 2] > 0, 1.35, 1.0)
    heart_ax = jit(0.10, 0.12) * _col(wide)
    heart = ((yy - jit(0.70, 0.73)) / jit(0.12, 0.14)) ** 2 + ((xx - jit(0.52, 0.55)) / heart_ax) ** 2 <= 1.0
    img = np.where(heart, 0.55 + 0.02 * texture, img)
    lungs = [lung & ~heart for lung in lungs]
    side = rng.integers(0, 2, (n, 4))
    pick = lambda s: np.where(_col(s) > 0, lungs[1], lungs[0])  # noqa: E731
    pick_cx = lambda s: np.where(_col(s) > 0, lung_cx[1], lung_cx[0])  # noqa: E731
    rois = np.zeros((n, len(FINDINGS), size, size), dtype=bool)  # every region drawn, absent ones masked below
    # 0 nodule: small disc in the upper-medial lung
    cx0 = pick_cx(side[:, 0]) + np.where(_col(side[:, 0]) > 0, -1, 1) * jit(0.0, 0.04)
    cy0 = lung_cy - lung_ay * jit(0.35, 0.55)
    rois[:, 0] = (((yy - cy0) ** 2 + (xx - cx0) ** 2) <= jit(0.045, 0.06) ** 2) & pick(side[:, 0])
    # 1 effusion: lung base below a meniscus that rises towards the lateral chest wall
    base = lung_cy + lung_ay * jit(0.45, 0.6)
    lat1 = np.where(_col(side[:, 1]) > 0, xx - pick_cx(side[:, 1]), pick_cx(side[:, 1]) - xx)
    men = base - 0.8 * np.clip(lat1, 0, None) ** 2 / lung_ax
    rois[:, 1] = (yy >= men) & pick(side[:, 1])
    # 2 cardiomegaly: the (enlarged) heart
    rois[:, 2] = heart
    # 3 pneumothorax: lateral rim of the upper lung
    lat = np.where(_col(side[:, 2]) > 0, xx - pick_cx(side[:, 2]), pick_cx(side[:, 2]) - xx)
    rois[:, 3] = (lat >= lung_ax * jit(0.45, 0.6)) & (yy <= lung_cy) & pick(side[:, 2])
    # 4 consolidation: large speckled patch in the mid lung
    cy4 = lung_cy + lung_ay * jit(-0.1, 0.2)
    rois[:, 4] = (((yy - cy4) / 0.09) ** 2 + ((xx - pick_cx(side[:, 3])) / 0.07) ** 2 <= 1.0) & pick(side[:, 3])
    rois = rois[:, :k] & (labels[:, :, None, None] > 0)
    img = np.where(rois[:, 0], 0.75, img)
    if k > 1:
        img = np.where(rois[:, 1], 0.6 + 0.02 * texture, img)
    if k > 3:
        img = np.where(rois[:, 3], 0.04, img)
    if k > 4:
        speck = np.where(rng.random((n, size, size)) < 0.5, 0.7, 0.4)
        img = np.where(rois[:, 4], speck, img)
    img = ndimage.gaussian_filter(img.astype(np.float32), (0, 0.5, 0.5))
    if noise > 0:
        img = img + rng.normal(0.0, noise, img.shape).astype(np.float32)
    img = np.clip(img, 0.0, 1.0).astype(np.float32)
    roi = rois.any(1)
    return {"images": img[:, None], "labels": labels, "class_roi": rois.astype(np.float32),
            "roi": roi.astype(np.float32)}


class SynthCXRMultilabel(SyntheticDataset):
    """Embedded chest-X-ray-like multi-label images: 4–5 co-occurring findings with one ROI each."""

    name: ClassVar[str] = "synth-cxr-multilabel"
    summary: ClassVar[str] = ("Embedded chest-X-ray-like images, 4–5 co-occurring findings in distinct regions, "
                              "one ROI per finding (multi-label)")
    paper: ClassVar[str] = "xalbench synthetic data (for GESTALT-style per-finding explanations and multi-label AL)"
    salt: ClassVar[int] = 5

    @dataclass(frozen=True)
    class Options(SyntheticOptions):
        """``prevalence``: one value per finding or a single value for all; ``correlation`` in [0, 1)."""

        n_findings: int = 5
        prevalence: tuple[float, ...] = (0.3, 0.25, 0.25, 0.2, 0.3)
        correlation: float = 0.4
        noise: float = 0.02

        min_size: ClassVar[int] = 24

        def validate(self) -> None:
            super().validate()
            if self.n_findings not in (4, 5):
                raise ValueError(f"n_findings must be 4 or 5, got {self.n_findings}")
            if not 0.0 <= self.correlation < 1.0:
                raise ValueError(f"correlation must be in [0, 1), got {self.correlation}")
            if not self.noise >= 0:
                raise ValueError(f"noise must be ≥ 0, got {self.noise}")
            p = np.asarray(self.prevalence, dtype=np.float64)
            too_few = p.size != 1 and p.size < self.n_findings
            if too_few or not ((p > 0) & (p < 1)).all():
                raise ValueError(f"prevalence needs 1 or {self.n_findings} values in (0, 1), got {list(self.prevalence)}")

        def prevalences(self) -> np.ndarray:
            """One prevalence per finding."""
            p = np.asarray(self.prevalence, dtype=np.float64)
            if p.size == 1:
                p = np.repeat(p, self.n_findings)
            return p[: self.n_findings]

    def generate_split(self, rng: np.random.Generator, split: str, n: int) -> dict[str, np.ndarray]:
        o = self.options
        return generate_cxr(rng, n, o.size, o.prevalences(), o.correlation, o.noise)

    def split_extras(self, arrays: dict[str, np.ndarray], split: str) -> dict[str, Any]:
        return {"class_roi": arrays[f"{split}_class_roi"], "multilabel": True}

    def meta(self) -> DatasetMeta:
        o = self.options
        return self.synthetic_meta(
            task="multi-label", class_names=FINDINGS[: o.n_findings], spatial_dims=2, image_shape=(1, o.size, o.size),
            modality="synthetic chest radiograph",
            notes=(f"synthetic; findings co-occur (latent correlation {o.correlation}); per-finding ROI in "
                   f"Split.class_roi, union in Split.roi; seed={o.seed}"),
        )
