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

A results directory with a seal key (``<out>/.xalbench/seal.key``, :mod:`xalbench.sealing`) also
requires ``seal_hmac_sha256``, a keyed MAC: a file without it or whose MAC does not verify is
*forged* (:class:`ForgedResultError`; moved aside as ``*.forged``) — rewriting a file and
recomputing its unkeyed ``content_sha256`` no longer passes. A directory without a key (written
before keyed seals) is checked by content hash only.
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
from typing import TYPE_CHECKING, Any

from xalbench.errors import XalbenchError

if TYPE_CHECKING:
    from xalbench.sealing import Sealer

__all__ = ["CorruptResultError", "DamagedResultWarning", "ForgedResultError", "MAC_FIELD", "SCHEMA_VERSION", "atomic_write_json", "canonical_json",
           "content_hash", "environment", "iter_results", "move_aside", "read_json", "read_verified",
           "seal", "source_hash"]

SCHEMA_VERSION = 2
MAC_FIELD = "seal_hmac_sha256"


class CorruptResultError(XalbenchError):
    """A result, checkpoint or cell file is truncated, not JSON, or its content hash does not match."""

    exit_code = 1


class ForgedResultError(CorruptResultError):
    """A file in a keyed results directory whose keyed seal is missing or does not verify."""


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
    """SHA-256 of ``data`` without its own ``content_sha256`` field and its keyed seal."""
    body = {k: v for k, v in data.items() if k not in ("content_sha256", MAC_FIELD)}
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


def read_verified(path: str | os.PathLike[str], *, sealer: Sealer | None = None) -> dict[str, Any]:
    """A sealed file's content; :class:`CorruptResultError` if truncated, not an object, or edited;
    with ``sealer``, :class:`ForgedResultError` if its keyed seal is missing or does not verify."""
    try:
        data = read_json(path)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorruptResultError(f"{path} is damaged ({type(exc).__name__}: {exc})") from exc
    if not isinstance(data, dict):
        raise CorruptResultError(f"{path} is damaged (not a JSON object)")
    if "content_sha256" in data and data["content_sha256"] != content_hash(data):
        raise CorruptResultError(f"{path} is damaged (its content does not match its content_sha256: edited?)")
    if sealer is not None:
        why = sealer.reason(data)
        if why:
            raise ForgedResultError(f"{path} is rejected as forged ({why})")
    return data


def move_aside(path: Path, *, to: str = "corrupt") -> Path:
    """Move a damaged file to ``<name>.corrupt`` (a forged one, ``to="forged"``, to ``<name>.forged``; a
    superseded one to ``.superseded/``), never overwriting."""
    if to == "superseded":
        folder = path.parent / ".superseded"
        folder.mkdir(exist_ok=True)
        target = folder / path.name
        n = 1
        while target.exists():
            target = folder / f"{path.stem}.{n}{path.suffix}"
            n += 1
    else:
        suffix = "forged" if to == "forged" else "corrupt"
        target = path.with_name(f"{path.name}.{suffix}")
        n = 1
        while target.exists():
            target = path.with_name(f"{path.name}.{n}.{suffix}")
            n += 1
    os.replace(path, target)
    return target


def iter_results(run_dir: str | os.PathLike[str], *, damaged: list[Path] | None = None,
                 reasons: dict[Path, str] | None = None) -> Iterator[dict[str, Any]]:
    """Every finished cell result under ``run_dir`` (recursively), sorted by path.

    Damaged files — and, in a results directory with a seal key, files whose keyed seal is missing
    or does not verify — are skipped with a :class:`DamagedResultWarning` (appended to ``damaged``,
    their one-line reason to ``reasons``).
    """
    from xalbench.sealing import Sealer

    root = Path(run_dir)
    sealers: dict[Path, Sealer | None] = {}
    for path in sorted(root.rglob("*.json")):
        if path.name.endswith(".partial.json") or path.parent.name != "cells":
            continue
        out_dir = path.parent.parent
        if out_dir not in sealers:
            sealers[out_dir] = Sealer.existing(out_dir)
        try:
            data = read_verified(path, sealer=sealers[out_dir])
        except CorruptResultError as exc:
            warnings.warn(str(exc), DamagedResultWarning, stacklevel=2)
            if damaged is not None:
                damaged.append(path)
            if reasons is not None:
                reasons[path] = str(exc)
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
