"""Which mask each labelled sample may be trained with: human (within the budget), generated, or none.

On 3D data with sparse annotations (``Split.annotated_slices``), a human mask is revealed only
on the slices the expert drew; the other slices are zero for every method.

The protocol's ``mask_budget`` reveals the expert's mask for the first labelled samples in
acquisition order (all of them when there is no budget, or when the method's mask source
``ignores_budget``). Beyond it, a mask source may generate masks when the samples are
labelled; those are kept for the rest of the cell (and checkpointed).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from xalbench.base import Split

__all__ = ["MaskBank", "drawn_only"]


def drawn_only(split: Split) -> Split:
    """``split`` with its ROIs zeroed on the slices no expert drew (3D sparse annotations; else as is) —
    what a method may see of the pool's masks on a visible track."""
    if split.roi is None or split.annotated_slices is None or split.roi.dim() != 4:
        return split
    roi = split.roi * split.annotated_slices.view(*split.annotated_slices.shape, 1, 1).to(split.roi.dtype)
    return Split(images=split.images, labels=split.labels, roi=roi, has_roi=split.has_roi, class_roi=split.class_roi,
                 annotated_slices=split.annotated_slices, groups=split.groups, label_mask=split.label_mask)


class MaskBank:
    """Human-mask budget plus generated masks of one cell."""

    def __init__(self, pool: Split, limit: int | None) -> None:
        self.pool = pool
        self.limit = limit
        self.generated: dict[int, Tensor] = {}

    def human(self, labelled: np.ndarray) -> np.ndarray:
        """Which labelled samples (acquisition order) have their human mask revealed."""
        out = np.zeros(len(labelled), dtype=bool)
        if self.pool.roi is not None:
            out[: len(labelled) if self.limit is None else self.limit] = True
        return out

    def beyond_budget(self, labelled: np.ndarray, new: np.ndarray) -> np.ndarray:
        """The newly labelled samples (``new``, the tail of ``labelled``) past the human budget."""
        if self.pool.roi is None or self.limit is None:
            return np.zeros(0, dtype=np.int64)
        start = len(labelled) - len(new)
        return np.asarray([i for pos, i in enumerate(new) if start + pos >= self.limit], dtype=np.int64)

    def add(self, index: np.ndarray, masks: Tensor) -> None:
        for i, m in zip(index.tolist(), masks, strict=True):
            self.generated[int(i)] = (m > 0.5).float()

    def counts(self, labelled: np.ndarray) -> tuple[int, int]:
        """(human masks in use, generated masks in use) among ``labelled``."""
        human = self.human(labelled)
        n_human = int((human & self.pool.has_roi[torch.as_tensor(labelled)].numpy()).sum()) if self.pool.roi is not None else 0
        n_gen = sum(1 for pos, i in enumerate(labelled.tolist()) if not human[pos] and i in self.generated)
        return n_human, n_gen

    def labelled_split(self, labelled: np.ndarray) -> Split:
        """The labelled set (acquisition order) carrying only the masks the method may use."""
        pool = self.pool
        sub = pool.subset(labelled)
        if pool.roi is None:
            return sub
        human = torch.as_tensor(self.human(labelled))
        has = sub.has_roi.bool() & human
        roi = sub.roi * has.view((-1,) + (1,) * (sub.roi.dim() - 1)).float()
        if sub.annotated_slices is not None and sub.roi.dim() == 4:  # 3D: only the slices an expert drew
            roi = roi * sub.annotated_slices.view(*sub.annotated_slices.shape, 1, 1).to(roi.dtype)
        class_roi = annotated = None
        if sub.class_roi is not None:
            class_roi = sub.class_roi * has.view((-1,) + (1,) * (sub.class_roi.dim() - 1)).float()
        if sub.annotated_slices is not None:
            annotated = sub.annotated_slices & has[:, None]
        rows = [pos for pos, i in enumerate(labelled.tolist()) if not bool(human[pos]) and i in self.generated]
        if rows:
            roi = roi.clone()
            has = has.clone()
            for pos in rows:
                mask = self.generated[int(labelled[pos])]
                roi[pos] = mask
                has[pos] = bool(mask.amax() > 0)
            if annotated is not None:
                annotated = annotated.clone()
                annotated[torch.as_tensor(rows)] = has[torch.as_tensor(rows)][:, None]
        return Split(images=sub.images, labels=sub.labels, roi=roi, has_roi=has, class_roi=class_roi,
                     annotated_slices=annotated, groups=sub.groups, label_mask=sub.label_mask)

    # ------------------------------------------------------------------ checkpointing
    def state(self) -> dict[str, Tensor]:
        return {str(i): m for i, m in sorted(self.generated.items())}

    def load(self, state: dict[str, Tensor]) -> None:
        self.generated = {int(i): m for i, m in state.items()}
