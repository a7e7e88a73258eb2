"""The CI-sized suite end to end through the CLI, as a user runs it."""

from __future__ import annotations

import pytest

from xalbench.cli import main
from xalbench.results import iter_results


@pytest.mark.slow
def test_smoke_suite_runs_and_reports(smoke_run, capsys) -> None:
    out = smoke_run.out  # `xalbench run --suite smoke --out DIR --workers 2`, once per session (tests/conftest.py)
    assert smoke_run.returncode == 0, smoke_run.stderr[-3000:]
    assert "AULC_acc" in smoke_run.stdout and "AULC_dice" in smoke_run.stdout  # the leaderboard is printed at the end
    assert str(out.resolve()) in smoke_run.stderr  # and where the results are
    assert "Warning" not in smoke_run.stderr  # a quiet console: no library warning mid-run
    results = list(iter_results(out))
    assert len(results) == 16 and all(r["status"] == "ok" for r in results)
    assert {r["cell"]["strategy"] for r in results} >= {"random", "entropy", "bald", "badge", "coreset"}
    assert all(len(r["rounds"]) == 3 for r in results)
    assert main(["report", str(out), "--format", "md"]) == 0
    report = capsys.readouterr().out
    assert report.count("synth-lesion-2d") >= 8 and "synthetic" in report
