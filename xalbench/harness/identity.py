"""A cell's identity and where its files lie.

A cell = (suite, dataset, method, seed), resolved once into a :class:`~xalbench.harness.config.CellConfig`
(dataset + options, strategy, loss, trainer and mask source + options, model, explainer, resolved
budget protocol, training, evaluation, track, seed, thread count, device kind, and the hashes of
the code it runs: the harness's own and each component's module closure —
:mod:`xalbench.harness.sources`). The cache key of a finished cell is the SHA-256 of that identity —
never of the whole plan — so growing a run (more seeds, methods, datasets) runs only the new cells,
and a cell whose own configuration or code changed is redone (its old file kept aside).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

from xalbench.harness.config import CellConfig
from xalbench.plugins import PluginSelection
from xalbench.suite import ComponentSpec, MethodSpec
from xalbench.utils.text import slug

__all__ = ["CellSpec", "cell_key", "identity_hash", "training_identity"]


def cell_key(dataset: str, method: str, seed: int) -> str:
    """A filesystem-safe, readable file name for a cell (its identity is stored inside the file)."""
    return f"{slug(dataset)}__{slug(method)}__seed{seed}"


def training_identity(identity: dict[str, Any]) -> dict[str, Any]:
    """The part of a cell's identity that determines its round-0 model: everything but the strategy,
    the explainer, the evaluation and the track (every strategy of a (dataset, seed, loss, …) pair
    starts from the same labelled set and weights, so round 0 trains the same model)."""
    method = identity["method"]
    sources = {k: v for k, v in identity["sources"].items()
               if k not in ("strategy", "explainer") and not k.startswith("metric:")}
    keep = ("suite", "dataset", "seed", "model", "protocol", "training", "threads", "device")
    return {**{k: identity[k] for k in keep if k in identity}, "sources": sources,
            "method": {k: method[k] for k in ("loss", "trainer", "mask_source")}}


def identity_hash(identity: dict[str, Any]) -> str:
    blob = json.dumps(identity, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


@dataclasses.dataclass(frozen=True)
class CellSpec:
    """A resolved cell and where it runs: its :class:`CellConfig`, the results directory, the data root,
    the plugin selection and the isolation level (picklable; no registry, no data)."""

    config: CellConfig
    out_dir: str
    data_root: str | None = None
    selection: PluginSelection = dataclasses.field(default_factory=PluginSelection)
    isolation: str = "process"

    def evolve(self, **changes: Any) -> CellSpec:
        """A copy with ``changes``: fields of the spec, or of its config (``device``, ``method``, …)."""
        own = {f.name for f in dataclasses.fields(self)}
        config = {k: v for k, v in changes.items() if k not in own}
        spec = {k: v for k, v in changes.items() if k in own}
        if config:
            spec["config"] = dataclasses.replace(spec.get("config", self.config), **config)
        return dataclasses.replace(self, **spec)

    @property
    def dataset(self) -> ComponentSpec:
        return self.config.dataset

    @property
    def method(self) -> MethodSpec:
        return self.config.method

    @property
    def seed(self) -> int:
        return self.config.seed

    @property
    def device(self) -> str:
        return self.config.device

    @property
    def threads(self) -> int:
        return self.config.threads

    @property
    def pool_masks_visible(self) -> bool:
        return self.config.pool_masks_visible

    @property
    def skip_reason(self) -> str | None:
        return self.config.skip_reason

    @property
    def identity(self) -> dict[str, Any]:
        return self.config.identity()

    @property
    def key(self) -> str:
        return cell_key(self.dataset.display, self.method.display, self.seed)

    @property
    def identity_sha256(self) -> str:
        return identity_hash(self.identity)

    @property
    def cells_dir(self) -> Path:
        return Path(self.out_dir) / "cells"

    @property
    def result_path(self) -> Path:
        return self.cells_dir / f"{self.key}.json"

    @property
    def partial_path(self) -> Path:
        return self.cells_dir / f"{self.key}.partial.json"

    @property
    def lock_path(self) -> Path:
        return self.cells_dir / f"{self.key}.lock"

    @property
    def weights_path(self) -> Path:
        return self.cells_dir / f"{self.key}.partial.pt"

    def describe(self) -> dict[str, Any]:
        m = self.method
        return {
            "suite": self.config.suite,
            "dataset": self.dataset.display,
            "dataset_name": self.dataset.name,
            "dataset_options": self.dataset.options,
            "method": m.display,
            "strategy": m.strategy.name,
            "strategy_options": m.strategy.options,
            "loss": m.loss.name,
            "loss_options": m.loss.options,
            "trainer": m.trainer.name,
            "trainer_options": m.trainer.options,
            "mask_source": m.mask_source.name,
            "mask_source_options": m.mask_source.options,
            "seed": self.seed,
            "key": self.key,
            "pool_masks_visible": self.pool_masks_visible,
        }
