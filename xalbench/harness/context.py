"""The concrete read-only world a strategy sees (implements ``xalbench.base.StrategyContext``).

:class:`StrategyContext` holds pool images but **no pool labels**, no oracle and no test
set; pool ROIs only when the track shows them. Touching a forbidden attribute raises
:class:`InformationAccessError` *and* is recorded, so a strategy that catches the error
still fails its cell. In a run it is built inside the strategy's sandbox process
(:mod:`xalbench.sandbox`), from what the contract allows; the per-round cache is
:class:`~xalbench.harness.pool_cache.PoolCache`.

``pool_images`` may be a tensor or a read-only :class:`~xalbench.data.mapped.MappedArray`
view of a prepared cache (a pool larger than RAM); then ``unlabelled_images``, ``pool_roi``
and the cache's input are lazy views of it too (nothing is read until a strategy indexes them).
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import torch
from torch import Tensor

from xalbench.base import ExplainableNet, Explainer, Split, Task
from xalbench.data.mapped import MappedArray, lazy_take
from xalbench.errors import InformationAccessError
from xalbench.harness.pool_cache import PoolCache
from xalbench.utils.torch_modes import eval_mode

__all__ = ["EvalMode", "PoolCache", "StrategyContext", "model_fingerprint"]


def model_fingerprint(model: torch.nn.Module) -> str:
    """SHA-256 over every parameter and buffer (names, shapes, bytes)."""
    h = hashlib.sha256()
    for name, t in list(model.named_parameters()) + list(model.named_buffers()):
        h.update(name.encode())
        arr = t.detach().cpu().contiguous()
        h.update(str(tuple(arr.shape)).encode())
        h.update(arr.numpy().tobytes() if arr.dtype != torch.bfloat16 else arr.float().numpy().tobytes())
    return h.hexdigest()


class EvalMode:
    """Context manager: eval mode inside, previous ``training`` flags restored after
    (the class form of :func:`xalbench.utils.torch_modes.eval_mode`)."""

    def __init__(self, model: torch.nn.Module) -> None:
        self._cm = eval_mode(model)

    def __enter__(self) -> torch.nn.Module:
        return self._cm.__enter__()

    def __exit__(self, *exc: Any) -> None:
        self._cm.__exit__(*exc)


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
