"""Findings: every registered paper question answered from a run's own cells (``xalbench report --findings``).

The questions are :class:`~xalbench.report.base.Finding` components, registered by the papers'
plugins through ``register_findings``; this module only gathers them, builds the run's
:class:`~xalbench.report.cells.RunCells` once and asks each. One block per question —
``{"key", "title", "question", "verdict", "text", "comparisons", "datasets", "not_asked",
"power", ...}`` — with the statistic behind it (:mod:`xalbench.report.paired`: paired by seed,
Holm within a block, verdicts reproduced / contradicted / not reproduced / inconclusive at the
smallest effect of interest δ; ``docs/findings.md``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from xalbench.report.base import DatasetFacts, Finding
from xalbench.report.cells import RunCells
from xalbench.report.paired import DEFAULT_DELTA

__all__ = ["findings", "registered_findings"]


def registered_findings(registry: Any) -> list[Finding]:
    """Every registered finding: the core's first, then the plugins', each group by name."""
    records = [registry.record("finding", n) for n in registry.names("finding")]
    records.sort(key=lambda rec: (rec.distribution != "xalbench", rec.name))
    return [rec.obj() for rec in records]


def findings(results: Sequence[Mapping[str, Any]], *, registry: Any = None, delta: float | None = None,
             facts: Mapping[str, DatasetFacts] | None = None, data_root: str | None = None) -> list[dict[str, Any]]:
    """One block per registered question, from the finished cells of ``results``, judged at margin
    ``delta`` (default :data:`~xalbench.report.paired.DEFAULT_DELTA`); ``facts`` of datasets
    override what the results record (:func:`~xalbench.report.cells.dataset_facts`)."""
    if registry is None:
        from xalbench.plugins import PluginSelection

        registry = PluginSelection.from_env().registry()
    run = RunCells.from_results(results, registry, DEFAULT_DELTA if delta is None else delta, facts, data_root)
    return [f.answer(run).as_dict() for f in registered_findings(registry)]
