"""Findings blocks on fabricated results directories whose answers are known: the core's generic question
(explanation supervision vs ce), the hook that gathers every paper's question, where a question is
asked, the report's header and the CLI. The papers' own questions are tested in their plugins."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
from scipy import stats

from xalbench.cli import main
from xalbench.report.cells import Cell, RunCells
from xalbench.report.findings import registered_findings
from xalbench.report.paired import minimum_detectable
from xalbench.report.power import power_notes
from xalbench.results import atomic_write_json
from xalbench.testing.findings import BASE, JITTER, FabricatedRun, result

FINDINGS_PY = Path(__file__).resolve().parents[2] / "xalbench" / "report" / "findings.py"


# ----------------------------------------------------------------------------- the hook
def test_every_paper_registers_its_question_and_the_core_names_none() -> None:
    from xalbench.plugins import PluginSelection

    registry = PluginSelection.from_env().registry()
    owners = {rec.name: rec.distribution for rec in registry if rec.kind == "finding"}
    assert owners["sal-rq1"] == "xalbench"
    assert {owners[k] for k in ("egal", "aeig", "due", "gestalt")} == {
        "xalbench-egal", "xalbench-infogain", "xalbench-due", "xalbench-gestalt"}
    assert [f.name for f in registered_findings(registry)][0] == "sal-rq1"  # the core's first
    text = FINDINGS_PY.read_text(encoding="utf-8")
    for name in ("gestalt", "mcd-", "due", "egal", "aeig", "aulc_", "dice", "accuracy"):
        assert name not in text.lower(), name


# ----------------------------------------------------------------------------- SAL RQ1 (core, generic)
@pytest.mark.parametrize("dice, acc, verdict", [
    (+0.10, 0.0, "reproduced"),
    (-0.10, 0.0, "contradicted"),
    (+0.10, -0.10, "contradicted"),  # Dice up at a significant accuracy cost: "at equal accuracy" fails
    (+0.0, 0.0, "not reproduced"),  # Δ within ±0.003 of 0: no effect as large as δ = 0.02
])
def test_sal_rq1(tmp_path: Path, dice: float, acc: float, verdict: str) -> None:
    run = FabricatedRun(tmp_path)
    run.add("d", "random+ce", "random", "ce", BASE)
    run.add("d", "random+dice", "random", "dice", BASE, {"aulc_dice": dice, "aulc_acc": acc})
    block = run.blocks()["sal-rq1"]
    assert block["verdict"] == verdict
    assert "random+dice vs random+ce: ΔAULC_dice" in block["text"]
    assert block["datasets"] == ["d"] and block["claim"] == "some"


def test_sal_rq1_reports_lost_faithfulness_and_needs_seeds(tmp_path: Path) -> None:
    run = FabricatedRun(tmp_path / "a")
    run.add("d", "random+ce", "random", "ce", BASE)
    run.add("d", "random+dice", "random", "dice", BASE, {"aulc_dice": 0.1, "aulc_del_auc": 0.1})  # deletion up: worse
    block = run.blocks()["sal-rq1"]
    assert block["verdict"] == "reproduced" and "lowered significantly by random+dice" in block["text"]
    assert "aulc_del_auc (deletion)" in block["text"]
    two = FabricatedRun(tmp_path / "b", seeds=2)
    two.add("d", "random+ce", "random", "ce", BASE)
    two.add("d", "random+dice", "random", "dice", BASE, {"aulc_dice": 0.1})
    block = two.blocks()["sal-rq1"]
    assert block["verdict"] == "inconclusive"
    assert block["power"].startswith("Power: 3 paired seeds would decide random+dice vs random+ce on d")


def test_sal_rq1_some_claim_holm_over_every_loss(tmp_path: Path) -> None:
    """One loss raises Dice, one lowers it, one leaves it: the approach can help (claim "some")."""
    run = FabricatedRun(tmp_path)
    run.add("d", "random+ce", "random", "ce", BASE)
    for loss, d in (("dice", 0.1), ("rrr", -0.1), ("res", 0.0)):
        run.add("d", f"random+{loss}", "random", loss, BASE, {"aulc_dice": d})
    block = run.blocks()["sal-rq1"]
    dice = [c for c in block["comparisons"] if c["quantity"] == "AULC_dice"]
    assert {c["family"] for c in dice} == {3}
    assert sorted(c["verdict"] for c in dice) == ["contradicted", "not reproduced", "reproduced"]
    assert block["verdict"] == "reproduced" and "1 reproduced, 1 contradicted, 1 not reproduced" in block["text"]


# ----------------------------------------------------------------------------- where a question is asked
def test_recorded_facts_decide_where_a_question_exists(tmp_path: Path) -> None:
    """A result that records its dataset's facts: DUE's question is not asked on 2D data, GESTALT's only on
    multi-label data; a dataset without facts keeps every question (unknown: it may exist)."""
    run = FabricatedRun(tmp_path)
    flat = {"task": "multi-class", "spatial_dims": 2, "has_roi": True, "sparse_annotations": False}
    vol = {"task": "multi-class", "spatial_dims": 3, "has_roi": True, "sparse_annotations": True}
    for ds, facts in (("flat", flat), ("vol", vol)):
        run.add(ds, "random+due-baseline-plus", "random", "due-baseline-plus", BASE, facts=facts)
        run.add(ds, "random+due", "random", "due", BASE, {"aulc_iou": 0.05}, facts=facts)
    block = run.blocks()["due"]
    assert block["datasets"] == ["vol"] and [c["dataset"] for c in block["comparisons"]] == ["vol"]
    assert block["not_asked"] == {"flat": "2D images: no slices to interpolate, DUE equals Baseline+"}
    assert "Not asked on flat (2D images" in block["text"] and block["verdict"] == "reproduced"


def test_facts_from_a_loaded_embedded_dataset(tmp_path: Path) -> None:
    """Results that record no facts but name a registered dataset: it is loaded again to learn them."""
    from xalbench.plugins import PluginSelection
    from xalbench.report.base import DatasetFacts
    from xalbench.report.cells import dataset_facts, metric_infos

    registry = PluginSelection.from_env().registry()
    res = result("vol", "random+ce", "random", "ce", 0, BASE)
    res["cell"].update(dataset_name="synth-lesion-3d", dataset_options={
        "size": 24, "depth": 12, "n_train": 24, "n_val": 6, "n_test": 6, "annotate_every": 2})
    facts = dataset_facts([res], registry, metric_infos(registry), str(tmp_path))["vol"]
    assert (facts.task, facts.spatial_dims, facts.has_roi, facts.sparse_annotations) == ("multi-class", 3, True, True)
    assert facts.class_shares is not None and math.isclose(sum(facts.class_shares), 1.0)
    unknown = dataset_facts([result("d", "random+ce", "random", "ce", 0, BASE)], registry, metric_infos(registry))
    assert unknown["d"] == DatasetFacts("d", task="multi-class", has_roi=True)  # seen from its cells only


# ----------------------------------------------------------------------------- missing, CLI, header, power
def test_missing_methods_are_said_never_numbers(tmp_path: Path) -> None:
    run = FabricatedRun(tmp_path)
    run.add("d", "random+ce", "random", "ce", BASE)
    run.add("d", "entropy+ce", "entropy", "ce", BASE, {"aulc_acc": 0.01})
    for block in run.blocks().values():
        assert block["verdict"] == "inconclusive" and block["text"].startswith("Not tested in this run")
        assert not any(ch.isdigit() for ch in block["text"].split(":", 1)[1].replace("ce)", ""))
        assert block["comparisons"] == []


def test_cli_findings_in_md_json_and_html_with_delta(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = FabricatedRun(tmp_path)
    run.add("d", "random+ce", "random", "ce", BASE)
    run.add("d", "random+dice", "random", "dice", BASE, {"aulc_dice": 0.1})
    assert main(["report", str(tmp_path), "--findings"]) == 0
    md = capsys.readouterr().out
    assert "### SAL RQ1" in md and "**reproduced**" in md and "### GESTALT Table I" in md
    assert "smallest effect of interest δ = 0.02" in md
    from xalbench.report.model import build_report

    assert build_report(tmp_path).findings == []  # only on request (or in html)
    assert main(["report", str(tmp_path), "--findings", "--format", "json", "--delta", "0.0005"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [b["verdict"] for b in data["findings"]][0] == "reproduced"
    assert data["header"]["findings_delta"] == 0.0005 and data["findings"][0]["delta"] == 0.0005
    assert any(n.startswith("power (d)") for n in data["notes"])
    assert main(["report", str(tmp_path), "--format", "html"]) == 0
    assert "<h2>Findings</h2>" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["report", str(tmp_path), "--findings", "--delta", "-1"])


def test_the_suites_delta_and_the_option_change_a_verdict(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Δ AULC_dice +0.0003 [−0.0018, +0.0024]: not reproduced at δ 0.02, inconclusive at δ 0.001."""
    run = FabricatedRun(tmp_path)
    run.add("d", "random+ce", "random", "ce", BASE)
    run.add("d", "random+dice", "random", "dice", BASE, {"aulc_dice": 0.0})
    atomic_write_json(tmp_path / "run.json", {"suite": {"name": "t", "seeds": [0, 1, 2, 3, 4],
                                                        "findings": {"delta": 0.001}}})
    assert main(["report", str(tmp_path), "--findings", "--format", "json"]) == 0
    (sal,) = [b for b in json.loads(capsys.readouterr().out)["findings"] if b["key"] == "sal-rq1"]
    assert (sal["delta"], sal["verdict"]) == (0.001, "inconclusive")
    assert main(["report", str(tmp_path), "--findings", "--format", "json", "--delta", "0.02"]) == 0
    (sal,) = [b for b in json.loads(capsys.readouterr().out)["findings"] if b["key"] == "sal-rq1"]
    assert (sal["delta"], sal["verdict"]) == (0.02, "not reproduced")


