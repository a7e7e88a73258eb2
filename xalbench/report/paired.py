"""Paired statistics over seeds: comparisons, verdicts that can say no, Holm, power.

Every comparison is **paired by seed** (the harness gives every method of a (dataset, seed) the
same initial labelled set and weights): Δ = a − b per seed, its mean with the 95 % Student-t
interval [lo, hi] and the two-sided paired t-test, the interval and test oriented so that Δ > 0
is what the paper claims (a claim "lower is better" flips the sign).

**Verdict of one comparison** with a smallest effect of interest δ (``[findings] delta`` of the
suite, ``xalbench report --delta``; default :data:`DEFAULT_DELTA`):

* *reproduced* — lo > 0 (the effect the paper claims, p < 0.05);
* *contradicted* — hi < 0 (a significant effect against the claim);
* *not reproduced* — lo ≤ 0 and hi < δ (no effect as large as δ: an equivalence-style answer);
* *inconclusive* — otherwise, or fewer than :data:`MIN_SEEDS` paired seeds.

**Holm** across the m comparisons a block combines: the reproduced / contradicted decisions come
from the Holm-adjusted two-sided p-values (< 0.05), the not-reproduced decisions from the
Holm-adjusted equivalence p-values ``p_eq = 2·P(T ≥ (δ − Δ)/se)`` (< 0.05) — two families of m
tests each. With m = 1 both reduce exactly to the interval rules above (the t-interval excludes
0 iff p < 0.05; hi < δ iff p_eq < 0.05).

**A block's verdict** (:func:`combine`) from its Holm-judged comparisons, by the claim's
quantifier: ``"every"`` (the paper claims each compared method beats its reference) —
reproduced if all are reproduced, contradicted if any is contradicted, else not reproduced if
any is not reproduced, else inconclusive; ``"some"`` (the paper claims the approach can help) —
reproduced if any is reproduced, contradicted if all are contradicted, else not reproduced if
none is inconclusive, else inconclusive. No comparison: inconclusive.

**Power**: :func:`minimum_detectable` (the smallest true Δ a paired t-test over n seeds detects
with 80 % power) and :func:`seeds_to_decide` (how many seeds would turn an inconclusive
comparison into a decided one).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
from scipy import stats

from xalbench.suite import FindingsSpec

__all__ = [
    "ALPHA", "CONTRADICTED", "DEFAULT_DELTA", "Claim", "INCONCLUSIVE", "MIN_SEEDS", "NOT_REPRODUCED", "REPRODUCED", "VERDICTS",
    "Comparison", "combine", "compare", "holm", "judge", "minimum_detectable", "seeds_to_decide", "tally",
]

MIN_SEEDS = 3  #: a p-value (and so a decided verdict) needs this many paired seeds
ALPHA = 0.05
DEFAULT_DELTA = FindingsSpec().delta
REPRODUCED, CONTRADICTED, NOT_REPRODUCED, INCONCLUSIVE = "reproduced", "contradicted", "not reproduced", "inconclusive"
VERDICTS = (REPRODUCED, CONTRADICTED, NOT_REPRODUCED, INCONCLUSIVE)
Claim = Literal["every", "some"]


def _nan_none(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value


@dataclasses.dataclass(frozen=True)
class Comparison:
    """A paired comparison "a beats b" on one quantity; ``direction`` is the claim's ("max": the paper
    claims a's value is higher, "min": lower). ``low``/``high`` is the 95 % interval of Δ = a − b as
    measured (not oriented); ``sd`` the between-seed SD of the paired differences."""

    dataset: str
    a: str
    b: str
    quantity: str
    n: int
    mean: float
    low: float
    high: float
    p: float
    direction: str = "max"
    sd: float = float("nan")
    delta: float = DEFAULT_DELTA
    p_equiv: float = float("nan")
    p_holm: float = float("nan")
    p_equiv_holm: float = float("nan")
    family: int = 1  #: how many comparisons the Holm adjustment ran over

    @property
    def sign(self) -> float:
        return 1.0 if self.direction == "max" else -1.0

    @property
    def oriented(self) -> tuple[float, float, float]:
        """(Δ, lo, hi) with the claimed direction positive."""
        lo, hi = sorted((self.sign * self.low, self.sign * self.high))
        return self.sign * self.mean, lo, hi

    @property
    def verdict(self) -> str:
        """From the Holm-adjusted p-values (module docstring)."""
        if self.n < MIN_SEEDS or math.isnan(self.p_holm):
            return INCONCLUSIVE
        d = self.sign * self.mean
        if self.p_holm < ALPHA and d > 0:
            return REPRODUCED
        if self.p_holm < ALPHA and d < 0:
            return CONTRADICTED
        if not math.isnan(self.p_equiv_holm) and self.p_equiv_holm < ALPHA:
            return NOT_REPRODUCED
        return INCONCLUSIVE

    def describe(self) -> str:
        if self.n == 0:
            return f"{self.a} vs {self.b}: no paired seeds"
        ci = "" if math.isnan(self.low) else f" [{self.low:+.3f}, {self.high:+.3f}]"
        if math.isnan(self.p):
            p = f", no test ({self.n} seed{'s' * (self.n != 1)})"
        else:
            p = f", p = {self.p:.3g}" + (f" (Holm over {self.family}: {self.p_holm:.3g})" if self.family > 1 else "")
        return f"{self.a} vs {self.b}: Δ{self.quantity} {self.mean:+.3f}{ci}{p}"

    def decide_note(self) -> str:
        """For an inconclusive comparison: how many seeds would decide it (:func:`seeds_to_decide`)."""
        if self.verdict != INCONCLUSIVE or math.isnan(self.sd):
            return ""
        n, why = seeds_to_decide(self.sd, self.mean, self.delta)
        return f"{n} seeds would decide it ({why})" if n else why

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe (NaN → ``None``)."""
        out = {k: _nan_none(v) for k, v in dataclasses.asdict(self).items()}
        seeds, why = seeds_to_decide(self.sd, self.mean, self.delta) if self.verdict == INCONCLUSIVE else (None, "")
        return {**out, "verdict": self.verdict, "seeds_to_decide": seeds, "decide_by": why or None}


