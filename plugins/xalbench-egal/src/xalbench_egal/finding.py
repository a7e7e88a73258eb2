"""EG-AL's question (Table I, Fig. 6): does EG-AL's acquisition beat random sampling under the same
training (same loss and loss options)? Each ``egal`` method vs ``random`` with that loss, paired by seed
on AULC_acc; with three or more λ, the paper's λ curve: an interior λ beats both extremes."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from xalbench.report.base import Block, DatasetFacts, Finding, Pair
from xalbench.report.cells import RunCells
from xalbench.report.paired import INCONCLUSIVE, Comparison, combine, judge

__all__ = ["EGALVsRandom"]


class EGALVsRandom(Finding):
    """EG-AL vs random sampling with the same loss on AULC_acc, and the λ trend."""

    name: ClassVar[str] = "egal"
    title: ClassVar[str] = "EG-AL Table I: EG-AL vs random sampling (AULC_acc), and the λ trend"
    summary: ClassVar[str] = "Does EG-AL's acquisition beat random sampling under the same training?"
    paper: ClassVar[str] = "Uddin et al., EG-AL (Table I: vs random; Fig. 6: the λ curve)"
    question: ClassVar[str] = ("Does EG-AL's acquisition beat random sampling under the same training (same loss)? "
                               "With three or more λ, does an interior λ beat both extremes?")
    quantities: ClassVar[tuple[str, ...]] = ("accuracy",)
    claim = "every"
    needs: ClassVar[str] = "no EG-AL (strategy egal) cells"

    def applies_to(self, facts: DatasetFacts) -> str | None:
        return "no ROIs: EG-AL scores explanations against the pool's ROIs" if facts.has_roi is False else None

    def _pairs(self, run: RunCells) -> tuple[list[Pair], list[str]]:
        asked = run.asked(self)
        egal = sorted({(c.dataset, c.method, c.loss, c.loss_key) for c in run.where(asked, strategy="egal")})
        random = {(c.dataset, c.loss_key): c.method for c in run.where(asked, strategy="random") if c.plain}
        pairs, missing = [], []
        for ds, m, loss, lkey in egal:
            b = random.get((ds, lkey))
            if b is None:
                missing.append(f"{m} on {ds} (no random+{loss} with the same loss options)")
            else:
                pairs.append(Pair(ds, m, b))
        return pairs, missing

    def pairs(self, run: RunCells) -> list[Pair]:
        return self._pairs(run)[0]

    def answer(self, run: RunCells) -> Block:
        pairs, missing = self._pairs(run)
        if not pairs and not missing:
            return self.missing(run)
        comps = judge([self.compare(run, p) for p in pairs], run.delta)
        parts = [c.describe() + f" on {c.dataset} → {c.verdict}" for c in comps]
        if missing:
            parts.append("not compared: " + ", ".join(missing))
        text = "; ".join(parts) + "." if parts else "No EG-AL method has a random counterpart with the same loss."
        verdicts = [c.verdict for c in comps]
        trend_text, trend_verdicts = self._lambda_trend(run)
        if trend_text:
            text += " λ trend: " + trend_text
            verdicts += trend_verdicts
        verdict = combine(verdicts, self.claim) if comps else INCONCLUSIVE
        return self.block(run, verdict, text, comps, tallied=verdicts)

    def _lambda_trend(self, run: RunCells) -> tuple[str, list[str]]:
        """Per dataset and loss with ≥ 3 λ: the best interior λ against both extremes (Holm over the two;
        the trend is reproduced if it beats both); when an extreme λ has the best mean, the best interior
        λ against that extreme (contradicted if significantly below it)."""
        variants: dict[tuple[str, str], dict[float, str]] = {}
        for c in run.where(run.asked(self), strategy="egal"):
            variants.setdefault((c.dataset, c.loss_key), {})[float(c.strategy_options.get("lam", 0.5))] = c.method
        texts, verdicts = [], []
        for (ds, _), by_lam in sorted(variants.items()):
            if len(by_lam) < 3:
                continue
            lams = sorted(by_lam)
            key = run.metric("accuracy").key
            means = {lam: float(np.nanmean(list(run.values(ds, by_lam[lam], key).values()))) for lam in lams}
            curve = ", ".join(f"λ={lam:g}: {means[lam]:.3f}" for lam in lams)
            inner = max(lams[1:-1], key=lambda lam: means[lam])
            best = max(lams, key=lambda lam: means[lam])
            if best in (lams[0], lams[-1]):
                (c,) = judge([self.compare(run, Pair(ds, by_lam[inner], by_lam[best]))], run.delta)
                verdicts.append(c.verdict)
                texts.append(f"{ds}: best at the extreme λ={best:g} ({curve}); best interior vs it: {c.describe()} "
                             f"→ {c.verdict}")
                continue
            ends: list[Comparison] = judge([self.compare(run, Pair(ds, by_lam[best], by_lam[e]))
                                            for e in (lams[0], lams[-1])], run.delta)
            v = combine([e.verdict for e in ends], "every")
            verdicts.append(v)
            texts.append(f"{ds}: best at interior λ={best:g} ({curve}); vs extremes: "
                         + "; ".join(e.describe() for e in ends) + f" → {v}")
        return ("; ".join(texts) + ".", verdicts) if texts else ("", [])
