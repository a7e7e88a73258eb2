"""A run's cells as findings read them: :class:`Cell`, the facts of each dataset and the registered
metrics (:class:`RunCells`), built from result files or from a plan (the dry run's power table)."""

from __future__ import annotations

import dataclasses
import functools
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from xalbench.errors import ConfigError
from xalbench.report.base import DatasetFacts, Finding

__all__ = ["Cell", "MetricInfo", "RunCells", "dataset_facts", "metric_infos"]


@dataclasses.dataclass(frozen=True)
class Cell:
    """One finished (or, in a plan, planned) cell: its method's components and its results."""

    dataset: str
    method: str
    seed: int
    strategy: str
    strategy_options: dict[str, Any]
    loss: str
    loss_options: dict[str, Any]
    trainer: str
    mask_source: str
    summary: dict[str, Any]
    rounds: list[dict[str, Any]]

    def value(self, key: str) -> float:
        v = self.summary.get(key)
        return float("nan") if v is None or isinstance(v, bool) else float(v)

    @property
    def strategy_key(self) -> str:
        """The strategy with its options (two methods with equal keys query alike)."""
        return f"{self.strategy}[{options_key(self.strategy_options)}]"

    @property
    def loss_key(self) -> str:
        return self.loss + options_key(self.loss_options)

    @property
    def plain(self) -> bool:
        """Trained by the standard trainer with no mask source (one model, human masks only)."""
        return self.trainer == "standard" and self.mask_source == "none"

    @classmethod
    def from_result(cls, r: Mapping[str, Any]) -> Cell:
        c = r["cell"]
        return cls(c["dataset"], c["method"], int(c["seed"]), c.get("strategy", ""),
                   dict(c.get("strategy_options") or {}), c.get("loss", ""), dict(c.get("loss_options") or {}),
                   c.get("trainer", "standard"), c.get("mask_source", "none"), dict(r.get("summary") or {}),
                   list(r.get("rounds") or []))

    @classmethod
    def planned(cls, spec: Any) -> Cell:
        """A planned cell (a ``CellSpec``), without results."""
        m = spec.method
        return cls(spec.dataset.display, m.display, int(spec.seed), m.strategy.name, dict(m.strategy.options),
                   m.loss.name, dict(m.loss.options), m.trainer.name, m.mask_source.name, {}, [])


def options_key(options: Mapping[str, Any]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(options.items()))


@dataclasses.dataclass(frozen=True)
class MetricInfo:
    """A registered metric as findings use it: its summary key, label and direction."""

    name: str
    key: str  #: ``aulc_<key>`` (or ``final_<key>`` for a metric without an AULC)
    label: str  #: ``AULC_<display>``
    direction: str
    task: str = "any"
    needs_roi: bool = False
    faithfulness: bool = False
    headline: bool = False

    @property
    def aulc(self) -> bool:
        return self.key.startswith("aulc_")


def metric_infos(registry: Any) -> dict[str, MetricInfo]:
    """Every registered metric, by name."""
    from xalbench.metrics.faithfulness import FaithfulnessMetric

    out = {}
    for name in registry.names("metric"):
        cls = registry.get("metric", name)
        prefix = "aulc" if cls.aulc else "final"
        out[name] = MetricInfo(name, f"{prefix}_{cls.summary_key()}", f"{prefix.upper()}_{cls.column()}",
                               cls.direction, cls.task, bool(cls.needs_roi), issubclass(cls, FaithfulnessMetric),
                               bool(cls.headline))
    return out


