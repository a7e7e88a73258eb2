"""Helpers of the mapped-pool tests: a fabricated prepared-cache folder and strategies that probe the map
from inside a sandbox (importable by reference, so a sandbox can unpickle them)."""

from __future__ import annotations

import ctypes
import hashlib
import json
import operator
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from xalbench.base import Strategy
from xalbench.data.mapped import MappedArray
from xalbench.data.quant import quantize

__all__ = ["FileRewriter", "ScanPool", "SegfaultWriter", "WriteThroughView", "write_cache"]


def write_cache(folder: Path, images: torch.Tensor, labels: torch.Tensor | None = None) -> MappedArray:
    """A prepared-cache-like folder — ``images.npy`` (``uint8``), ``labels.npy`` and a manifest with the
    content hash — and the read-only view of its images (values: ``images`` quantised to 1/255)."""
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "images.npy", quantize(images.numpy(), "uint8"))
    if labels is not None:
        np.save(folder / "labels.npy", labels.numpy())
    h = hashlib.sha256()
    for name in ("images.npy", "labels.npy"):
        if (folder / name).exists():
            h.update((folder / name).read_bytes())
    (folder / "manifest.json").write_text(json.dumps({"format": 1, "content_sha256": h.hexdigest()}))
    return MappedArray(folder / "images.npy")


class ScanPool(Strategy):
    """Reads every unlabelled image in batches; picks the brightest (mean intensity, ties by position)."""

    name: ClassVar[str] = "scan-pool"

    def query(self, ctx, k):  # type: ignore[no-untyped-def]
        view = ctx.unlabelled_images
        assert isinstance(ctx.pool_images, MappedArray) and isinstance(view, MappedArray), type(view)
        means = []
        for s in range(0, len(view), ctx.batch_size):
            means.append(view[s : s + ctx.batch_size].flatten(1).mean(1).double())
        score = torch.cat(means).numpy()
        return ctx.unlabelled[np.argsort(-score, kind="stable")[:k]]


class WriteThroughView(Strategy):
    """Tries to write the pool through its view and its map; picks the first k if every write was
    refused, the last k if one went through."""

    name: ClassVar[str] = "write-through-view"

    def query(self, ctx, k):  # type: ignore[no-untyped-def]
        base = ctx.pool_images._base  # the read-only numpy map behind the view
        attempts = [lambda: operator.setitem(ctx.pool_images, 0, 0.0), lambda: operator.setitem(base, 0, 0),
                    lambda: base.setflags(write=True), lambda: np.copyto(base[:1], 0)]
        wrote = 0
        for attempt in attempts:
            try:
                attempt()
                wrote += 1
            except (TypeError, ValueError, AttributeError):
                pass
        return ctx.unlabelled[-k:] if wrote else ctx.unlabelled[:k]


class SegfaultWriter(Strategy):
    """Writes into the mapped pages with ``ctypes`` (past numpy's flags): the page is read-only."""

    name: ClassVar[str] = "segfault-writer"

    def query(self, ctx, k):  # type: ignore[no-untyped-def]
        base = ctx.pool_images._base
        ctypes.memset(base.ctypes.data, 0, 16)
        return ctx.unlabelled[:k]


class FileRewriter(Strategy):
    """Rewrites the last byte of the cache file on disk (same user: the file system allows it)."""

    name: ClassVar[str] = "file-rewriter"

    def query(self, ctx, k):  # type: ignore[no-untyped-def]
        with open(ctx.pool_images.path, "r+b") as fh:
            fh.seek(-1, 2)
            last = fh.read(1)
            fh.seek(-1, 2)
            fh.write(bytes([last[0] ^ 0xFF]))
        return ctx.unlabelled[:k]
