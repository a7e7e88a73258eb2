"""Fixtures of the sandbox tests: the cheater distribution on ``sys.path`` and a tiny cell ("world")."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import torch

from tests.conftest import dist_on_path
from tests.sandbox.cheaters import CHEATER_MODULE, install_cheaters
from xalbench.base import Split
from xalbench.models.small_cnn import SmallCNN
from xalbench.sandbox import ComponentRef, SandboxSpec, digest, make_cell_data, make_round_request
from xalbench.sandbox.context import StrategyContext
from xalbench.testing.contexts import make_split

MODEL_OPTIONS = {"width": 4, "n_blocks": 2, "dropout": 0.25}


@pytest.fixture(scope="module")
def cheaters(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """The ``xalbench_cheaters`` module, importable here and in sandboxes (its site is on ``sys.path`` for
    this test module only, so other tests' registries never see the cheaters)."""
    site = install_cheaters(tmp_path_factory.mktemp("cheater-site"))
    with dist_on_path(site, CHEATER_MODULE):
        yield importlib.import_module(CHEATER_MODULE)


@dataclass
class World:
    """One tiny cell: a pool with labels and ROIs (hidden-mask track), a val split, a trained-looking model."""

    pool: Split
    val: Split
    model: torch.nn.Module
    labelled: np.ndarray
    k: int = 6
    visible: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def spec(self, strategy: Any, options: dict[str, Any] | None = None, **settings: Any) -> SandboxSpec:
        settings.setdefault("timeout", 60.0)
        return SandboxSpec(strategy=ComponentRef.of("strategy", strategy, options),
                           model=ComponentRef.of("model", SmallCNN, MODEL_OPTIONS), explainer=None,
                           task="multi-class", num_classes=3, in_channels=1, spatial_dims=2,
                           pool_masks_visible=self.visible, batch_size=32, **settings)

    def data(self) -> Any:
        return make_cell_data(self.pool, self.val, pool_masks_visible=self.visible)

    def request(self, r: int = 0, labelled: np.ndarray | None = None) -> Any:
        labelled = self.labelled if labelled is None else labelled
        return make_round_request(r, self.model, self.pool, labelled, np.ones(len(labelled), dtype=bool),
                                  rng_seed=100 + r, torch_seed=200 + r, k=self.k)

    def legacy_context(self, r: int = 0, labelled: np.ndarray | None = None) -> StrategyContext:
        """The context the harness built before the sandbox (live tensors, private pool ROIs)."""
        labelled = self.labelled if labelled is None else labelled
        lab = torch.as_tensor(labelled)
        return StrategyContext(
            model=self.model, pool_images=self.pool.images, labelled=labelled,
            labelled_labels=self.pool.labels[lab], labelled_roi=self.pool.roi[lab],
            labelled_has_roi=self.pool.has_roi[lab], val=self.val, task="multi-class", num_classes=3,
            spatial_dims=2, rng=np.random.default_rng(100 + r), device=torch.device("cpu"), round_index=r,
            seed=200 + r, explainer=None, pool_roi=self.pool.roi, pool_has_roi=self.pool.has_roi,
            pool_masks_visible=self.visible, batch_size=32)

    def parent_digest(self) -> str:
        """Full SHA-256 of everything the harness holds for this cell."""
        p, v = self.pool, self.val
        return digest(p.images, p.labels, p.roi, p.has_roi, v.images, v.labels, v.roi, v.has_roi)

    def unlabelled(self, labelled: np.ndarray | None = None) -> np.ndarray:
        labelled = self.labelled if labelled is None else labelled
        return np.setdiff1d(np.arange(len(self.pool)), labelled)


def make_world(n_pool: int = 48, seed: int = 0, visible: bool = False) -> World:
    pool = make_split(n_pool, task="multi-class", num_classes=3, spatial_dims=2, seed=seed)
    val = make_split(12, task="multi-class", num_classes=3, spatial_dims=2, seed=seed + 1)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = SmallCNN(MODEL_OPTIONS).build(1, 3, 2)
        with torch.no_grad():
            model.classifier.weight.mul_(8.0)
    model.train()  # as the harness leaves it after a round's training
    labelled = np.random.default_rng(seed).choice(n_pool, size=10, replace=False).astype(np.int64)
    return World(pool=pool, val=val, model=model, labelled=labelled, visible=visible)


@pytest.fixture
def world() -> World:
    return make_world()
