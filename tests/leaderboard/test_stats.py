"""Board statistics: the same paired test as the report (t-test vs random+ce, Holm per dataset, ≥ 3 seeds)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from scipy import stats

from xalbench.leaderboard import CANARY_METHOD


def _submission(aulcs: dict[str, list[float]], sha: str = "a" * 64) -> SimpleNamespace:
    cells = [SimpleNamespace(dataset="d", method=m, seed=s, aulc={"acc": v}, pool_masks_visible=False)
             for m, values in aulcs.items() for s, v in enumerate(values)]
    manifest = {"suite": {"name": "s"}, "submitter": "lab", "plugin": {"name": "p", "version": "1.0"}}
    return SimpleNamespace(manifest=manifest, manifest_sha256=sha, cells=cells, skipped=[],
                           own_methods=sorted(aulcs))


def test_paired_t_test_holm_corrected_over_the_dataset() -> None:
    from xalbench.leaderboard.build import _p_text
    from xalbench.leaderboard.stats import board_rows

    canary, a, b = [0.50, 0.55, 0.62], [0.60, 0.70, 0.80], [0.52, 0.58, 0.61]
    rows = {r.method: r for r in board_rows([_submission({CANARY_METHOD: canary, "a+ce": a, "b+ce": b})], {}, ["acc"])}
    raw = {"a+ce": stats.ttest_rel(a, canary).pvalue, "b+ce": stats.ttest_rel(b, canary).pvalue}
    low, high = sorted(raw, key=raw.get)
    assert rows[low].p["acc"] == pytest.approx(min(1.0, 2 * raw[low]))
    assert rows[high].p["acc"] == pytest.approx(max(min(1.0, 2 * raw[low]), raw[high]))
    assert rows[CANARY_METHOD].p["acc"] is None and _p_text(rows[CANARY_METHOD], "acc") == "—"
    assert _p_text(rows["a+ce"], "acc").startswith(f"{rows['a+ce'].p['acc']:.3g}")


def test_no_p_value_below_three_seeds() -> None:
    from xalbench.leaderboard.build import _p_text
    from xalbench.leaderboard.stats import board_rows

    rows = {r.method: r for r in board_rows([_submission({CANARY_METHOD: [0.5, 0.6], "a+ce": [0.7, 0.9]})], {},
                                            ["acc"])}
    assert rows["a+ce"].p["acc"] is None and _p_text(rows["a+ce"], "acc") == "n/a (2 seeds)"
