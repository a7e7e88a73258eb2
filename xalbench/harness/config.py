"""A cell resolved once: :class:`CellConfig` holds everything that determines its result.

The suite is read once, at planning: :func:`resolve_cell` resolves the protocol, the metrics the
cell computes, whether its strategy sees pool ROIs, why it does not apply (→ n/a) and the code
it runs, and freezes them. The cell runs from the config, its identity *is* the config
(:meth:`CellConfig.identity`), and the runner, tuning and the leaderboard ask the same function
for the same answers — nothing downstream re-derives any of it from the suite.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from xalbench.base import DatasetMeta
from xalbench.harness.applicability import method_skip_reason, pool_masks_visible
from xalbench.harness.budget import Protocol, resolve_protocol
from xalbench.harness.sources import SourceHashes
from xalbench.registry import Registry
from xalbench.suite import ComponentSpec, MethodSpec, SuiteSpec, TrainingSpec

__all__ = ["CellConfig", "computed_metrics", "resolve_cell", "used_components"]


@dataclasses.dataclass(frozen=True)
class CellConfig:
    """Everything that determines one cell's result (picklable; no registry, no data)."""

    suite: str
    dataset: ComponentSpec
    method: MethodSpec
    seed: int
    protocol: Protocol
    model: ComponentSpec
    explainer: ComponentSpec
    training: TrainingSpec
    eval_target: str
    metrics: tuple[str, ...]  #: the metrics the cell computes (registration order; those that apply run)
    full_data_reference: bool
    pool_masks_visible: bool
    strategy_timeout: float
    threads: int = 1
    device: str = "cpu"
    skip_reason: str | None = None  #: why the method does not apply to the dataset (→ n/a), or None
    dataset_exempt: tuple[str, ...] = ()  #: dataset options that do not change the data (not in the identity)
    sources: Mapping[str, str] = dataclasses.field(default_factory=dict)  #: role → "package:closure hash"
    tuning: Mapping[str, Any] | None = None  #: the chosen values of a tuned variant
    suite_hash: str = ""  #: the suite file's hash (provenance; not part of the identity)
    suite_source: str | None = None  #: where the suite file lies (provenance)

    def identity(self) -> dict[str, Any]:
        """The identity dict (JSON-able, stable key order): what a finished cell's file is matched by."""
        out = {
            "suite": self.suite,
            "dataset": {"name": self.dataset.name,
                        "options": {k: v for k, v in self.dataset.options.items() if k not in self.dataset_exempt}},
            "method": self.method.identity(),
            "seed": self.seed,
            "model": self.model.identity(),
            "explainer": self.explainer.identity(),
            "protocol": dataclasses.asdict(self.protocol),
            "training": dataclasses.asdict(self.training),
            "evaluation": {"target": self.eval_target, "full_data_reference": self.full_data_reference,
                           "metrics": sorted(self.metrics)},
            "track": {"pool_masks_visible": self.pool_masks_visible},
            "threads": self.threads,
            "device": self.device.split(":")[0],
            "sources": dict(sorted(self.sources.items())),
        }
        if self.tuning is not None:
            out["tuning"] = dict(self.tuning)
        return out


def computed_metrics(registry: Registry, suite: SuiteSpec) -> tuple[str, ...]:
    """Every ``default`` metric plus the suite's ``[evaluation] metrics``, in registration order."""
    return tuple(n for n in registry.names("metric") if registry.get("metric", n).default or n in suite.metrics)


def used_components(dataset: ComponentSpec, method: MethodSpec, model: ComponentSpec, explainer: ComponentSpec,
                    metrics: tuple[str, ...]) -> list[tuple[str, str]]:
    """(kind, name) of every component a cell runs: its strategy (in the sandbox) and everything the cell's
    own process runs."""
    used = [("dataset", dataset.name), ("strategy", method.strategy.name), ("loss", method.loss.name),
            ("trainer", method.trainer.name), ("mask_source", method.mask_source.name), ("model", model.name)]
    if explainer.name:
        used.append(("explainer", explainer.name))
    return used + [("metric", m) for m in metrics]


def _sources(registry: Registry, suite: SuiteSpec, dataset: ComponentSpec, method: MethodSpec,
             metrics: tuple[str, ...], hashes: SourceHashes) -> dict[str, str]:
    used = used_components(dataset, method, suite.model, suite.explainer, metrics)
    out = {"xalbench": hashes.harness()}
    for kind, name in used:
        package, digest = hashes.of(registry.get(kind, name))
        out[kind if kind != "metric" else f"metric:{name}"] = f"{package}:{digest}"
    return out


def resolve_cell(registry: Registry, suite: SuiteSpec, dataset: ComponentSpec, method: MethodSpec, seed: int, *,
                 meta: DatasetMeta | None, threads: int = 1, device: str = "cpu", protocol: Protocol | None = None,
                 sources: SourceHashes | None = None, visible: bool | None = None,
                 tuning: Mapping[str, Any] | None = None, equal_to: str | None = None) -> CellConfig:
    """The one resolution of a cell of ``suite``: protocol, metrics, track, n/a reason and code.

    ``meta`` is the dataset's metadata (``None`` only with ``visible`` given: then no n/a reason is
    decided — the leaderboard checking a submission whose plugin is not installed here);
    ``sources=None`` leaves the code hashes out (the identity then compares configurations only);
    ``equal_to``: the n/a reason when the method is equal by construction to another method of the run
    on this dataset (:func:`~xalbench.harness.applicability.equivalent_methods`)."""
    protocol = protocol if protocol is not None else resolve_protocol(registry, suite)
    metrics = computed_metrics(registry, suite)
    reason = None
    if meta is not None:
        if visible is None:
            visible = pool_masks_visible(registry, suite, method, meta)
        reason = method_skip_reason(registry, suite, method, meta) or equal_to
    if visible is None:
        raise ValueError("resolve_cell needs the dataset's metadata or the track's pool-mask visibility")
    exempt = tuple(getattr(registry.get("dataset", dataset.name), "identity_exempt", ()))
    return CellConfig(
        suite=suite.name, dataset=dataset, method=method, seed=int(seed), protocol=protocol, model=suite.model,
        explainer=suite.explainer, training=suite.training, eval_target=suite.eval_target, metrics=metrics,
        full_data_reference=suite.full_data_reference, pool_masks_visible=bool(visible),
        strategy_timeout=suite.strategy_timeout, threads=int(threads), device=device, skip_reason=reason,
        dataset_exempt=exempt,
        sources=_sources(registry, suite, dataset, method, metrics, sources) if sources is not None else {},
        tuning=dict(tuning) if tuning is not None else None, suite_hash=suite.config_hash(),
        suite_source=suite.source)
