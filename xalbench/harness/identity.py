"""A cell's identity: everything that determines its result, and nothing else.

A cell = (suite, dataset, method, seed). Its **identity** is the dataset + options, strategy,
loss, trainer and mask source + options, model, explainer, resolved budget protocol,
training, evaluation, track, seed, thread count, device kind, and the source hashes of
xalbench and of every plugin distribution involved. The cache key of a finished cell is the
SHA-256 of that identity — never of the whole plan — so growing a run (more seeds, methods,
datasets) runs only the new cells, and a cell whose own configuration or code changed is
redone (its old file kept aside).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib
import json
import sys
from pathlib import Path
from typing import Any

from xalbench.plugins import PluginSelection
from xalbench.registry import Registry
from xalbench.suite import ComponentSpec, MethodSpec, SuiteSpec
from xalbench.utils.text import slug

__all__ = ["CellSpec", "SourceHashes", "cell_identity", "cell_key", "identity_hash", "training_identity"]


def cell_key(dataset: str, method: str, seed: int) -> str:
    """A filesystem-safe, readable file name for a cell (its identity is stored inside the file)."""
    return f"{slug(dataset)}__{slug(method)}__seed{seed}"


@functools.cache
def package_source_hash(package: str) -> str:
    """SHA-256 over the ``.py``/``.toml`` files of an imported top-level package, once per process:
    the code this process runs (files edited after import do not change what runs)."""
    module = sys.modules.get(package) or importlib.import_module(package)
    files = getattr(module, "__file__", None)
    h = hashlib.sha256()
    if files:
        root = Path(files).parent
        for path in sorted(root.rglob("*")):
            if path.suffix in (".py", ".toml") and "__pycache__" not in path.parts:
                h.update(str(path.relative_to(root)).encode())
                h.update(path.read_bytes())
    return h.hexdigest()[:16]


class SourceHashes:
    """Source hashes of the packages that define components (see :func:`package_source_hash`)."""

    def of_package(self, package: str) -> str:
        return package_source_hash(package)

    def of(self, obj: Any) -> tuple[str, str]:
        """(top-level package, its source hash) for a registered component class or object."""
        module = getattr(obj, "__module__", None) or type(obj).__module__
        package = module.split(".")[0]
        return package, self.of_package(package)


def cell_identity(registry: Registry, suite: SuiteSpec, dataset: ComponentSpec, method: MethodSpec, seed: int, *,
                  protocol: dict[str, Any], threads: int, device: str, pool_masks_visible: bool,
                  sources: SourceHashes) -> dict[str, Any]:
    """The identity dict of one cell (JSON-able, stable key order)."""
    used = [("dataset", dataset.name), ("strategy", method.strategy.name), ("loss", method.loss.name),
            ("trainer", method.trainer.name), ("mask_source", method.mask_source.name),
            ("model", suite.model.name)]
    if suite.explainer.name:
        used.append(("explainer", suite.explainer.name))
    computed = sorted(n for n in registry.names("metric") if registry.get("metric", n).default or n in suite.metrics)
    used += [("metric", m) for m in computed]
    packages = {"xalbench": sources.of_package("xalbench")}
    for kind, name in used:
        package, digest = sources.of(registry.get(kind, name))
        role = kind if kind != "metric" else f"metric:{name}"
        packages[role] = f"{package}:{digest}"
    exempt = set(getattr(registry.get("dataset", dataset.name), "identity_exempt", ()))
    data_identity = {"name": dataset.name, "options": {k: v for k, v in dataset.options.items() if k not in exempt}}
    return {
        "suite": suite.name,
        "dataset": data_identity,
        "method": method.identity(),
        "seed": seed,
        "model": suite.model.identity(),
        "explainer": suite.explainer.identity(),
        "protocol": protocol,
        "training": dataclasses.asdict(suite.training),
        "evaluation": {"target": suite.eval_target, "full_data_reference": suite.full_data_reference,
                       "metrics": computed},
        "track": {"pool_masks_visible": pool_masks_visible},
        "threads": threads,
        "device": device.split(":")[0],
        "sources": dict(sorted(packages.items())),
    }


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
    """Everything a worker needs to run one cell (picklable; no registry, no data)."""

    suite: SuiteSpec
    dataset: ComponentSpec
    method: MethodSpec
    seed: int
    out_dir: str
    device: str = "cpu"
    threads: int = 1
    data_root: str | None = None
    identity: dict[str, Any] = dataclasses.field(default_factory=dict)
    selection: PluginSelection = dataclasses.field(default_factory=PluginSelection)
    isolation: str = "process"
    pool_masks_visible: bool = False
    skip_reason: str | None = None  #: decided when planned: why this method does not apply (→ n/a)

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
            "suite": self.suite.name,
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