def _equivalence_p(mean: float, sd: float, n: int, delta: float) -> float:
    """``2·P(T_{n−1} ≥ (δ − Δ)/se)``, capped at 1: below 0.05 iff the 95 % interval's upper end is below δ."""
    if n < 2 or math.isnan(sd):
        return float("nan")
    if sd == 0:
        return 0.0 if mean < delta else 1.0
    t = (delta - mean) / (sd / math.sqrt(n))
    return float(min(1.0, 2 * stats.t.sf(t, n - 1)))


def compare(dataset: str, a: str, b: str, av: Mapping[int, float], bv: Mapping[int, float], quantity: str,
            direction: str = "max", delta: float = DEFAULT_DELTA) -> Comparison:
    """Paired by seed: mean Δ = a − b with its 95 % t interval, the paired t-test (≥ :data:`MIN_SEEDS`
    pairs) and the equivalence test against δ; judged alone (a family of one, see :func:`holm`)."""
    seeds = sorted(s for s in set(av) & set(bv) if not (math.isnan(av[s]) or math.isnan(bv[s])))
    d = np.asarray([av[s] - bv[s] for s in seeds], dtype=float)
    n = int(d.size)
    nan = float("nan")
    if n == 0:
        return Comparison(dataset, a, b, quantity, 0, nan, nan, nan, nan, direction, delta=delta)
    mean = float(d.mean())
    if n < 2:
        return Comparison(dataset, a, b, quantity, n, mean, nan, nan, nan, direction, delta=delta)
    sd = float(d.std(ddof=1))
    half = float(stats.t.ppf(1 - ALPHA / 2, n - 1) * sd / math.sqrt(n))
    if n < MIN_SEEDS:
        p = p_eq = nan
    else:
        p = (1.0 if mean == 0 else 0.0) if sd == 0 else float(stats.ttest_1samp(d, 0.0).pvalue)
        p_eq = _equivalence_p(direction_sign(direction) * mean, sd, n, delta)
    return Comparison(dataset, a, b, quantity, n, mean, mean - half, mean + half, p, direction, sd, delta, p_eq,
                      p, p_eq)


def direction_sign(direction: str) -> float:
    return 1.0 if direction == "max" else -1.0


