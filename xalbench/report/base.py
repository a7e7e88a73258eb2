"""The report model every format renders, and the ``ReportFormat`` and ``Finding`` contracts.

:class:`Report` holds one shared table (displayed strings *and* raw numbers) built once from a
results directory; each registered :class:`ReportFormat` only renders it, so formats cannot
drift: markdown and HTML show the displayed columns, CSV and JSON the same displayed columns
plus raw numeric columns.

A :class:`Finding` is a paper's question, registered by the paper's plugin
(``register_findings``) and answered from a run's cells with the paired statistics of
:mod:`xalbench.report.paired` (``docs/findings.md``).
"""

from __future__ import annotations

import abc
import dataclasses
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd

from xalbench.base import Component
from xalbench.report.paired import INCONCLUSIVE, Claim, Comparison, combine, compare, judge, seeds_to_decide, tally

if TYPE_CHECKING:
    from xalbench.report.cells import RunCells

__all__ = ["Block", "Column", "DatasetFacts", "Finding", "Pair", "Report", "ReportFormat"]


@dataclasses.dataclass(frozen=True)
class Column:
    """A displayed column: ``key`` in :attr:`Report.rows`, its ``header`` and a one-line ``note``."""

    key: str
    header: str
    note: str = ""


@dataclasses.dataclass
class Report:
    """Everything a report shows (see the module docstring)."""

    run_dir: str
    header: dict[str, Any]
    datasets: list[dict[str, Any]]
    columns: list[Column]
    rows: list[dict[str, str]]
    raw: pd.DataFrame
    problems: pd.DataFrame
    notes: list[str] = dataclasses.field(default_factory=list)
    methods: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    plots: dict[str, bytes] = dataclasses.field(default_factory=dict)
    plot_paths: list[Path] = dataclasses.field(default_factory=list)
    damaged: list[Path] = dataclasses.field(default_factory=list)
    damaged_reasons: dict[Path, str] = dataclasses.field(default_factory=dict)
    findings: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    def dataset_rows(self, dataset: str) -> list[dict[str, str]]:
        """The displayed rows of one dataset's table."""
        return [r for r in self.rows if r["dataset"] == dataset]


class ReportFormat(Component, abc.ABC):
    """Renders a :class:`Report` to text (``xalbench report --format NAME``).

    ``embeds_plots``: the report it renders carries its plots (PNG bytes) to embed; ``wants_findings``:
    it always carries the registered findings (as with ``--findings``)."""

    kind: ClassVar[str] = "report_format"
    declarations: ClassVar[tuple[str, ...]] = ("embeds_plots", "wants_findings")
    suffix: ClassVar[str] = ".txt"
    embeds_plots: ClassVar[bool] = False
    wants_findings: ClassVar[bool] = False

    @abc.abstractmethod
    def render(self, report: Report) -> str:
        """The whole report as text."""


# ----------------------------------------------------------------------------- findings
@dataclasses.dataclass(frozen=True)
class DatasetFacts:
    """What a finding may ask of a dataset to decide whether its question exists there; ``None`` =
    not known (results that do not record it, a dataset that cannot be loaded here)."""

    name: str
    task: str | None = None  #: "multi-class" or "multi-label"
    spatial_dims: int | None = None  #: 2 or 3
    has_roi: bool | None = None
    sparse_annotations: bool | None = None  #: 3D volumes with some slices annotated and others not
    class_shares: tuple[float, ...] | None = None  #: the pool's class distribution (multi-class)

    @classmethod
    def from_bundle(cls, name: str, bundle: Any) -> DatasetFacts:
        """Every fact, from a loaded :class:`~xalbench.base.DatasetBundle` (its train pool)."""
        meta, pool = bundle.meta, bundle.train
        sparse = pool.annotated_slices is not None and not bool(pool.annotated_slices.all())
        shares = None
        if meta.task == "multi-class" and len(pool):
            counts = np.bincount(pool.labels.numpy(), minlength=meta.num_classes)
            shares = tuple(float(v) for v in counts / counts.sum())
        return cls(name, meta.task, int(meta.spatial_dims), bool(meta.has_roi), sparse, shares)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DatasetFacts:
        fields = {f.name for f in dataclasses.fields(cls)}
        out = {k: v for k, v in data.items() if k in fields}
        if out.get("class_shares") is not None:
            out["class_shares"] = tuple(out["class_shares"])
        return cls(**out)


@dataclasses.dataclass(frozen=True)
class Pair:
    """One comparison a question makes: method ``a`` against its reference ``b`` on ``dataset``."""

    dataset: str
    a: str
    b: str


