"""The paired statistics behind every finding: intervals, the four verdicts, the equivalence margin δ,
Holm within a block, how a block combines its comparisons, and the power helpers."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
from scipy import stats

from xalbench.report.paired import (
    Comparison,
    combine,
    compare,
    holm,
    judge,
    minimum_detectable,
    seeds_to_decide,
)

Z = np.array([-2.0, -1.0, 0.0, 1.0, 2.0]) / np.std([-2.0, -1.0, 0.0, 1.0, 2.0], ddof=1)  # mean 0, SD 1
T4 = stats.t.ppf(0.975, 4)


def with_interval(lo: float, hi: float) -> tuple[dict[int, float], dict[int, float]]:
    """Five paired seeds whose Δ has exactly the 95 % interval [lo, hi]."""
    mean, half = (lo + hi) / 2, (hi - lo) / 2
    d = mean + Z * half * math.sqrt(5) / T4
    b = {s: 0.5 + 0.01 * s for s in range(5)}
    return {s: b[s] + d[s] for s in range(5)}, b


def verdict(lo: float, hi: float, delta: float = 0.02, direction: str = "max") -> str:
    a, b = with_interval(lo, hi)
    c = compare("d", "a", "b", a, b, "q", direction, delta)
    assert (c.low, c.high) == pytest.approx((lo, hi))
    return c.verdict


def test_compare_is_a_paired_t_test_with_its_interval() -> None:
    a = {0: 0.60, 1: 0.55, 2: 0.70, 3: 0.64}
    b = {0: 0.50, 1: 0.50, 2: 0.61, 3: 0.60, 4: 0.9}  # seed 4 has no pair
    c = compare("d", "a", "b", a, b, "AULC_acc")
    diffs = [0.10, 0.05, 0.09, 0.04]
    assert c.n == 4 and c.mean == pytest.approx(sum(diffs) / 4) and c.sd == pytest.approx(stats.tstd(diffs))
    assert c.p == pytest.approx(stats.ttest_rel([a[s] for s in range(4)], [b[s] for s in range(4)]).pvalue)
    half = stats.t.ppf(0.975, 3) * stats.tstd(diffs) / 2
    assert (c.low, c.high) == pytest.approx((c.mean - half, c.mean + half))
    assert c.verdict == "reproduced"
    assert compare("d", "b", "a", b, a, "AULC_acc").verdict == "contradicted"
    assert compare("d", "a", "b", a, b, "deletion", direction="min").verdict == "contradicted"
    two = compare("d", "a", "b", {0: 0.9, 1: 0.9}, {0: 0.1, 1: 0.2}, "AULC_acc")
    assert math.isnan(two.p) and two.verdict == "inconclusive"  # a p-value needs 3 seeds
    assert two.as_dict()["p"] is None and json.dumps(two.as_dict(), allow_nan=False)


@pytest.mark.parametrize("lo, hi, expected", [
    (0.01, 0.05, "reproduced"),  # lo > 0
    (-0.05, -0.01, "contradicted"),  # hi < 0
    (-0.01, 0.015, "not reproduced"),  # lo ≤ 0 and hi < δ
    (-0.01, 0.03, "inconclusive"),  # lo ≤ 0 and hi ≥ δ
])
def test_the_four_verdicts(lo: float, hi: float, expected: str) -> None:
    assert verdict(lo, hi) == expected


def test_a_claim_of_lower_flips_the_interval() -> None:
    assert verdict(-0.05, -0.01, direction="min") == "reproduced"
    assert verdict(0.01, 0.05, direction="min") == "contradicted"
    assert verdict(-0.015, 0.01, direction="min") == "not reproduced"  # oriented: [−0.01, +0.015]


def test_the_margin_changes_a_verdict_only_where_it_should() -> None:
    assert verdict(-0.01, 0.015, delta=0.02) == "not reproduced"
    assert verdict(-0.01, 0.015, delta=0.01) == "inconclusive"
    for delta in (0.0, 0.01, 0.02, 0.05):  # decided by the sign of the interval: δ plays no part
        assert verdict(0.01, 0.05, delta) == "reproduced"
        assert verdict(-0.05, -0.01, delta) == "contradicted"
    assert {verdict(-0.05, 0.06, delta) for delta in (0.0, 0.01, 0.02, 0.05)} == {"inconclusive"}
    a, b = with_interval(-0.01, 0.015)
    c = compare("d", "a", "b", a, b, "q", delta=0.02)
    assert [x.verdict for x in judge([c], 0.01)] == ["inconclusive"]  # re-judged at another δ


def _comp(p: float, mean: float = 0.05, p_equiv: float = 1.0) -> Comparison:
    return Comparison("d", "a", "b", "q", 5, mean, mean - 0.01, mean + 0.01, p, sd=0.01, p_equiv=p_equiv,
                      p_holm=p, p_equiv_holm=p_equiv)


def test_holm_adjusts_within_the_block() -> None:
    """p = 0.01, 0.03, 0.04: alone each is significant; Holm (×3, ×2, ×1, step-down) keeps only the first.
    p = 0.01, 0.02, 0.04: adjusted 0.03, 0.04, 0.04 — all stay significant."""
    judged = holm([_comp(0.01), _comp(0.03), _comp(0.04)])
    assert [c.p_holm for c in judged] == pytest.approx([0.03, 0.06, 0.06])
    assert [c.verdict for c in judged] == ["reproduced", "inconclusive", "inconclusive"]
    assert [c.verdict for c in [_comp(0.01), _comp(0.03), _comp(0.04)]] == ["reproduced"] * 3
    assert [c.p_holm for c in holm([_comp(0.04), _comp(0.01), _comp(0.02)])] == pytest.approx([0.04, 0.03, 0.04])
    assert {c.family for c in judged} == {3}
    # the equivalence tests are a family of their own: 0.02 and 0.03 alone say "not reproduced", Holm keeps one
    eq = holm([_comp(0.5, 0.0, 0.02), _comp(0.5, 0.0, 0.03)])
    assert [c.p_equiv_holm for c in eq] == pytest.approx([0.04, 0.04])
    assert [c.verdict for c in eq] == ["not reproduced", "not reproduced"]
    eq = holm([_comp(0.5, 0.0, 0.03), _comp(0.5, 0.0, 0.04)])
    assert [c.verdict for c in eq] == ["inconclusive", "inconclusive"]


def test_with_one_comparison_holm_is_the_interval_rule() -> None:
    for lo, hi in ((0.001, 0.03), (-0.03, -0.001), (-0.001, 0.019), (-0.001, 0.021)):
        a, b = with_interval(lo, hi)
        c = compare("d", "a", "b", a, b, "q")
        assert holm([c])[0].verdict == c.verdict == verdict(lo, hi)


@pytest.mark.parametrize("verdicts, every, some", [
    (["reproduced", "reproduced"], "reproduced", "reproduced"),
    (["reproduced", "inconclusive"], "inconclusive", "reproduced"),
    (["reproduced", "not reproduced"], "not reproduced", "reproduced"),
    (["reproduced", "contradicted"], "contradicted", "reproduced"),
    (["not reproduced", "inconclusive"], "not reproduced", "inconclusive"),
    (["not reproduced", "contradicted"], "contradicted", "not reproduced"),
    (["contradicted", "contradicted"], "contradicted", "contradicted"),
    (["inconclusive", "inconclusive"], "inconclusive", "inconclusive"),
    ([], "inconclusive", "inconclusive"),
])
def test_how_a_block_combines(verdicts: list[str], every: str, some: str) -> None:
    assert combine(verdicts, "every") == every
    assert combine(verdicts, "some") == some
    with pytest.raises(ValueError, match="claim"):
        combine(verdicts or ["reproduced"], "most")  # type: ignore[arg-type]


def test_a_block_of_three_under_holm() -> None:
    """Three variants each beating the reference alone (p 0.01, 0.03, 0.04): a claim about every one of
    them is inconclusive once Holm adjusts, a claim that some does is reproduced."""
    judged = holm([_comp(0.01), _comp(0.03), _comp(0.04)])
    assert combine([c.verdict for c in judged], "every") == "inconclusive"
    assert combine([c.verdict for c in judged], "some") == "reproduced"


def test_minimum_detectable_difference() -> None:
    assert minimum_detectable(0.02, 5) == pytest.approx((stats.t.ppf(0.975, 4) + stats.t.ppf(0.8, 4)) * 0.02 / 5 ** 0.5)
    assert minimum_detectable(0.02, 3) > minimum_detectable(0.02, 5)
    assert math.isnan(minimum_detectable(0.02, 1))


def test_seeds_to_decide() -> None:
    """SD 0.02, δ 0.02: half-width t·0.02/√n < 0.01 first at n = 18 (t_0.975,16 · 0.02/√17 = 0.01028,
    t_0.975,17 · 0.02/√18 = 0.00995); with Δ = 0.03 the interval excludes 0 once t·0.02/√n < 0.03: n = 5
    (t_0.975,3 · 0.02/2 = 0.0318, t_0.975,4 · 0.02/√5 = 0.0248)."""
    n, why = seeds_to_decide(0.02, 0.0, 0.02)
    assert n == 18 and "δ/2" in why
    n, why = seeds_to_decide(0.02, 0.03, 0.02)
    assert n == 5 and "|Δ|" in why
    assert seeds_to_decide(float("nan"), 0.0, 0.02)[0] is None
    assert seeds_to_decide(1.0, 0.0, 0.02, limit=50)[0] is None
    c = dataclasses.replace(compare("d", "a", "b", *with_interval(-0.01, 0.03), "q"))
    assert c.verdict == "inconclusive" and c.as_dict()["seeds_to_decide"] == seeds_to_decide(c.sd, c.mean, 0.02)[0]
