"""Result files: one JSON per cell, written atomically, self-verifying, never silently reused.

Layout under a run directory::

    cells/<cell_key>.json            finished cell (status ok | failed | skipped)
    cells/<cell_key>.partial.json    checkpoint of an unfinished cell (rounds done so far)
    cells/<cell_key>.partial.pt      model weights (warm-start suites) / generated masks
    cells/.superseded/               finished cells whose configuration changed (kept, never overwritten)
    cells/*.corrupt                  damaged files moved aside (truncated, edited by hand)
    run.json                         the last plan: suite, cells, plugin selection, environment

Every cell file stores ``identity_sha256`` (the hash of what determines its result, see
:mod:`xalbench.harness.identity`) and ``content_sha256`` (the hash of its own canonical
content). A file whose content no longer matches its hash is damaged: it is named in one
line, moved aside and its cell redone.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import platform
import sys
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from xalbench.errors import XalbenchError

__all__ = ["CorruptResultError", "DamagedResultWarning", "SCHEMA_VERSION", "atomic_write_json", "canonical_json",
           "content_hash", "environment", "iter_results", "move_aside", "read_json", "read_verified",
           "seal", "source_hash"]

SCHEMA_VERSION = 2


class CorruptResultError(XalbenchError):
    """A result, checkpoint or cell file is truncated, not JSON, or its content hash does not match."""

    exit_code = 1


class DamagedResultWarning(UserWarning):
    """A damaged result file was skipped (the report then exits 1)."""


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


def canonical_json(data: Any) -> str:
    """Sorted keys, no whitespace, NaN/inf as null: the form every hash is taken over."""
    return json.dumps(_clean(data), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def content_hash(data: dict[str, Any]) -> str:
    """SHA-256 of ``data`` without its own ``content_sha256`` field."""
    body = {k: v for k, v in data.items() if k != "content_sha256"}
    return hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()


def seal(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with ``content_sha256`` set (call last, on the final dict)."""
    clean = _clean(data)
    clean["content_sha256"] = content_hash(clean)
    return clean


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


def read_verified(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A sealed file's content; :class:`CorruptResultError` if truncated, not an object, or edited."""
    try:
        data = read_json(path)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorruptResultError(f"{path} is damaged ({type(exc).__name__}: {exc})") from exc
    if not isinstance(data, dict):
        raise CorruptResultError(f"{path} is damaged (not a JSON object)")
    if "content_sha256" in data and data["content_sha256"] != content_hash(data):
        raise CorruptResultError(f"{path} is damaged (its content does not match its content_sha256: edited?)")
    return data


def move_aside(path: Path, *, to: str = "corrupt") -> Path:
    """Move a damaged file to ``<name>.corrupt`` (or a superseded one to ``.superseded/``), never overwriting."""
    if to == "superseded":
        folder = path.parent / ".superseded"
        folder.mkdir(exist_ok=True)
        target = folder / path.name
        n = 1
        while target.exists():
            target = folder / f"{path.stem}.{n}{path.suffix}"
            n += 1
    else:
        target = path.with_name(path.name + ".corrupt")
        n = 1
        while target.exists():
            target = path.with_name(f"{path.name}.{n}.corrupt")
            n += 1
    os.replace(path, target)
    return target


def iter_results(run_dir: str | os.PathLike[str], *, damaged: list[Path] | None = None) -> Iterator[dict[str, Any]]:
    """Every finished cell result under ``run_dir`` (recursively), sorted by path.

    Damaged files are skipped with a :class:`DamagedResultWarning` (and appended to ``damaged``).
    """
    root = Path(run_dir)
    for path in sorted(root.rglob("*.json")):
        if path.name.endswith(".partial.json") or path.parent.name != "cells":
            continue
        try:
            data = read_verified(path)
        except CorruptResultError as exc:
            warnings.warn(str(exc), DamagedResultWarning, stacklevel=2)
            if damaged is not None:
                damaged.append(path)
            continue
        if data.get("schema") in (1, SCHEMA_VERSION) and "cell" in data:
            data["_path"] = str(path)
            yield data


@functools.lru_cache(maxsize=1)
def source_hash() -> str:
    """SHA-256 over xalbench's own ``.py``/``.toml`` sources (computed once per process)."""
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
    env = {
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
    if device.startswith("cuda"):
        env["cuda_determinism"] = {"CUBLAS_WORKSPACE_CONFIG": os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
                                   "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
                                   "cudnn_deterministic": torch.backends.cudnn.deterministic,
                                   "visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")}
    return env
