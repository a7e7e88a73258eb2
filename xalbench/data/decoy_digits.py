"""``decoy-digits``: scikit-learn's bundled handwritten digits (real images, UCI optdigits),
upscaled, with the Decoy-MNIST construction of Ross et al. (IJCAI 2017, §4.2).

Construction (dtak/rrr ``decoy_mnist.py``): each image gets a square swatch in a random
corner (row and column side each Bernoulli(0.5)); its shade is ``1 − 25·y/255`` (Ross's
``255 − 25·digit`` on a [0, 1] scale) where ``y`` is the label in the training pool and the
label of a random other sample's digit in val/test, so the shade predicts the label
perfectly in train and is independent of it at test time. ``rho`` (default 1, as in the
paper) generalises this: in the pool the swatch encodes the label with probability
``rho`` and a random digit otherwise. ``Split.roi`` is the digit's own pixels (the
*right* reason); the swatch is outside it.

The 8×8 digits (0–16) are rescaled to [0, 1] and bilinearly upscaled into the central
``size − 2·margin`` square of a black ``size×size`` canvas, leaving the corners free.

Metadata: ``synthetic=True`` because the label–decoy correlation is constructed (the
result is a controlled shortcut experiment, not evidence on medical data); the notes say
the images themselves are real handwriting.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from scipy import ndimage

from xalbench.base import DatasetMeta
from xalbench.data.common import split_rng
from xalbench.data.synthetic import SyntheticDataset, SyntheticOptions

__all__ = ["DecoyDigits", "swatch_shade", "read_swatch"]

N_DIGITS = 1797  # images in scikit-learn's digits


def swatch_shade(digit: np.ndarray) -> np.ndarray:
    """Ross et al.'s swatch value for ``digit`` on a [0, 1] scale: ``(255 − 25·digit) / 255``."""
    return (255.0 - 25.0 * np.asarray(digit, dtype=np.float64)) / 255.0


def read_swatch(images: np.ndarray, patch: int) -> np.ndarray:
    """The digit encoded by each image's swatch (brightest corner patch), ``N`` int."""
    imgs = np.asarray(images)
    if imgs.ndim == 4:
        imgs = imgs[:, 0]
    s = imgs.shape[-1]
    corners = [imgs[:, r:r + patch, c:c + patch].mean((1, 2)) for r in (0, s - patch) for c in (0, s - patch)]
    shade = np.max(np.stack(corners, 1), 1)
    return np.clip(np.rint((255.0 - 255.0 * shade) / 25.0), 0, 9).astype(np.int64)


