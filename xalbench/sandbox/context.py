"""The concrete read-only world a strategy sees (implements ``xalbench.base.StrategyContext``).

:class:`StrategyContext` holds pool images but **no pool labels**, no oracle and no test
set; pool ROIs only when the track shows them. Touching a forbidden attribute raises
:class:`InformationAccessError` *and* is recorded, so a strategy that catches the error
still fails its cell. It is built in one place, :func:`build_context`, from the messages
that cross the sandbox boundary (:mod:`xalbench.sandbox.messages`) and a model rebuilt by
:func:`build_model` — in the strategy's sandbox process, in its in-process twin, in the
conformance kit and when a finished round is replayed, so all of them show a strategy exactly
the same thing. The per-round cache is :class:`~xalbench.sandbox.pool_cache.PoolCache`.

``pool_images`` may be a tensor or a read-only :class:`~xalbench.data.mapped.MappedArray`
view of a prepared cache (a pool larger than RAM); then ``unlabelled_images``, ``pool_roi``
and the cache's input are lazy views of it too (nothing is read until a strategy indexes them).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from xalbench.base import ExplainableNet, Explainer, Split, Task
from xalbench.data.mapped import MappedArray, lazy_take
from xalbench.errors import InformationAccessError
from xalbench.sandbox.messages import CellData, MappedRef, RoundRequest, SandboxSpec, state_dict_tensors
from xalbench.sandbox.pool_cache import PoolCache

__all__ = ["PoolCache", "StrategyContext", "build_context", "build_model"]


class StrategyContext:
    """Everything a strategy may read in one round (pool coordinates throughout)."""

    def __init__(
        self,
        *,
        model: ExplainableNet,
        pool_images: Tensor | MappedArray,
        labelled: np.ndarray,
        labelled_labels: Tensor,
        labelled_roi: Tensor | None,
        labelled_has_roi: Tensor | None,
        val: Split,
        task: Task,
        num_classes: int,
        spatial_dims: int,
        rng: np.random.Generator,
        device: torch.device,
        round_index: int,
        seed: int,
        explainer: Explainer | None = None,
        pool_roi: Tensor | MappedArray | None = None,
        pool_has_roi: Tensor | None = None,
        pool_masks_visible: bool = False,
        batch_size: int = 256,
        pool_annotated_slices: Tensor | None = None,
    ) -> None:
        n = int(pool_images.shape[0])
        self.model = model
        self.pool_images = pool_images
        self.n_pool = n
        self.labelled = np.asarray(labelled, dtype=np.int64)
        mask = np.ones(n, dtype=bool)
        mask[self.labelled] = False
        self.unlabelled = np.flatnonzero(mask)
        self.labelled_labels = labelled_labels
        self.labelled_roi = labelled_roi
        self.labelled_has_roi = labelled_has_roi
        self.val = val
        self.task = task
        self.num_classes = num_classes
        self.spatial_dims = spatial_dims
        self.rng = rng
        self.device = device
        self.round_index = round_index
        self.seed = seed
        self.explainer = explainer
        self.batch_size = batch_size
        self._pool_roi = pool_roi
        self._pool_has_roi = pool_has_roi
        self._pool_masks_visible = pool_masks_visible
        self._pool_annotated = pool_annotated_slices
        self.violations: list[str] = []
        self.cache = PoolCache(
            model,
            lazy_take(pool_images, self.unlabelled),
            task=task,
            explainer=explainer,
            device=device,
            batch_size=batch_size,
            seed=seed,
        )

    def _deny(self, what: str) -> InformationAccessError:
        self.violations.append(what)
        return InformationAccessError(what)

    @property
    def unlabelled_images(self) -> Tensor | MappedArray:
        """Images of the unlabelled pool (aligned with ``unlabelled``): a tensor, or a lazy view of a
        mapped pool (index it in batches, like ``ctx.pool_images``)."""
        return lazy_take(self.pool_images, self.unlabelled)

    @property
    def pool_masks_visible(self) -> bool:
        return self._pool_masks_visible

    @property
    def pool_roi(self) -> Tensor | MappedArray:
        """ROIs of the unlabelled pool (aligned with ``unlabelled``), only on visible-mask tracks
        (a lazy view for a mapped pool)."""
        if not self._pool_masks_visible or self._pool_roi is None:
            raise self._deny("pool ROIs are hidden on this suite's track (pool_masks = 'hidden')")
        return lazy_take(self._pool_roi, self.unlabelled)

    @property
    def pool_has_roi(self) -> Tensor:
        if not self._pool_masks_visible or self._pool_has_roi is None:
            raise self._deny("pool ROI flags are hidden on this suite's track (pool_masks = 'hidden')")
        return self._pool_has_roi[torch.as_tensor(self.unlabelled)]

    @property
    def pool_annotated_slices(self) -> Tensor | None:
        """3D only: ``U×D`` flags of the slices whose ROI an expert drew (visible-mask tracks only);
        ``None`` when the dataset marks no slices (every slice of a non-empty ROI is annotated)."""
        if not self._pool_masks_visible:
            raise self._deny("pool annotation flags are hidden on this suite's track (pool_masks = 'hidden')")
        if self._pool_annotated is None:
            return None
        return self._pool_annotated[torch.as_tensor(self.unlabelled)]

    @property
    def pool_labels(self) -> Tensor:
        raise self._deny("pool labels are never visible to a strategy (only ctx.labelled_labels)")

    @property
    def test(self) -> Split:
        raise self._deny("the test set is never visible to a strategy")

    @property
    def oracle(self) -> Any:
        raise self._deny("the oracle is never visible to a strategy")

    def __getstate__(self) -> dict[str, Any]:
        raise TypeError("StrategyContext is not picklable: strategies must not ship it elsewhere")


def build_model(spec: SandboxSpec, request: RoundRequest, model_cls: type, device: torch.device) -> torch.nn.Module:
    """A **fresh** model of ``model_cls`` (built with the spec's options and shape) holding the round's
    state dict, with the per-module train/eval flags the harness had; building never moves a global
    random generator. Attribute, hook or ``requires_grad`` changes a strategy makes die with it."""
    with torch.random.fork_rng(devices=[]):
        model = model_cls(dict(spec.model.options)).build(spec.in_channels, spec.num_classes, spec.spatial_dims)
    model.load_state_dict(state_dict_tensors(request.state_dict), strict=True)
    model.to(device)
    modules = list(model.modules())
    if len(modules) != len(request.module_training):
        raise ValueError(f"the round's model has {len(request.module_training)} modules, the rebuilt one "
                         f"{len(modules)}: the sandbox spec's model options differ from the harness's")
    for module, flag in zip(modules, request.module_training, strict=True):
        module.training = flag
    return model


def build_context(spec: SandboxSpec, data: CellData, request: RoundRequest, model: ExplainableNet,
                  explainer: Explainer | None, device: torch.device) -> StrategyContext:
    """The strategy's view of one round: fresh tensors over the cell's copies (fresh read-only views
    of a mapped pool), the request's labelled set with what the oracle revealed, pool ROIs only on a
    visible track (the cell data has none otherwise), ``ctx.rng`` seeded by ``request.rng_seed`` and
    ``ctx.seed = request.torch_seed``."""

    def copy(a: np.ndarray | None) -> Tensor | None:
        return None if a is None else torch.from_numpy(np.array(a, copy=True))

    def view(a: np.ndarray | MappedRef | None) -> Tensor | MappedArray | None:
        if a is None:
            return None
        return a.open() if isinstance(a, MappedRef) else torch.from_numpy(a)

    return StrategyContext(
        model=model, pool_images=view(data.pool_images), labelled=np.array(request.labelled, dtype=np.int64),
        labelled_labels=copy(request.labelled_labels), labelled_roi=copy(request.labelled_roi),
        labelled_has_roi=copy(request.labelled_has_roi), val=data.val_split(), task=spec.task,
        num_classes=spec.num_classes, spatial_dims=spec.spatial_dims, rng=np.random.default_rng(request.rng_seed),
        device=device, round_index=request.round_index, seed=request.torch_seed, explainer=explainer,
        pool_roi=view(data.pool_roi), pool_has_roi=view(data.pool_has_roi), pool_masks_visible=spec.pool_masks_visible,
        batch_size=spec.batch_size, pool_annotated_slices=view(data.pool_annotated_slices),
    )
