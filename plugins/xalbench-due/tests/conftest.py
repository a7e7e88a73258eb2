"""Shared fixtures: toy sparsely annotated volumes and one trained tiny interpolator per session."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from xalbench_due.diffusion import DiffusionConfig, SliceDiffusion
from xalbench_due.imputation import ImputeConfig, Imputer, Volume
from xalbench_due.slices import triplets


def ball_volume(depth: int, size: int, radius: float, cz: float, cy: float, cx: float) -> torch.Tensor:
    z, y, x = torch.meshgrid(torch.arange(depth, dtype=torch.float32), torch.arange(size, dtype=torch.float32),
                             torch.arange(size, dtype=torch.float32), indexing="ij")
    return ((((z - cz) / 1.5) ** 2 + (y - cy) ** 2 + (x - cx) ** 2) <= radius**2).float()


def toy_volumes(n: int = 12, depth: int = 9, size: int = 16, seed: int = 0) -> list[tuple[torch.Tensor, np.ndarray]]:
    """Balls stretched along depth; every 2nd slice annotated (full ROI, annotated positions)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        roi = ball_volume(depth, size, rng.uniform(3.5, 5.5), depth / 2 + rng.uniform(-1, 1),
                          size / 2 + rng.uniform(-2, 2), size / 2 + rng.uniform(-2, 2))
        out.append((roi, np.arange(0, depth, 2)))
    return out


def sparse(roi: torch.Tensor, pos: np.ndarray) -> torch.Tensor:
    keep = torch.zeros(roi.shape[0], dtype=torch.bool)
    keep[torch.as_tensor(pos)] = True
    return roi * keep[:, None, None]


TINY = DiffusionConfig(channels=(8, 16), train_steps=300, batch_size=16, lr=3e-3, ddim_steps=5, downsample=2)


@pytest.fixture(scope="session")
def interpolator() -> tuple[SliceDiffusion, list[Volume]]:
    """A tiny interpolator trained once on the toy volumes' annotated triplets (≈12 s of CPU)."""
    vols = [Volume(sparse(roi, pos), pos) for roi, pos in toy_volumes()]
    parts = [triplets(v.roi, v.positions) for v in vols]
    prev, mid, nxt = (torch.cat([p[i] for p in parts]) for i in range(3))
    return SliceDiffusion(TINY).fit(prev, mid, nxt, seed=1), vols


@pytest.fixture
def trained(interpolator) -> tuple[Imputer, list[Volume]]:
    """An imputer (diffusion variance, T = 8) that uses the session's interpolator."""
    model, vols = interpolator
    return Imputer(ImputeConfig(n_samples=8, variance="diffusion", diffusion=TINY, seed=1), interpolator=model), vols