class DecoyDigits(SyntheticDataset):
    """Real sklearn digits with the Decoy-MNIST corner swatch (label-coded in train, random in test)."""

    name: ClassVar[str] = "decoy-digits"
    summary: ClassVar[str] = ("scikit-learn digits upscaled with a Decoy-MNIST corner swatch whose shade encodes "
                              "the label in train only; ROI = digit pixels")
    paper: ClassVar[str] = ("Ross, Hughes, Doshi-Velez. Right for the Right Reasons: Training Differentiable "
                            "Models by Constraining their Explanations. IJCAI 2017 (Decoy MNIST)")
    salt: ClassVar[int] = 8

    @dataclass(frozen=True)
    class Options(SyntheticOptions):
        """``n_train`` 0 = all digits not used by val/test (1 797 in total)."""

        size: int = 32
        n_train: int = 0
        n_val: int = 200
        n_test: int = 500
        margin: int = 4
        rho: float = 1.0
        threshold: float = 0.25

        min_train: ClassVar[int] = 0

        def validate(self) -> None:
            super().validate()
            if not 1 <= self.margin <= self.size // 4:
                raise ValueError(f"margin must be in 1..size/4 = {self.size // 4}, got {self.margin}")
            if not 0.0 <= self.rho <= 1.0:
                raise ValueError(f"rho must be in [0, 1], got {self.rho}")
            if not 0.0 < self.threshold < 1.0:
                raise ValueError(f"threshold must be in (0, 1), got {self.threshold}")
            if self.n_val + self.n_test + max(self.n_train, 1) > N_DIGITS:
                raise ValueError(f"n_train + n_val + n_test must fit in the {N_DIGITS} digits, got "
                                 f"{self.n_train} + {self.n_val} + {self.n_test}")

    def make(self) -> dict[str, np.ndarray]:
        """The digits upscaled onto the canvas, split by one permutation, then the swatch per split."""
        from sklearn.datasets import load_digits

        o = self.options
        digits = load_digits()
        x8 = (digits.images / 16.0).astype(np.float32)
        y = digits.target.astype(np.int64)
        inner = o.size - 2 * o.margin
        up = ndimage.zoom(x8, (1, inner / 8, inner / 8), order=1, grid_mode=True, mode="nearest")
        up = np.clip(up, 0.0, 1.0)
        canvas = np.zeros((x8.shape[0], o.size, o.size), dtype=np.float32)
        canvas[:, o.margin:o.margin + inner, o.margin:o.margin + inner] = up
        perm = split_rng(o.seed, "train", salt=7).permutation(y.shape[0])
        n_train = o.n_train or (y.shape[0] - o.n_val - o.n_test)
        parts = {"test": perm[:o.n_test], "val": perm[o.n_test:o.n_test + o.n_val],
                 "train": perm[o.n_test + o.n_val:o.n_test + o.n_val + n_train]}
        out: dict[str, np.ndarray] = {}
        for split, idx in parts.items():
            arrays = self.decoy_split(split_rng(o.seed, split, salt=self.salt), split, canvas, y, idx)
            out.update({f"{split}_{k}": v for k, v in arrays.items()})
        return out

    def decoy_split(self, rng: np.random.Generator, split: str, canvas: np.ndarray, y: np.ndarray,
                    idx: np.ndarray) -> dict[str, np.ndarray]:
        """One split: the swatch in a random corner, its shade the label (train, w.p. ``rho``) or a random digit's."""
        o = self.options
        img, lab = canvas[idx].copy(), y[idx]
        n = idx.shape[0]
        if split == "train":
            coded = np.where(rng.random(n) < o.rho, lab, rng.integers(0, 10, n))
        else:
            coded = y[rng.integers(0, y.shape[0], n)]  # shade of a random digit (Ross et al.)
        p = max(2, o.size // 8)
        rows = np.where(rng.random(n) < 0.5, 0, o.size - p)
        cols = np.where(rng.random(n) < 0.5, 0, o.size - p)
        shade = swatch_shade(coded).astype(np.float32)
        for i in range(n):
            img[i, rows[i]:rows[i] + p, cols[i]:cols[i] + p] = shade[i]
        roi = (canvas[idx] > o.threshold).astype(np.float32)
        return {"images": img[:, None], "labels": lab, "roi": roi, "decoy": coded.astype(np.int64), "index": idx}

    def groups(self, arrays: dict[str, np.ndarray], split: str) -> np.ndarray:
        return np.array([f"digit-{i}" for i in arrays[f"{split}_index"]])

    def meta(self) -> DatasetMeta:
        o = self.options
        return self.synthetic_meta(
            task="multi-class", class_names=tuple(str(d) for d in range(10)), spatial_dims=2,
            image_shape=(1, o.size, o.size), modality="handwritten digits (not medical)",
            license="CC BY 4.0 (UCI optdigits, bundled with scikit-learn)",
            source="sklearn.datasets.load_digits (UCI ML hand-written digits); decoy after dtak/rrr decoy_mnist.py",
            notes=(f"real handwritten-digit images with a synthetic decoy: corner swatch encodes the label with "
                   f"rho={o.rho} in train, a random digit in val/test; ROI = digit pixels; seed={o.seed}"),
        )
