"""Full-data reference and budget-to-95 % (AEIG's data-efficiency measure)."""

from __future__ import annotations

import math

from tests.conftest import tiny_suite_text
from xalbench.cli import main
from xalbench.results import iter_results, read_json


def test_budget_to_95_uses_a_shared_full_data_reference(tmp_path, capsys) -> None:
    suite = tmp_path / "ref.toml"
    text = tiny_suite_text(["random", "entropy"], rounds=1).replace(
        '[[datasets]]', '[evaluation]\nfull_data_reference = true\n\n[[datasets]]')
    suite.write_text(text.replace("seeds = [0, 1]", "seeds = [0]"))
    out = tmp_path / "out"
    assert main(["run", "--suite", str(suite), "--out", str(out), "--quiet", "--workers", "1"]) == 0
    results = list(iter_results(out))
    refs = sorted((out / "reference").glob("*.json"))
    assert len(refs) == 1  # one per (dataset, loss, seed): both strategies share it
    ref = read_json(refs[0])
    assert ref["n_labelled"] == 120  # the whole pool
    for r in results:
        s = r["summary"]
        assert s["reference_acc"] == ref["metrics"]["accuracy"]
        accs = [rd["metrics"]["accuracy"] for rd in r["rounds"]]
        reached = any(a >= 0.95 * s["reference_acc"] for a in accs)
        assert math.isnan(s["budget95_acc"]) != reached
        if reached:
            assert 20 <= s["budget95_acc"] <= 30 and s["budget95_acc_frac"] == s["budget95_acc"] / 120
    assert main(["report", str(out)]) == 0
    assert "to 95 % of full data" in capsys.readouterr().out


def test_suites_without_reference_show_no_budget_column(tmp_path, capsys) -> None:
    suite = tmp_path / "plain.toml"
    suite.write_text(tiny_suite_text(["random"], rounds=1).replace("seeds = [0, 1]", "seeds = [0]"))
    out = tmp_path / "out"
    assert main(["run", "--suite", str(suite), "--out", str(out), "--quiet", "--workers", "1"]) == 0
    assert not (out / "reference").exists()
    capsys.readouterr()
    assert main(["report", str(out)]) == 0
    assert "to 95 %" not in capsys.readouterr().out