@dataclasses.dataclass
class RunCells:
    """What a finding reads: the cells, each dataset's facts, the registered metrics and δ."""

    cells: list[Cell]
    facts: dict[str, DatasetFacts]
    metrics: dict[str, MetricInfo]
    delta: float

    @functools.cached_property
    def groups(self) -> dict[tuple[str, str], dict[int, Cell]]:
        out: dict[tuple[str, str], dict[int, Cell]] = {}
        for c in self.cells:
            out.setdefault((c.dataset, c.method), {})[c.seed] = c
        return out

    def seeds(self, dataset: str, method: str) -> dict[int, Cell]:
        return self.groups.get((dataset, method), {})

    def values(self, dataset: str, method: str, key: str) -> dict[int, float]:
        """Seed → summary value ``key`` of ``method`` on ``dataset``."""
        return {s: c.value(key) for s, c in self.seeds(dataset, method).items()}

    def has_metric(self, name: str) -> bool:
        return name in self.metrics

    def metric(self, name: str) -> MetricInfo:
        try:
            return self.metrics[name]
        except KeyError:
            raise ConfigError(f"a finding compares metric {name!r}, which no installed plugin registers; "
                              f"registered metrics: {', '.join(sorted(self.metrics))}") from None

    def datasets(self) -> list[str]:
        return sorted({c.dataset for c in self.cells})

    def asked(self, finding: Finding) -> list[str]:
        """The run's datasets on which ``finding``'s question exists."""
        return [ds for ds in self.datasets() if finding.applies_to(self.facts.get(ds, DatasetFacts(ds))) is None]

    def not_asked(self, finding: Finding) -> dict[str, str]:
        """The run's other datasets, each with the reason the question does not exist there."""
        out = {}
        for ds in self.datasets():
            why = finding.applies_to(self.facts.get(ds, DatasetFacts(ds)))
            if why is not None:
                out[ds] = why
        return out

    def where(self, datasets: Iterable[str], **match: Any) -> list[Cell]:
        """Cells on ``datasets`` whose attributes equal ``match`` (e.g. ``strategy="random"``)."""
        wanted = set(datasets)
        return [c for c in self.cells if c.dataset in wanted and all(getattr(c, k) == v for k, v in match.items())]

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_results(cls, results: Sequence[Mapping[str, Any]], registry: Any, delta: float,
                     facts: Mapping[str, DatasetFacts] | None = None, data_root: str | None = None) -> RunCells:
        """The finished cells of ``results``; facts as given, else :func:`dataset_facts`."""
        metrics = metric_infos(registry)
        cells = [Cell.from_result(r) for r in results if r.get("status") == "ok"]
        known = dict(facts or {})
        missing = [r for r in results if r.get("status") == "ok" and r["cell"]["dataset"] not in known]
        if missing:
            known.update(dataset_facts(missing, registry, metrics, data_root))
        return cls(cells, known, metrics, delta)

    @classmethod
    def from_plan(cls, plan: Any, registry: Any, delta: float) -> RunCells:
        """The planned, applicable cells of ``plan`` with the facts of its loaded datasets."""
        cells = [Cell.planned(c) for c in plan.cells if not c.skip_reason]
        facts: dict[str, DatasetFacts] = {}
        for c in plan.cells:
            name = c.dataset.display
            if name not in facts and plan.runtime is not None:
                facts[name] = DatasetFacts.from_bundle(name, plan.runtime.dataset(c.dataset, c.data_root))
        return cls(cells, facts, metric_infos(registry), delta)


def dataset_facts(results: Sequence[Mapping[str, Any]], registry: Any, metrics: Mapping[str, MetricInfo],
                  data_root: str | None = None) -> dict[str, DatasetFacts]:
    """Each dataset's facts: as recorded in a result's provenance (``dataset_facts``), else from the
    dataset loaded again (its name and options are in every result; embedded data is cached on
    disk), else what the cells show (the task from multi-label-only metrics, ROIs from explanation
    metrics), the rest unknown."""
    out: dict[str, DatasetFacts] = {}
    by_dataset: dict[str, list[Mapping[str, Any]]] = {}
    for r in results:
        by_dataset.setdefault(r["cell"]["dataset"], []).append(r)
    for ds, rs in by_dataset.items():
        recorded = next((r["provenance"]["dataset_facts"] for r in rs
                         if isinstance(r.get("provenance", {}).get("dataset_facts"), Mapping)), None)
        if recorded is not None:
            out[ds] = DatasetFacts.from_dict({**recorded, "name": ds})
            continue
        out[ds] = _loaded_facts(ds, rs[0]["cell"], registry, data_root) or _observed_facts(ds, rs, metrics)
    return out


def _loaded_facts(ds: str, cell: Mapping[str, Any], registry: Any, data_root: str | None) -> DatasetFacts | None:
    name = cell.get("dataset_name")
    if not name or name not in registry.names("dataset"):
        return None
    from xalbench.harness.runtime import Runtime
    from xalbench.plugins import PluginSelection
    from xalbench.suite import ComponentSpec

    try:
        runtime = Runtime(registry, PluginSelection.from_env())
        root = data_root or os.environ.get("XALBENCH_DATA")
        bundle = runtime.dataset(ComponentSpec(name, dict(cell.get("dataset_options") or {}), ds), root)
    except Exception:  # noqa: BLE001 - data not on this machine, or a plugin gone: fall back to the cells
        return None
    return DatasetFacts.from_bundle(ds, bundle)


def _observed_facts(ds: str, results: Sequence[Mapping[str, Any]], metrics: Mapping[str, MetricInfo]) -> DatasetFacts:
    names: set[str] = set()
    roi = False
    for r in results:
        for rd in (r.get("rounds") or [])[:1]:
            names |= set(rd.get("metrics") or {})
        roi = roi or any(m.needs_roi and not _nan(r.get("summary", {}).get(m.key)) for m in metrics.values())
    if not names:
        return DatasetFacts(ds, has_roi=roi or None)
    multilabel = any(metrics[n].task == "multi-label" for n in names if n in metrics)
    return DatasetFacts(ds, task="multi-label" if multilabel else "multi-class", has_roi=roi or None)


def _nan(value: Any) -> bool:
    return value is None or isinstance(value, bool) or (isinstance(value, float) and math.isnan(value))
