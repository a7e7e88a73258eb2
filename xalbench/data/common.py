"""Shared helpers for datasets: the data root, seeded RNGs, the checksummed array cache,
and conversion of numpy arrays to :class:`xalbench.base.Split`.

Data root resolution (first hit wins): the ``data_root`` argument (``--data-root``), the
``XALBENCH_DATA`` environment variable, else ``~/.cache/xalbench/data``.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from xalbench.base import Split

__all__ = [
    "DEFAULT_DATA_ROOT",
    "resolve_data_root",
    "split_rng",
    "to_split",
    "cached_arrays",
    "sha256_file",
]

DEFAULT_DATA_ROOT = Path("~/.cache/xalbench/data")
ENV_VAR = "XALBENCH_DATA"
_SPLIT_IDS = {"train": 0, "val": 1, "test": 2}


def resolve_data_root(data_root: str | os.PathLike[str] | None = None) -> Path:
    """``data_root`` if given, else ``$XALBENCH_DATA``, else ``~/.cache/xalbench/data`` (not created)."""
    if data_root:
        return Path(data_root).expanduser()
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    return DEFAULT_DATA_ROOT.expanduser()


def split_rng(seed: int, split: str, salt: int = 0) -> np.random.Generator:
    """Independent generator per (seed, split): changing ``n_test`` never changes the train pool."""
    return np.random.default_rng(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, _SPLIT_IDS[split], salt]))


def to_split(
    images: np.ndarray,
    labels: np.ndarray,
    roi: np.ndarray | None = None,
    *,
    class_roi: np.ndarray | None = None,
    annotated_slices: np.ndarray | None = None,
    groups: np.ndarray | None = None,
    multilabel: bool = False,
) -> Split:
    """numpy → :class:`Split` with the dtypes of the base contract (images get a channel axis if missing)."""
    img = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))
    lab = torch.from_numpy(np.ascontiguousarray(labels, dtype=np.float32 if multilabel else np.int64))
    roi_t = None if roi is None else torch.from_numpy(np.ascontiguousarray(roi, dtype=np.float32))
    has_roi = None if roi_t is None else roi_t.flatten(1).amax(1) > 0
    return Split(
        images=img,
        labels=lab,
        roi=roi_t,
        has_roi=has_roi,
        class_roi=None if class_roi is None else torch.from_numpy(np.ascontiguousarray(class_roi, dtype=np.float32)),
        annotated_slices=None if annotated_slices is None else torch.from_numpy(
            np.ascontiguousarray(annotated_slices, dtype=bool)),
        groups=groups,
    )


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


# ------------------------------------------------------------------ generated-array cache
def _cache_key(name: str, version: int, options: Mapping[str, Any]) -> str:
    blob = json.dumps({"name": name, "version": version, "options": dict(options)}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def cached_arrays(
    name: str,
    version: int,
    options: Mapping[str, Any],
    make: Callable[[], dict[str, np.ndarray]],
    data_root: str | os.PathLike[str] | None = None,
    *,
    disk: bool = True,
) -> dict[str, np.ndarray]:
    """Generate arrays once per data root (the process keeps nothing: a run's
    :class:`~xalbench.harness.runtime.Runtime` holds its loaded bundles).

    On disk the arrays live in ``<data_root>/synthetic/<name>-<key>.npz`` next to a
    ``.sha256`` file; a file whose SHA-256 does not match is discarded and regenerated
    (with a warning). An unreadable or unwritable data root only disables the disk cache.
    """
    key = f"{name}-{_cache_key(name, version, options)}"
    arrays: dict[str, np.ndarray] | None = None
    path = resolve_data_root(data_root) / "synthetic" / f"{key}.npz"
    sums = path.with_suffix(".sha256")
    if disk and path.is_file() and sums.is_file():
        try:
            if sha256_file(path) == sums.read_text().strip():
                with np.load(path, allow_pickle=False) as z:
                    arrays = {k: z[k] for k in z.files}
            else:
                warnings.warn(f"checksum mismatch for cached {path}; regenerating", stacklevel=2)
        except OSError:  # unreadable here (a confined process): generate instead
            arrays = None
    if arrays is None:
        arrays = make()
        if disk:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
                np.savez(tmp, **arrays)
                digest = sha256_file(tmp)
                os.replace(tmp, path)
                sums.write_text(digest + "\n")
            except OSError:
                pass
    return arrays
