"""Findings blocks on fabricated results directories whose answers are known."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from scipy import stats

from xalbench.cli import main
from xalbench.report.findings import combine, compare, findings, minimum_detectable, power_notes
from xalbench.results import SCHEMA_VERSION, atomic_write_json, seal

NOISE = [0.011, -0.007, 0.004, -0.009, 0.006]  # per-seed noise shared by a dataset's methods (paired)
JITTER = [0.002, -0.001, 0.0015, -0.002, 0.001]  # per-seed noise of one method's difference


def cell(dataset: str, method: str, strategy: str, loss: str, seed: int, summary: dict[str, float], *,
         strategy_options: dict[str, Any] | None = None, trainer: str = "standard", mask_source: str = "none",
         histograms: list[list[int]] | None = None, multilabel: bool = False) -> dict[str, Any]:
    metrics = {"accuracy": summary.get("aulc_acc", 0.5), **({"lrap": 0.5} if multilabel else {})}
    rounds = [{"round": r, "n_labelled": 10 * (r + 1), "metrics": metrics, "queried": [],
               "acquired_class_histogram": h, "timings": {}} for r, h in enumerate(histograms or [[]])]
    return {"schema": SCHEMA_VERSION, "status": "ok", "rounds": rounds, "provenance": {"synthetic": True},
            "summary": summary,
            "cell": {"dataset": dataset, "method": method, "strategy": strategy, "loss": loss, "seed": seed,
                     "strategy_options": strategy_options or {}, "loss_options": {}, "trainer": trainer,
                     "mask_source": mask_source, "key": f"{dataset}__{method}__seed{seed}"}}


class Run:
    """A fabricated results directory."""

    def __init__(self, root: Path, seeds: int = 5) -> None:
        self.root, self.seeds = root, seeds

    def add(self, dataset: str, method: str, strategy: str, loss: str, values: dict[str, float],
            shift: dict[str, float] | None = None, **kw: Any) -> None:
        """``values`` + per-seed noise (shared by the dataset) + ``shift`` + a method's own jitter."""
        for s in range(self.seeds):
            summary = {k: v + NOISE[s] + (shift or {}).get(k, 0.0) + (JITTER[s] if shift else 0.0)
                       for k, v in values.items()}
            path = self.root / "cells" / f"{dataset}__{method}__seed{s}.json"
            atomic_write_json(path, seal(cell(dataset, method, strategy, loss, s, summary, **kw)))

    def blocks(self) -> dict[str, dict[str, Any]]:
        from xalbench.report.model import load_results

        return {b["key"]: b for b in findings(load_results(self.root))}


BASE = {"aulc_acc": 0.70, "aulc_dice": 0.30, "aulc_iou": 0.20, "aulc_auc": 0.80, "aulc_del_auc": 0.30}


# ----------------------------------------------------------------------------- statistics
def test_compare_is_a_paired_t_test_with_its_interval() -> None:
    a = {0: 0.60, 1: 0.55, 2: 0.70, 3: 0.64}
    b = {0: 0.50, 1: 0.50, 2: 0.61, 3: 0.60, 4: 0.9}  # seed 4 has no pair
    c = compare("d", "a", "b", a, b, "AULC_acc")
    diffs = [0.10, 0.05, 0.09, 0.04]
    assert c.n == 4 and c.mean == pytest.approx(sum(diffs) / 4)
    assert c.p == pytest.approx(stats.ttest_rel([a[s] for s in range(4)], [b[s] for s in range(4)]).pvalue)
    half = stats.t.ppf(0.975, 3) * stats.tstd(diffs) / 2
    assert (c.low, c.high) == pytest.approx((c.mean - half, c.mean + half))
    assert c.verdict == "reproduced"
    assert compare("d", "b", "a", b, a, "AULC_acc").verdict == "not reproduced"
    assert compare("d", "a", "b", a, b, "deletion", direction="min").verdict == "not reproduced"
    two = compare("d", "a", "b", {0: 0.9, 1: 0.9}, {0: 0.1, 1: 0.2}, "AULC_acc")
    assert math.isnan(two.p) and two.verdict == "inconclusive"  # a p-value needs 3 seeds
    assert two.as_dict()["p"] is None and json.dumps(two.as_dict(), allow_nan=False)


def test_combine() -> None:
    assert combine(["reproduced", "inconclusive"]) == "reproduced"
    assert combine(["not reproduced", "inconclusive"]) == "not reproduced"
    assert combine(["reproduced", "not reproduced"]) == "inconclusive"
    assert combine([]) == "inconclusive"


def test_minimum_detectable_difference() -> None:
    assert minimum_detectable(0.02, 5) == pytest.approx((stats.t.ppf(0.975, 4) + stats.t.ppf(0.8, 4)) * 0.02 / 5 ** 0.5)
    assert minimum_detectable(0.02, 3) > minimum_detectable(0.02, 5)
    assert math.isnan(minimum_detectable(0.02, 1))


