"""GESTALT's question (Table I): do the GESTALT ranking variants beat MC-dropout uncertainty sampling on
multi-label AUC? Each variant with ``ce`` vs ``mcd-variance`` with ``ce`` (else the core's ``mcd-entropy``),
paired by seed on the AULC of macro AUC; asked only on multi-label datasets."""

from __future__ import annotations

from typing import ClassVar

from xalbench.report.base import Block, DatasetFacts, Finding, Pair
from xalbench.report.cells import RunCells
from xalbench.report.paired import INCONCLUSIVE, combine, judge

__all__ = ["GestaltVsUncertainty"]

VARIANTS = ("gestalt-node", "gestalt-edge", "gestalt-weighted-node")
UNCERTAINTY = ("mcd-variance", "mcd-entropy")  #: the paper's baseline first, the core's stand-in second


class GestaltVsUncertainty(Finding):
    """Each GESTALT variant vs MC-dropout uncertainty on the AULC of macro AUC (multi-label data)."""

    name: ClassVar[str] = "gestalt"
    title: ClassVar[str] = "GESTALT Table I: GESTALT variants vs MC-dropout uncertainty (multi-label AUC)"
    summary: ClassVar[str] = "Do GESTALT's variants beat MC-dropout uncertainty on multi-label AUC?"
    paper: ClassVar[str] = "GESTALT (Table I: AUC of the variants vs uncertainty sampling)"
    question: ClassVar[str] = ("On multi-label data, do the GESTALT ranking variants beat MC-dropout uncertainty "
                               "sampling on macro AUC?")
    quantities: ClassVar[tuple[str, ...]] = ("auc",)
    claim = "every"
    needs: ClassVar[str] = ("no GESTALT (gestalt-node / -edge / -weighted-node) cells on a multi-label dataset")

    def applies_to(self, facts: DatasetFacts) -> str | None:
        if facts.task != "multi-label":
            return "not multi-label" if facts.task else "task unknown"
        return None

    def _pick(self, run: RunCells, ds: str, strategy: str) -> str | None:
        names = sorted({c.method for c in run.where([ds], strategy=strategy, loss="ce")})
        return names[0] if names else None

    def _pairs(self, run: RunCells) -> tuple[list[Pair], list[str]]:
        pairs, missing = [], []
        for ds in sorted({c.dataset for c in run.where(run.asked(self)) if c.strategy in VARIANTS}):
            unc = next((m for s in UNCERTAINTY if (m := self._pick(run, ds, s)) is not None), None)
            if unc is None:
                missing.append(f"{ds} (no mcd-variance or mcd-entropy with ce)")
                continue
            pairs += [Pair(ds, g, unc) for s in VARIANTS if (g := self._pick(run, ds, s)) is not None]
        return pairs, missing

    def pairs(self, run: RunCells) -> list[Pair]:
        return self._pairs(run)[0]

    def answer(self, run: RunCells) -> Block:
        pairs, missing = self._pairs(run)
        if not pairs and not missing:
            return self.missing(run)
        comps = judge([self.compare(run, p) for p in pairs], run.delta)
        text = "; ".join(f"{c.dataset}: {c.describe()} → {c.verdict}" for c in comps)
        if missing:
            text += ("; " if text else "") + "not compared: " + ", ".join(missing)
        verdict = combine([c.verdict for c in comps], self.claim) if comps else INCONCLUSIVE
        return self.block(run, verdict, text + ".", comps)
