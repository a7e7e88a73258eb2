"""Result files: one JSON per cell, written atomically (temp file + ``os.replace``).

Layout under the run directory::

    cells/<cell_key>.json          finished cell (status ok | failed | skipped)
    cells/<cell_key>.partial.json  checkpoint of an unfinished cell (rounds done so far)
    cells/<cell_key>.partial.pt    model weights (warm-start suites only)
    run.json                       the suite, the cell list, the environment

A reader never sees half a file: readers ignore ``*.tmp`` and partial files.
"""

from __future__ import annotations

import functools
import json
import math
import os
import platform
import re
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["atomic_write_json", "read_json", "iter_results", "cell_key", "environment", "source_hash",
           "SCHEMA_VERSION"]

SCHEMA_VERSION = 1


def _clean(obj: Any) -> Any:
    """JSON-safe: NaN/inf → None (read back as nan by the reporter)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):
        return _clean(obj.item())
    return obj


def atomic_write_json(path: str | os.PathLike[str], data: Any) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(_clean(data), fh, indent=1, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_json(path: str | os.PathLike[str]) -> Any:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def iter_results(run_dir: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """Every finished cell result under ``run_dir`` (recursively), sorted by path."""
    root = Path(run_dir)
    for path in sorted(root.rglob("*.json")):
        if path.name.endswith(".partial.json") or path.parent.name != "cells":
            continue
        data = read_json(path)
        if isinstance(data, dict) and data.get("schema") == SCHEMA_VERSION and "cell" in data:
            yield data


def cell_key(dataset: str, method: str, seed: int) -> str:
    """A filesystem-safe, readable, unique-enough key for a cell."""
    def slug(text: str) -> str:
        return re.sub(r"[^A-Za-z0-9.=,+-]+", "_", text).strip("_")

    return f"{slug(dataset)}__{slug(method)}__seed{seed}"


@functools.lru_cache(maxsize=1)
def source_hash() -> str:
    """SHA-256 over xalbench's own ``.py``/``.toml`` sources: which code produced a result
    (computed once per process)."""
    import hashlib

    root = Path(__file__).parent
    h = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.suffix in (".py", ".toml") and "__pycache__" not in path.parts:
            h.update(str(path.relative_to(root)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()[:16]


def environment(threads: int, device: str) -> dict[str, Any]:
    import importlib.metadata as md

    import numpy
    import torch

    versions = {}
    for dist in md.distributions():
        eps = [ep for ep in dist.entry_points if ep.group == "xalbench"]
        if eps or dist.metadata["Name"] == "xalbench":
            versions[dist.metadata["Name"]] = dist.version
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "device": device,
        "threads": threads,
        "cuda": torch.version.cuda,
        "plugin_distributions": dict(sorted(versions.items())),
        "xalbench_source_sha256": source_hash(),
    }