# ----------------------------------------------------------------------------- SAL RQ1
@pytest.mark.parametrize("dice, acc, deletion, verdict", [
    (+0.10, 0.0, 0.0, "reproduced"),
    (-0.10, 0.0, 0.0, "not reproduced"),
    (+0.10, -0.10, 0.0, "not reproduced"),  # Dice up at a significant accuracy cost
    (+0.0, 0.0, 0.0, "inconclusive"),
])
def test_sal_rq1(tmp_path: Path, dice: float, acc: float, deletion: float, verdict: str) -> None:
    run = Run(tmp_path)
    run.add("d", "random+ce", "random", "ce", BASE)
    run.add("d", "random+dice", "random", "dice", BASE, {"aulc_dice": dice, "aulc_acc": acc})
    block = run.blocks()["sal-rq1"]
    assert block["verdict"] == verdict
    assert "random+dice vs random+ce: ΔAULC_dice" in block["text"]


def test_sal_rq1_reports_lost_faithfulness_and_needs_seeds(tmp_path: Path) -> None:
    run = Run(tmp_path / "a")
    run.add("d", "random+ce", "random", "ce", BASE)
    run.add("d", "random+dice", "random", "dice", BASE, {"aulc_dice": 0.1, "aulc_del_auc": 0.1})  # deletion AUC up: worse
    block = run.blocks()["sal-rq1"]
    assert block["verdict"] == "reproduced" and "lowered significantly by random+dice" in block["text"]
    assert "aulc_del_auc (deletion)" in block["text"]
    two = Run(tmp_path / "b", seeds=2)
    two.add("d", "random+ce", "random", "ce", BASE)
    two.add("d", "random+dice", "random", "dice", BASE, {"aulc_dice": 0.1})
    assert two.blocks()["sal-rq1"]["verdict"] == "inconclusive"


# ----------------------------------------------------------------------------- EG-AL
@pytest.mark.parametrize("delta, verdict", [(0.08, "reproduced"), (-0.08, "not reproduced"), (0.0, "inconclusive")])
def test_egal_vs_random(tmp_path: Path, delta: float, verdict: str) -> None:
    run = Run(tmp_path)
    run.add("d", "random+dice", "random", "dice", BASE)
    run.add("d", "egal+dice", "egal", "dice", BASE, {"aulc_acc": delta})
    run.add("d", "random+ce", "random", "ce", BASE)
    block = run.blocks()["egal"]
    assert block["verdict"] == verdict and "egal+dice vs random+dice" in block["text"]
    assert "λ trend" not in block["text"]


@pytest.mark.parametrize("shape, verdict", [((0.0, 0.06, 0.02), "reproduced"), ((0.06, 0.03, 0.0), "not reproduced")])
def test_egal_lambda_trend(tmp_path: Path, shape: tuple[float, ...], verdict: str) -> None:
    run = Run(tmp_path)
    run.add("d", "random+dice", "random", "dice", BASE)
    for lam, d in zip((0.25, 0.5, 0.75), shape, strict=True):
        run.add("d", f"egal[lam={lam}]+dice", "egal", "dice", BASE, {"aulc_acc": 0.05 + d},
                strategy_options={"lam": lam})
    block = run.blocks()["egal"]
    assert "λ trend" in block["text"]
    assert block["verdict"] == ("reproduced" if verdict == "reproduced" else "inconclusive")  # EG-AL > random holds
    assert ("interior λ=0.5" in block["text"]) == (verdict == "reproduced")


# ----------------------------------------------------------------------------- AEIG
def _aeig_run(root: Path, aeig: list[int], seeds: int = 5) -> Run:
    run = Run(root, seeds)
    imbalanced = [[14, 4, 2], [13, 5, 2]]  # random's acquisitions: classes 1 and 2 are the minority
    run.add("imb", "random+ce", "random", "ce", BASE, histograms=imbalanced)
    run.add("imb", "entropy+ce", "entropy", "ce", BASE, {"aulc_acc": 0.0}, histograms=[[12, 5, 3], [12, 6, 2]])
    for s in range(seeds):  # AEIG's own per-seed histograms (so its share varies over seeds)
        hist = [[aeig[0] + (s % 2), aeig[1] - (s % 2), aeig[2]], list(aeig)]
        atomic_write_json(root / "cells" / f"imb__aeig+ce__seed{s}.json",
                          seal(cell("imb", "aeig+ce", "aeig", "ce", s, dict(BASE), histograms=hist)))
    return run


