"""Pools in a prepared, memory-mapped cache: their identity, and reading them batch by batch.

A dataset larger than ``in_memory_mb`` stays a :class:`~xalbench.data.mapped.MappedArray`: a
read-only ``float32`` view over a ``uint8`` cache file. The harness and the strategy sandbox
never read such a pool whole:

* :func:`view_identity` — what identifies a view without reading its pixels: the file's path,
  size and modification time, the content hash stored in the cache's ``manifest.json`` at
  preparation, the row index and the scale. The map is read-only, so the pixels can change
  only if the file does, and a changed file changes its size, mtime or stored hash.
* :func:`read_batches` / :func:`iter_batches` — given row batches (the harness's own batch
  order) or consecutive ones, read from the map as needed; ``XALBENCH_LOADER_WORKERS`` > 0
  lets a ``DataLoader`` with that many worker processes read ahead (same batches, same bits,
  same order; in-memory tensors are always indexed in this process, as before).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from xalbench.data.mapped import MappedArray

__all__ = ["LOADER_WORKERS_ENV", "FileIdentity", "file_identity", "is_mapped", "iter_batches", "loader_workers", "read_batches",
           "rows_identity", "view_identity", "view_parts"]

#: Environment variable: worker processes that read mapped batches ahead (default 0: read in this process).
LOADER_WORKERS_ENV = "XALBENCH_LOADER_WORKERS"

FileIdentity = tuple[str, int, int, str]  #: (path, size in bytes, mtime in ns, stored content SHA-256 or "")


def is_mapped(x: Any) -> bool:
    return isinstance(x, MappedArray)


def _stored_hash(path: str) -> str:
    """The ``content_sha256`` of the cache's ``manifest.json`` beside ``path`` ("" if there is none)."""
    try:
        return str(json.loads((Path(path).parent / "manifest.json").read_text()).get("content_sha256", ""))
    except (OSError, ValueError, AttributeError):
        return ""


def file_identity(path: str) -> FileIdentity:
    """``(path, size, mtime_ns, stored content hash)`` of a cache file (raises ``OSError`` if it is gone)."""
    st = os.stat(path)
    return path, int(st.st_size), int(st.st_mtime_ns), _stored_hash(path)


def view_parts(view: MappedArray) -> tuple[str, np.ndarray, float]:
    """``(path, stored-row index, scale)`` — the arguments that rebuild ``view`` (its pickle form)."""
    _, (path, index, max_value) = view.__reduce__()
    return str(path), np.asarray(index, dtype=np.int64), float(max_value)


def rows_identity(path: str, index: np.ndarray, max_value: float) -> tuple[Any, ...]:
    """:func:`file_identity` of ``path`` plus the SHA-256 of the row index and the scale."""
    rows = np.ascontiguousarray(index, dtype=np.int64)
    return (*file_identity(path), hashlib.sha256(rows.tobytes()).hexdigest(), float(max_value))


def view_identity(view: MappedArray) -> tuple[Any, ...]:
    """:func:`rows_identity` of a view (no pixel is read)."""
    return rows_identity(*view_parts(view))


def loader_workers() -> int:
    """``XALBENCH_LOADER_WORKERS`` (0 when unset)."""
    raw = os.environ.get(LOADER_WORKERS_ENV, "").strip()
    if not raw:
        return 0
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0:
        raise ValueError(f"{LOADER_WORKERS_ENV} must be a whole number ≥ 0, got {raw!r}")
    return value


class _Rows(torch.utils.data.Dataset):
    """Batches of view rows (``__getitems__``: one read of the map per batch)."""

    def __init__(self, view: MappedArray) -> None:
        self.view = view

    def __len__(self) -> int:
        return len(self.view)

    def __getitems__(self, rows: Sequence[int]) -> Tensor:
        return self.view[np.asarray(rows, dtype=np.int64)]


def _whole(batch: Tensor) -> Tensor:
    return batch


def read_batches(images: Tensor | MappedArray, batches: Sequence[np.ndarray | Sequence[int]],
                 workers: int | None = None) -> Iterator[Tensor]:
    """``images[b]`` for each row batch ``b`` of ``batches``, in order (``float32`` tensors on the CPU).

    A mapped view is read one batch at a time — with ``workers`` (default :func:`loader_workers`)
    > 0 by a ``DataLoader`` whose worker processes read ahead (same batches, same order, same
    bits); a tensor is indexed in this process."""
    if not is_mapped(images):
        for b in batches:
            yield images[torch.as_tensor(np.asarray(b, dtype=np.int64))]
        return
    workers = loader_workers() if workers is None else workers
    if workers <= 0 or len(batches) < 2:
        for b in batches:
            yield images[np.asarray(b, dtype=np.int64)]
        return
    # A private generator: a DataLoader iterator draws its workers' base seed from it, which would
    # otherwise advance torch's global generator (dropout in training draws from that one).
    loader = torch.utils.data.DataLoader(_Rows(images), batch_sampler=[[int(i) for i in b] for b in batches],
                                         num_workers=workers, collate_fn=_whole, persistent_workers=False,
                                         generator=torch.Generator().manual_seed(0))
    yield from loader


def iter_batches(images: Tensor | MappedArray, batch_size: int, rows: np.ndarray | None = None,
                 workers: int | None = None) -> Iterator[Tensor]:
    """``images[s : s + batch_size]`` for ``s = 0, batch_size, …`` (``rows`` given: the consecutive
    batches of ``images[rows]``), each a ``float32`` tensor on the CPU. A tensor without ``rows`` is
    sliced exactly as before; everything else goes through :func:`read_batches`."""
    n = len(images) if rows is None else len(rows)
    if rows is None and not is_mapped(images):
        for s in range(0, n, batch_size):
            yield images[s : s + batch_size]
        return
    order = np.arange(n, dtype=np.int64) if rows is None else np.asarray(rows, dtype=np.int64)
    yield from read_batches(images, [order[s : s + batch_size] for s in range(0, n, batch_size)], workers)
