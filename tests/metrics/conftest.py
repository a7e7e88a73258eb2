"""Fixtures for the faithfulness metrics (helpers in ``faithful_helpers``)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from torch import Tensor

sys.path.insert(0, str(Path(__file__).parent))

from faithful_helpers import RegionNet, region_images, region_mask  # noqa: E402

from xalbench.plugins import load_registry  # noqa: E402


@pytest.fixture(scope="session")
def registry():
    return load_registry()


@pytest.fixture(scope="session")
def region2d() -> tuple[RegionNet, Tensor, Tensor]:
    mask = region_mask((16, 16), 5, 10)  # 25 of 256 pixels
    return RegionNet(mask).eval(), mask, region_images(mask, 16, seed=0)


@pytest.fixture(scope="session")
def region3d() -> tuple[RegionNet, Tensor, Tensor]:
    mask = region_mask((8, 8, 8), 3, 6)  # 27 of 512 voxels
    return RegionNet(mask).eval(), mask, region_images(mask, 12, seed=1)
