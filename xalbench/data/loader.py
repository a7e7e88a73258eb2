"""Batch reads from a (mapped or in-memory) split: a torch ``Dataset`` and seeded ``DataLoader``s.

:class:`SplitRows` serves rows of a :class:`~xalbench.base.Split` — ``images`` (float32 in
[0, 1]), ``labels``, ``index`` (pool positions) and optionally ``roi``/``has_roi`` — and
implements ``__getitems__`` so a batch is **one** read of the memory map, not one per
sample. Workers receive the dataset by pickling, which re-opens the map (no copy).

* :func:`seeded_loader` — shuffling driven by ``torch.Generator().manual_seed(seed)``; worker
  RNGs are seeded from the loader's base seed (``seed_worker``), so the batch order and
  content are the same for any ``num_workers``.
* :func:`batch_loader` — batches given explicitly (e.g. the harness's own seeded
  permutation); the order is exactly the list's, for any ``num_workers``.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from xalbench.base import Split

__all__ = ["SplitRows", "seeded_loader", "batch_loader", "seed_worker"]

_FIELDS = ("images", "labels", "roi", "has_roi", "class_roi")


class SplitRows(Dataset):
    """Rows ``indices`` (default: all) of ``split``; items are dicts of the chosen ``fields``."""

    def __init__(self, split: Split, indices: Sequence[int] | np.ndarray | None = None,
                 fields: Sequence[str] = ("images", "labels")) -> None:
        bad = sorted(set(fields) - set(_FIELDS))
        if bad:
            raise ValueError(f"unknown split field(s) {bad}; choose from {list(_FIELDS)}")
        self.split = split
        self.fields = tuple(f for f in fields if getattr(split, f) is not None)
        self.indices = np.arange(len(split), dtype=np.int64) if indices is None else \
            np.asarray(indices, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitems__(self, positions: Sequence[int]) -> dict[str, torch.Tensor]:
        rows = self.indices[np.asarray(positions, dtype=np.int64)]
        t_rows = torch.as_tensor(rows)
        out = {f: getattr(self.split, f)[rows if f in ("images", "roi", "class_roi") else t_rows]
               for f in self.fields}
        out["index"] = t_rows
        return out

    def __getitem__(self, position: int) -> dict[str, torch.Tensor]:
        batch = self.__getitems__([position])
        return {k: v[0] for k, v in batch.items()}


def _whole_batch(batch: Any) -> Any:
    return batch  # __getitems__ already returns a collated batch


def seed_worker(worker_id: int) -> None:
    """Seed ``random`` and numpy's legacy RNG from the worker's torch seed (torch seeds itself)."""
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)


def seeded_loader(split: Split, indices: Sequence[int] | np.ndarray | None = None, *, batch_size: int = 32,
                  shuffle: bool = False, seed: int = 0, num_workers: int = 0, drop_last: bool = False,
                  fields: Sequence[str] = ("images", "labels")) -> DataLoader:
    """A ``DataLoader`` over rows of ``split`` with a seeded generator (same batches for any ``num_workers``)."""
    return DataLoader(SplitRows(split, indices, fields), batch_size=batch_size, shuffle=shuffle,
                      generator=torch.Generator().manual_seed(int(seed)), num_workers=num_workers,
                      drop_last=drop_last, collate_fn=_whole_batch, worker_init_fn=seed_worker,
                      persistent_workers=False)


def batch_loader(split: Split, batches: Sequence[Sequence[int]], *, num_workers: int = 0,
                 fields: Sequence[str] = ("images", "labels")) -> DataLoader:
    """A ``DataLoader`` yielding exactly ``batches`` (lists of split rows), in that order."""
    rows = SplitRows(split, None, fields)
    return DataLoader(rows, batch_sampler=[list(map(int, b)) for b in batches], num_workers=num_workers,
                      collate_fn=_whole_batch, worker_init_fn=seed_worker)