def test_header_states_seeds_per_dataset_and_a_run_that_stopped_early(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    run = FabricatedRun(tmp_path, seeds=3)
    run.add("d", "random+ce", "random", "ce", BASE)
    run.add("d", "random+dice", "random", "dice", BASE, {"aulc_dice": 0.1})
    planned = [f"d__{m}__seed{s}" for m in ("random+ce", "random+dice") for s in range(5)]
    atomic_write_json(tmp_path / "run.json", {"suite": {"name": "t", "seeds": [0, 1, 2, 3, 4]},
                                              "status": {k: "run" for k in planned}})
    assert main(["report", str(tmp_path)]) == 0
    md = capsys.readouterr().out
    assert "seeds per dataset: d 3 of 5 planned" in md
    assert re.search(r"stopped early: 4 of 10 planned cells have no result", md)
    # --seeds fewer than the suite declares: every planned cell finished, still short of the suite's seeds
    suite = tmp_path / "t.toml"
    suite.write_text('name = "t"\nseeds = [0, 1, 2, 3, 4]\nstrategies = ["random"]\n'
                     '[[datasets]]\nname = "synth-lesion-2d"\n')
    atomic_write_json(tmp_path / "run.json", {"suite": {"name": "t", "seeds": [0, 1, 2], "source": str(suite)},
                                              "status": {k: "run" for k in planned if int(k[-1]) < 3}})
    assert main(["report", str(tmp_path)]) == 0
    md = capsys.readouterr().out
    assert "seeds per dataset: d 3\n" in md
    assert "it planned 3 of the 5 seeds its suite declares" in md and "have no result" not in md


def test_power_notes_from_the_runs_own_spread(tmp_path: Path) -> None:
    from xalbench.report.model import load_results

    run = FabricatedRun(tmp_path, seeds=3)
    run.add("d", "random+ce", "random", "ce", BASE)
    run.add("d", "entropy+ce", "entropy", "ce", BASE, {"aulc_acc": 0.02})
    cells = RunCells([Cell.from_result(r) for r in load_results(tmp_path)], {}, {}, 0.02)
    (note,) = power_notes(cells, "aulc_acc")
    sd = stats.tstd(JITTER[:3])
    assert f"{sd:.3f}" in note and f"with this run's 3 seeds: {minimum_detectable(sd, 3):.3f}" in note
    assert f"with 5 seeds: {minimum_detectable(sd, 5):.3f}" in note


def test_the_suites_findings_table() -> None:
    """``[findings] delta`` is parsed and checked, and changes neither the suite's hash nor the
    leaderboard's suite configuration (it changes no cell)."""
    from tests.conftest import tiny_suite_text
    from xalbench.errors import ConfigError
    from xalbench.leaderboard.adapter import suite_config_sha256
    from xalbench.suite import SuiteSpec, parse_suite

    plain = parse_suite(tiny_suite_text(), where="t")
    judged = parse_suite(tiny_suite_text() + "\n[findings]\ndelta = 0.05\n", where="t")
    assert plain.findings.delta == 0.02 and judged.findings.delta == 0.05
    assert plain.config_hash() == judged.config_hash()
    assert suite_config_sha256(plain) == suite_config_sha256(judged)
    import dataclasses

    assert SuiteSpec.from_dict(json.loads(json.dumps(dataclasses.asdict(judged)))).findings.delta == 0.05
    for bad in ("delta = -0.1", "delta = true", "margin = 0.1"):
        with pytest.raises(ConfigError, match="findings"):
            parse_suite(tiny_suite_text() + f"\n[findings]\n{bad}\n", where="t")
