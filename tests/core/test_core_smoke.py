"""The CI-sized suite end to end through the CLI, as a user runs it."""

from __future__ import annotations

import pytest

from xalbench.cli import main
from xalbench.results import iter_results


@pytest.mark.slow
def test_smoke_suite_runs_and_reports(tmp_path, capsys) -> None:
    out = tmp_path / "smoke"
    assert main(["run", "--suite", "smoke", "--out", str(out), "--workers", "2"]) == 0
    captured = capsys.readouterr()
    assert "AULC_acc" in captured.out and "AULC_dice" in captured.out  # the leaderboard is printed at the end
    assert str(out.resolve()) in captured.err  # and where the results are
    results = list(iter_results(out))
    assert len(results) == 16 and all(r["status"] == "ok" for r in results)
    assert {r["cell"]["strategy"] for r in results} >= {"random", "entropy", "bald", "badge", "coreset"}
    assert all(len(r["rounds"]) == 3 for r in results)
    assert main(["report", str(out), "--format", "md"]) == 0
    report = capsys.readouterr().out
    assert report.count("synth-lesion-2d") >= 8 and "synthetic" in report
