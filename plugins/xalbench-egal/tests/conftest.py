"""Shared fixtures: tiny contexts whose pool ROIs the test controls."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch

from xalbench.sandbox.context import StrategyContext
from xalbench.testing import make_context


def rebuild(ctx: StrategyContext, *, pool_roi: torch.Tensor | None = None, visible: bool = True) -> StrategyContext:
    """The same world as ``ctx`` (model, pool, labelled set, seed) with other pool ROIs / visibility."""
    roi = ctx._pool_roi if pool_roi is None else pool_roi
    return StrategyContext(
        model=ctx.model, pool_images=ctx.pool_images, labelled=ctx.labelled, labelled_labels=ctx.labelled_labels,
        labelled_roi=ctx.labelled_roi, labelled_has_roi=ctx.labelled_has_roi, val=ctx.val, task=ctx.task,
        num_classes=ctx.num_classes, spatial_dims=ctx.spatial_dims, rng=np.random.default_rng(ctx.seed),
        device=ctx.device, round_index=ctx.round_index, seed=ctx.seed, explainer=ctx.explainer,
        pool_roi=roi, pool_has_roi=roi.flatten(1).amax(1) > 0, pool_masks_visible=visible,
        batch_size=ctx.batch_size,
    )


@pytest.fixture
def rebuilt() -> Callable[..., StrategyContext]:
    """The :func:`rebuild` helper as a fixture (test modules cannot import conftest under importlib mode)."""
    return rebuild


@pytest.fixture
def context() -> Callable[..., StrategyContext]:
    """``context(**make_context_kwargs)``: a fresh tiny context with visible pool ROIs."""

    def make(**kwargs: object) -> StrategyContext:
        kwargs.setdefault("pool_masks_visible", True)
        kwargs.setdefault("n_pool", 60)
        return make_context(**kwargs)  # type: ignore[arg-type]

    return make