@pytest.mark.parametrize("aeig, verdict", [([8, 7, 5], "reproduced"), ([18, 1, 1], "not reproduced")])
def test_aeig_minority_share(tmp_path: Path, aeig: list[int], verdict: str) -> None:
    block = _aeig_run(tmp_path, aeig).blocks()["aeig"]
    assert block["verdict"] == verdict
    assert "minority classes [1, 2]" in block["text"] and "aeig+ce vs entropy+ce: Δminority share" in block["text"]


def test_aeig_needs_seeds_and_an_imbalanced_pool(tmp_path: Path) -> None:
    assert _aeig_run(tmp_path / "a", [8, 7, 5], seeds=2).blocks()["aeig"]["verdict"] == "inconclusive"
    run = Run(tmp_path / "b")
    run.add("bal", "random+ce", "random", "ce", BASE, histograms=[[7, 7, 6]])
    run.add("bal", "aeig+ce", "aeig", "ce", BASE, histograms=[[7, 7, 6]])
    block = run.blocks()["aeig"]
    assert block["verdict"] == "inconclusive" and "pool not imbalanced" in block["text"]


# ----------------------------------------------------------------------------- DUE, GESTALT
@pytest.mark.parametrize("delta, verdict", [(0.05, "reproduced"), (-0.05, "not reproduced"), (0.0, "inconclusive")])
def test_due_vs_baseline_plus(tmp_path: Path, delta: float, verdict: str) -> None:
    run = Run(tmp_path)
    run.add("vol", "random+due-baseline-plus", "random", "due-baseline-plus", BASE)
    run.add("vol", "random+due", "random", "due", BASE, {"aulc_iou": delta})
    block = run.blocks()["due"]
    assert block["verdict"] == verdict and "ΔAULC_IoU" in block["text"]


@pytest.mark.parametrize("deltas, verdict", [((0.03, 0.02, 0.04), "reproduced"), ((-0.03, -0.02, -0.04), "not reproduced"),
                                             ((0.03, -0.03, 0.0), "inconclusive")])
def test_gestalt_vs_uncertainty(tmp_path: Path, deltas: tuple[float, ...], verdict: str) -> None:
    run = Run(tmp_path)
    run.add("cxr", "mcd-variance+ce", "mcd-variance", "ce", BASE, multilabel=True)
    for name, d in zip(("gestalt-node", "gestalt-edge", "gestalt-weighted-node"), deltas, strict=True):
        run.add("cxr", f"{name}+ce", name, "ce", BASE, {"aulc_auc": d}, multilabel=True)
    run.add("lesion", "gestalt-node+ce", "gestalt-node", "ce", BASE)  # multi-class: not GESTALT's question
    block = run.blocks()["gestalt"]
    assert block["verdict"] == verdict and "lesion" not in block["text"]
    assert len(block["comparisons"]) == 3


# ----------------------------------------------------------------------------- missing, CLI, power
def test_missing_methods_are_said_never_numbers(tmp_path: Path) -> None:
    run = Run(tmp_path)
    run.add("d", "random+ce", "random", "ce", BASE)
    run.add("d", "entropy+ce", "entropy", "ce", BASE, {"aulc_acc": 0.01})
    for block in run.blocks().values():
        assert block["verdict"] == "inconclusive" and block["text"].startswith("Not tested in this run")
        assert not any(ch.isdigit() for ch in block["text"].split(":", 1)[1].replace("ce)", ""))
        assert block["comparisons"] == []


def test_cli_findings_in_md_json_and_html(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = Run(tmp_path)
    run.add("d", "random+ce", "random", "ce", BASE)
    run.add("d", "random+dice", "random", "dice", BASE, {"aulc_dice": 0.1})
    assert main(["report", str(tmp_path), "--findings"]) == 0
    md = capsys.readouterr().out
    assert "### SAL RQ1" in md and "**reproduced**" in md and "### GESTALT Table I" in md
    from xalbench.report.model import build_report

    assert build_report(tmp_path).findings == []  # only on request (or in html)
    assert main(["report", str(tmp_path), "--findings", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [b["verdict"] for b in data["findings"]][0] == "reproduced"
    assert any(n.startswith("power (d)") for n in data["notes"])
    assert main(["report", str(tmp_path), "--format", "html"]) == 0
    assert "<h2>Findings</h2>" in capsys.readouterr().out


def test_power_notes_from_the_runs_own_spread(tmp_path: Path) -> None:
    from xalbench.report.model import load_results

    run = Run(tmp_path, seeds=3)
    run.add("d", "random+ce", "random", "ce", BASE)
    run.add("d", "entropy+ce", "entropy", "ce", BASE, {"aulc_acc": 0.02})
    (note,) = power_notes(load_results(tmp_path))
    sd = stats.tstd(JITTER[:3])
    assert f"{sd:.3f}" in note and f"with this run's 3 seeds: {minimum_detectable(sd, 3):.3f}" in note
    assert f"with 5 seeds: {minimum_detectable(sd, 5):.3f}" in note
