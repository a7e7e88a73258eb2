"""Tuning results cached like cells: one sealed file per (dataset, method, tuning configuration).

``<results>/tuning/<dataset>__<method>.json`` holds the search's identity (everything that
determines its trials: the dataset and its options, the method's components, model,
protocol, training, the search space, sampler, budget, tuning seeds, scoring round,
objective, thread count, device kind and source hashes), its SHA-256 and the trials. A file
whose identity matches is reused; one that does not is moved to ``tuning/.superseded/`` and
the search is run again; a damaged one is moved aside as ``.corrupt``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from xalbench.harness.identity import identity_hash
from xalbench.results import CorruptResultError, atomic_write_json, move_aside, read_verified, seal
from xalbench.utils.text import slug

__all__ = ["TUNING_DIR", "read_record", "record_path", "write_record"]

TUNING_DIR = "tuning"


def record_path(out_dir: str | Path, dataset: str, label: str) -> Path:
    return Path(out_dir) / TUNING_DIR / f"{slug(dataset)}__{slug(label)}.json"


def read_record(path: Path, identity: dict[str, Any]) -> dict[str, Any] | None:
    """The cached record at ``path`` if its identity matches ``identity``; else ``None`` (a stale
    file is moved to ``.superseded/``, a damaged one aside as ``.corrupt``)."""
    if not path.exists():
        return None
    try:
        data = read_verified(path)
    except CorruptResultError:
        move_aside(path)
        return None
    if data.get("identity_sha256") == identity_hash(identity) and data.get("kind") == "tuning":
        return data
    move_aside(path, to="superseded")
    return None


def write_record(path: Path, record: dict[str, Any]) -> dict[str, Any]:
    sealed = seal(record)
    atomic_write_json(path, sealed)
    return sealed
