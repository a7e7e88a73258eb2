"""The core's own question, stated generically: does explanation supervision raise the explanations'
agreement with the ROI at equal accuracy? (SAL's RQ1, B2 vs B1, asked of every explanation loss.)

It names no plugin component: every method whose loss is not ``ce`` is compared with the method
of the same strategy (and options) trained with ``ce`` by the standard trainer; faithfulness
metrics are the registered subclasses of
:class:`~xalbench.metrics.faithfulness.FaithfulnessMetric`.
"""

from __future__ import annotations

import math
from typing import ClassVar

from xalbench.report.base import Block, DatasetFacts, Finding, Pair
from xalbench.report.cells import RunCells
from xalbench.report.paired import CONTRADICTED, NOT_REPRODUCED, REPRODUCED, Comparison, combine, compare, judge

__all__ = ["ExplanationSupervision"]


class ExplanationSupervision(Finding):
    """Each explanation-loss method vs the same strategy trained with ``ce``: ΔAULC_Dice above 0 while
    ΔAULC_acc is not significantly negative; with faithfulness metrics, whether the methods that
    raised Dice lowered faithfulness significantly."""

    name: ClassVar[str] = "sal-rq1"
    title: ClassVar[str] = "SAL RQ1: explanation supervision vs cross-entropy (AULC_Dice at equal accuracy)"
    summary: ClassVar[str] = "Does explanation supervision raise ROI agreement at equal accuracy? (any loss vs ce)"
    paper: ClassVar[str] = "Boyd et al., SAL (RQ1: B2 vs B1), asked of every registered explanation loss"
    question: ClassVar[str] = (
        "Does training with explanation supervision raise the explanations' agreement with the ROI (AULC_Dice) "
        "without lowering accuracy (AULC_acc)? Each explanation-loss method vs the same strategy with ce.")
    quantities: ClassVar[tuple[str, ...]] = ("dice", "accuracy")
    claim = "some"
    needs: ClassVar[str] = ("no method with an explanation loss beside the same strategy trained with ce on a "
                            "dataset with ROIs (e.g. random+dice and random+ce)")
    reference_loss: ClassVar[str] = "ce"

    def applies_to(self, facts: DatasetFacts) -> str | None:
        return "no ROIs to agree with" if facts.has_roi is False else None

    def pairs(self, run: RunCells) -> list[Pair]:
        asked = run.asked(self)
        plain = {(c.dataset, c.strategy_key): c.method for c in run.where(asked, loss=self.reference_loss)
                 if c.plain}
        return [Pair(*t) for t in sorted({(c.dataset, c.method, plain[(c.dataset, c.strategy_key)])
                                          for c in run.where(asked) if c.loss != self.reference_loss
                                          and (c.dataset, c.strategy_key) in plain})]

    def answer(self, run: RunCells) -> Block:
        dice_key = run.metric("dice").key
        pairs = [p for p in self.pairs(run)
                 if any(not math.isnan(v) for v in run.values(p.dataset, p.a, dice_key).values())]
        if not pairs:
            return self.missing(run)
        dice = judge([self.compare(run, p, "dice") for p in pairs], run.delta)
        acc = judge([self.compare(run, p, "accuracy") for p in pairs], run.delta)
        verdicts = [CONTRADICTED if d.verdict == REPRODUCED and a.verdict == CONTRADICTED else d.verdict
                    for d, a in zip(dice, acc, strict=True)]
        text = "; ".join(_dataset_line(ds, pairs, dice, acc, verdicts) for ds in sorted({p.dataset for p in pairs}))
        text += "." + self._faithfulness(run, pairs, verdicts)
        return self.block(run, combine(verdicts, self.claim), text, dice + acc, tallied=verdicts, deciding=dice)

    def _faithfulness(self, run: RunCells, pairs: list[Pair], verdicts: list[str]) -> str:
        keys = sorted({m.key: m for m in run.metrics.values() if m.faithfulness}.items())
        present = [(k, m) for k, m in keys if any(c.summary.get(k) is not None for c in run.cells)]
        if not present:
            return " No faithfulness metric in this run (add e.g. metrics = [\"deletion\"] to [evaluation])."
        lost = []
        for p, verdict in zip(pairs, verdicts, strict=True):
            if verdict != REPRODUCED:
                continue
            for key, m in present:
                f = compare(p.dataset, p.a, p.b, run.values(p.dataset, p.a, key), run.values(p.dataset, p.b, key),
                            f"{key} ({m.name})", m.direction, run.delta)
                if f.verdict == CONTRADICTED:
                    lost.append(f"{p.a} on {p.dataset} ({f.describe()})")
        names = ", ".join(m.name for _, m in present)
        return (f" Faithfulness ({names}): " + (f"lowered significantly by {'; '.join(lost)}." if lost
                                                else "no method that raised Dice lowered it significantly."))


def _dataset_line(ds: str, pairs: list[Pair], dice: list[Comparison], acc: list[Comparison],
                  verdicts: list[str]) -> str:
    idx = [i for i, p in enumerate(pairs) if p.dataset == ds]

    def named(sel: list[int]) -> str:
        return ", ".join(f"{pairs[i].a} ({dice[i].mean:+.3f})" for i in sel)

    raised = [i for i in idx if verdicts[i] == REPRODUCED]
    costly = [i for i in idx if dice[i].verdict == REPRODUCED and acc[i].verdict == CONTRADICTED]
    lowered = [i for i in idx if dice[i].verdict == CONTRADICTED]
    flat = [i for i in idx if dice[i].verdict == NOT_REPRODUCED]
    best = max(idx, key=lambda i: -math.inf if math.isnan(dice[i].mean) else dice[i].mean)
    line = f"{ds}: {len(raised)} of {len(idx)} raise Dice at equal accuracy" + (f" ({named(raised)})" if raised else "")
    if costly:
        line += f", {len(costly)} raise it at a significant accuracy cost ({named(costly)})"
    if lowered:
        line += f", {len(lowered)} lower it significantly ({named(lowered)})"
    if flat:
        line += f", {len(flat)} do not raise it by δ or more ({named(flat)})"
    return line + f"; largest: {dice[best].describe()} ({acc[best].describe().split(': ', 1)[1]})"