def _holm_adjust(ps: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (NaN stays NaN and is not counted in the family)."""
    idx = [i for i, p in enumerate(ps) if not math.isnan(p)]
    m = len(idx)
    out = [float("nan")] * len(ps)
    running = 0.0
    for rank, i in enumerate(sorted(idx, key=lambda i: ps[i])):
        running = max(running, min(1.0, (m - rank) * ps[i]))
        out[i] = running
    return out


def holm(comps: Sequence[Comparison]) -> list[Comparison]:
    """The comparisons judged as one family: Holm over their significance p-values and, separately,
    over their equivalence p-values (module docstring)."""
    p_adj = _holm_adjust([c.p for c in comps])
    e_adj = _holm_adjust([c.p_equiv for c in comps])
    m = sum(1 for c in comps if not math.isnan(c.p))
    return [dataclasses.replace(c, p_holm=p, p_equiv_holm=e, family=max(m, 1))
            for c, p, e in zip(comps, p_adj, e_adj, strict=True)]


def judge(comps: Sequence[Comparison], delta: float) -> list[Comparison]:
    """Re-judge ``comps`` at margin ``delta`` as one Holm family."""
    out = []
    for c in comps:
        p_eq = float("nan") if math.isnan(c.p) else _equivalence_p(c.sign * c.mean, c.sd, c.n, delta)
        out.append(dataclasses.replace(c, delta=delta, p_equiv=p_eq))
    return holm(out)


def combine(verdicts: Sequence[str], claim: Claim = "every") -> str:
    """A block's verdict from its comparisons' (module docstring)."""
    if not verdicts:
        return INCONCLUSIVE
    has = {v: v in verdicts for v in VERDICTS}
    if claim == "every":
        if all(v == REPRODUCED for v in verdicts):
            return REPRODUCED
        if has[CONTRADICTED]:
            return CONTRADICTED
        return NOT_REPRODUCED if has[NOT_REPRODUCED] else INCONCLUSIVE
    if claim != "some":
        raise ValueError(f"claim must be 'every' or 'some', not {claim!r}")
    if has[REPRODUCED]:
        return REPRODUCED
    if all(v == CONTRADICTED for v in verdicts):
        return CONTRADICTED
    return INCONCLUSIVE if has[INCONCLUSIVE] else NOT_REPRODUCED


def tally(verdicts: Sequence[str]) -> str:
    """``"2 reproduced, 1 inconclusive"``."""
    return ", ".join(f"{sum(1 for v in verdicts if v == k)} {k}" for k in VERDICTS if k in verdicts)


def minimum_detectable(sd_diff: float, n: int, alpha: float = ALPHA, power: float = 0.8) -> float:
    """The smallest true mean paired difference a two-sided paired t-test over ``n`` seeds detects with
    ``power`` at level ``alpha``: ``(t_{1−α/2, n−1} + t_{power, n−1}) · sd_diff / √n`` (normal
    approximation of the noncentral t); ``nan`` below 2 seeds."""
    if n < 2 or math.isnan(sd_diff):
        return float("nan")
    return float((stats.t.ppf(1 - alpha / 2, n - 1) + stats.t.ppf(power, n - 1)) * sd_diff / math.sqrt(n))


def half_width(sd_diff: float, n: int, alpha: float = ALPHA) -> float:
    """Half-width of the (1 − α) t-interval of a mean paired difference over ``n`` seeds."""
    return float(stats.t.ppf(1 - alpha / 2, n - 1) * sd_diff / math.sqrt(n)) if n >= 2 else float("inf")


def seeds_to_decide(sd_diff: float, mean: float, delta: float, limit: int = 1000) -> tuple[int | None, str]:
    """(n, why): the smallest seed count (≥ :data:`MIN_SEEDS`) at which the 95 % interval's half-width,
    with the observed SD, falls below δ/2 — then the interval is narrower than δ and *must* decide
    (lo > 0, hi < 0 or hi < δ) whatever Δ turns out — or below |Δ| — then it excludes 0 if Δ stays as
    observed; the smaller of the two, and which. ``(None, reason)`` when no count up to ``limit`` does."""
    if math.isnan(sd_diff):
        return None, "the between-seed SD is unknown (needs ≥ 2 paired seeds)"
    targets = [(delta / 2, f"interval half-width < δ/2 = {delta / 2:.3g}: decides whatever Δ")]
    if not math.isnan(mean) and mean != 0:
        targets.append((abs(mean), f"half-width < |Δ| = {abs(mean):.3g}: excludes 0 if Δ stays"))
    best: tuple[int, str] | None = None
    for target, why in targets:
        if target <= 0:
            continue
        n = next((k for k in range(MIN_SEEDS, limit + 1) if half_width(sd_diff, k) < target), None)
        if n is not None and (best is None or n < best[0]):
            best = (n, why)
    if best is None:
        return None, f"more than {limit} seeds (between-seed SD {sd_diff:.3g} against δ {delta:.3g})"
    return best
