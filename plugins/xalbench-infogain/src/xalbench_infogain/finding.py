"""AEIG's question (Fig. 4): on class-imbalanced data, does AEIG acquire a larger share of minority-class
samples than entropy and random sampling? The share of minority-class samples among every round's
acquisitions (``acquired_class_histogram``), ``aeig`` vs ``entropy`` and vs ``random`` (all with ``ce``),
paired by seed; asked only on multi-class data whose pool is imbalanced.

The minority classes are estimated from the random strategy's acquisitions (an unbiased sample of the
pool): classes below the uniform share 1/K; a pool whose largest estimated share is under twice the
smallest is not imbalanced enough to ask."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import numpy as np

from xalbench.report.base import Block, DatasetFacts, Finding, Pair
from xalbench.report.cells import Cell, RunCells
from xalbench.report.paired import INCONCLUSIVE, combine, judge

__all__ = ["AEIGMinorityShare"]

SHARE = "minority share"


def acquired(c: Cell) -> np.ndarray | None:
    """Per-class count of everything ``c`` acquired over its rounds (``None``: no histogram)."""
    hists = [np.asarray(r.get("acquired_class_histogram") or [], dtype=float) for r in c.rounds]
    hists = [h for h in hists if h.size]
    return np.sum(hists, axis=0) if hists else None


def minority_share(c: Cell, minority: np.ndarray) -> float:
    total = acquired(c)
    if total is None or total.sum() == 0:
        return float("nan")
    return float(total[minority].sum() / total.sum())


def round_shares(seeds: Mapping[int, Cell], minority: np.ndarray) -> list[float]:
    """Mean over seeds of each round's minority share (rounds with acquisitions)."""
    per_round: dict[int, list[float]] = {}
    for c in seeds.values():
        for r in c.rounds:
            h = np.asarray(r.get("acquired_class_histogram") or [], dtype=float)
            if h.size and h.sum() > 0:
                per_round.setdefault(int(r["round"]), []).append(float(h[minority].sum() / h.sum()))
    return [float(np.mean(v)) for _, v in sorted(per_round.items())]


class AEIGMinorityShare(Finding):
    """AEIG vs entropy and random on the minority-class share of the acquired samples."""

    name: ClassVar[str] = "aeig"
    title: ClassVar[str] = "AEIG Fig. 4: minority-class share of the acquired samples, AEIG vs entropy and random"
    summary: ClassVar[str] = "Does AEIG acquire more minority-class samples than entropy and random?"
    paper: ClassVar[str] = "AEIG (Fig. 4: share of minority classes among the acquired samples)"
    question: ClassVar[str] = ("On class-imbalanced data, does AEIG acquire a larger share of minority-class samples "
                               "than entropy and random sampling?")
    quantities: ClassVar[tuple[str, ...]] = (SHARE,)
    claim = "every"
    needs: ClassVar[str] = "no AEIG (strategy aeig) cells on a multi-class dataset"

    def applies_to(self, facts: DatasetFacts) -> str | None:
        if facts.task == "multi-label":
            return "multi-label: AEIG's question is about multi-class imbalance"
        shares = facts.class_shares
        if shares and max(shares) < 2 * min(shares):
            return f"balanced pool (class shares {', '.join(f'{s:.2f}' for s in shares)})"
        return None

    def _method(self, run: RunCells, ds: str, strategy: str) -> str | None:
        names = sorted({c.method for c in run.where([ds], strategy=strategy, loss="ce")
                        if c.plain and not c.strategy_options})
        return names[0] if names else None

    def pairs(self, run: RunCells) -> list[Pair]:
        out = []
        for ds in sorted({c.dataset for c in run.where(run.asked(self), strategy="aeig")}):
            a, rnd = self._method(run, ds, "aeig"), self._method(run, ds, "random")
            if a is not None and rnd is not None:
                out += [Pair(ds, a, b) for b in (self._method(run, ds, "entropy"), rnd) if b is not None]
        return out

    def minority(self, run: RunCells, ds: str) -> tuple[np.ndarray, np.ndarray] | None:
        """(estimated pool shares, minority classes) from the random strategy's acquisitions."""
        rnd = self._method(run, ds, "random")
        hists = [h for c in run.seeds(ds, rnd).values() if (h := acquired(c)) is not None] if rnd else []
        pool = np.sum(hists, axis=0) if hists else None
        if pool is None or np.ndim(pool) == 0 or pool.sum() == 0:
            return None
        share = pool / pool.sum()
        return share, np.flatnonzero(share < 1.0 / share.size)

    def values(self, run: RunCells, dataset: str, method: str, quantity: str) -> dict[int, float]:
        if quantity != SHARE:
            return super().values(run, dataset, method, quantity)
        est = self.minority(run, dataset)
        if est is None:
            return {}
        return {s: minority_share(c, est[1]) for s, c in run.seeds(dataset, method).items()}

    def answer(self, run: RunCells) -> Block:
        datasets = sorted({c.dataset for c in run.where(run.asked(self), strategy="aeig")})
        if not datasets:
            return self.missing(run)
        by_ds: dict[str, list[Pair]] = {}
        for p in self.pairs(run):
            by_ds.setdefault(p.dataset, []).append(p)
        tested: list[Pair] = []
        status: dict[str, str] = {}
        lacking = []
        for ds in datasets:
            est = self.minority(run, ds) if ds in by_ds else None
            if ds not in by_ds:
                lacking.append(f"{ds} (needs aeig+ce and random+ce)")
            elif est is None:
                lacking.append(f"{ds} (random acquired nothing)")
            elif est[1].size == 0 or est[0].max() < 2 * est[0].min():
                status[ds] = f"{ds}: pool not imbalanced (estimated shares {np.round(est[0], 2).tolist()}), not tested"
            else:
                tested += by_ds[ds]
        comps = judge([self.compare(run, p) for p in tested], run.delta)
        parts = []
        for ds in datasets:
            ds_comps = [c for c in comps if c.dataset == ds]
            if not ds_comps:
                parts += [status[ds]] if ds in status else []
                continue
            share, minority = self.minority(run, ds)  # type: ignore[misc]
            methods = [ds_comps[0].a] + [c.b for c in ds_comps]
            curve = "; ".join(f"{m}: " + ", ".join(f"{v:.2f}" for v in round_shares(run.seeds(ds, m), minority))
                              for m in methods)
            parts.append(f"{ds} (minority classes {minority.tolist()}, {100 * share[minority].sum():.0f} % of the "
                         f"pool): " + "; ".join(c.describe() for c in ds_comps) + f"; per round — {curve}")
        if lacking:
            parts.append("not tested: " + ", ".join(lacking))
        verdict = combine([c.verdict for c in comps], self.claim) if comps else INCONCLUSIVE
        return self.block(run, verdict, " | ".join(parts) + ".", comps)