@dataclasses.dataclass
class Block:
    """A finding's answer: the verdict, the statistic behind it, where the question was asked."""

    key: str
    title: str
    question: str
    verdict: str
    text: str
    comparisons: list[Comparison] = dataclasses.field(default_factory=list)
    paper: str = ""
    claim: str = "every"
    quantities: tuple[str, ...] = ()
    delta: float = float("nan")
    asked: list[str] = dataclasses.field(default_factory=list)
    not_asked: dict[str, str] = dataclasses.field(default_factory=dict)
    power: str = ""

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe; the shape every report format reads."""
        return {"key": self.key, "title": self.title, "question": self.question, "verdict": self.verdict,
                "text": self.text, "comparisons": [c.as_dict() for c in self.comparisons], "paper": self.paper,
                "claim": self.claim, "quantities": list(self.quantities),
                "delta": None if math.isnan(self.delta) else self.delta, "datasets": list(self.asked),
                "not_asked": dict(self.not_asked), "power": self.power}


class Finding(Component, abc.ABC):
    """A paper's question, answered from a run's cells (``xalbench report --findings``).

    Declarations (class attributes): ``name`` (the block's key), ``title``, ``paper``, ``question``;
    ``quantities`` — what it compares, primary first: registered metric names (their AULC, or their
    final value for a metric without one) or quantities the finding computes itself
    (:meth:`values`); ``direction`` — ``"max"`` if the paper claims the method's value is higher,
    ``"min"`` if lower; ``claim`` — ``"every"`` if the paper claims each compared method beats its
    reference, ``"some"`` if it claims the approach can help (how :func:`~xalbench.report.paired.combine`
    joins the comparisons); ``needs`` — what a run must contain, said when it does not.

    A finding implements :meth:`pairs` (the comparisons it makes in a run, only on datasets where
    :meth:`applies_to` allows) and may override :meth:`answer`; the default answer compares every
    pair on the primary quantity, judges them as one Holm family at the run's δ and combines them.
    """

    kind: ClassVar[str] = "finding"
    title: ClassVar[str] = ""
    question: ClassVar[str] = ""
    quantities: ClassVar[tuple[str, ...]] = ()
    direction: ClassVar[str] = "max"
    claim: ClassVar[Claim] = "every"
    needs: ClassVar[str] = ""

    def applies_to(self, facts: DatasetFacts) -> str | None:
        """``None`` if the question exists on this dataset, else why not (unknown facts: it may)."""
        return None

    @abc.abstractmethod
    def pairs(self, run: RunCells) -> list[Pair]:
        """The comparisons the question makes in ``run`` (datasets from :meth:`RunCells.asked`)."""

    def values(self, run: RunCells, dataset: str, method: str, quantity: str) -> dict[int, float]:
        """Seed → value of ``quantity`` for ``method`` on ``dataset`` (default: the metric's summary value)."""
        return run.values(dataset, method, run.metric(quantity).key)

    def label(self, run: RunCells, quantity: str) -> str:
        """How ``quantity`` is shown (``AULC_acc``)."""
        return run.metric(quantity).label if run.has_metric(quantity) else quantity

    def compare(self, run: RunCells, pair: Pair, quantity: str | None = None, direction: str | None = None
                ) -> Comparison:
        """``pair`` compared on ``quantity`` (default: the primary one), paired by seed."""
        q = quantity or self.quantities[0]
        return compare(pair.dataset, pair.a, pair.b, self.values(run, pair.dataset, pair.a, q),
                       self.values(run, pair.dataset, pair.b, q), self.label(run, q),
                       direction or self.direction, run.delta)

    def answer(self, run: RunCells) -> Block:
        """Every pair on the primary quantity, one Holm family, combined by :attr:`claim`."""
        pairs = self.pairs(run)
        if not pairs:
            return self.missing(run)
        comps = judge([self.compare(run, p) for p in pairs], run.delta)
        text = "; ".join(f"{c.dataset}: {c.describe()} → {c.verdict}" for c in comps) + "."
        return self.block(run, combine([c.verdict for c in comps], self.claim), text, comps)

    # ------------------------------------------------------------------ helpers for answers
    def block(self, run: RunCells, verdict: str, text: str, comps: Sequence[Comparison] = (), *,
              tallied: Sequence[str] | None = None, deciding: Sequence[Comparison] | None = None) -> Block:
        """A :class:`Block` of this finding, with the tally of ``tallied`` (default: the comparisons'
        verdicts), the power note of the ``deciding`` comparisons (default: all) when inconclusive,
        and the datasets where the question was not asked."""
        comps = list(comps)
        tallied = [c.verdict for c in comps] if tallied is None else list(tallied)
        if len(tallied) > 1:
            family = max(c.family for c in comps)
            text += f" Comparisons{f' (Holm over {family})' if family > 1 else ''}: {tally(tallied)}."
        not_asked = run.not_asked(self)
        if not_asked:
            text += " Not asked on " + "; ".join(f"{ds} ({why})" for ds, why in not_asked.items()) + "."
        power = power_note(comps if deciding is None else deciding) if verdict == INCONCLUSIVE else ""
        return Block(self.name, self.title, self.question, verdict, text, comps, self.paper, self.claim,
                     self.quantities, run.delta, run.asked(self), not_asked, power)

    def missing(self, run: RunCells, what: str | None = None) -> Block:
        """The question cannot be asked in this run: say what is lacking, never a number."""
        return self.block(run, INCONCLUSIVE, f"Not tested in this run: {what or self.needs}.")


def power_note(comps: Sequence[Comparison]) -> str:
    """How many seeds would decide the block's inconclusive comparisons (the one needing most)."""
    notes = []
    for c in comps:
        if c.verdict == INCONCLUSIVE and c.n > 0:
            n, why = seeds_to_decide(c.sd, c.mean, c.delta)
            notes.append((math.inf if n is None else n, c, why))
    if not notes:
        return ""
    n, c, why = max(notes, key=lambda t: t[0])
    where = f"{c.a} vs {c.b} on {c.dataset}"
    if math.isinf(n):
        return f"Power: {where}: {why}."
    others = (f" ({len(notes)} inconclusive comparisons; this one needs the most)" if len(notes) > 1 else "")
    return (f"Power: {int(n)} paired seeds would decide {where} ({why}; between-seed SD of Δ {c.sd:.3g}, "
            f"this run has {c.n}){others}.")
