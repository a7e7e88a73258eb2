"""``xalbench.load_results`` round-trips a finished smoke run's cell files, and ``xalbench.leaderboard_frame``
gives the numbers ``xalbench report --format json`` prints for the same run."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import xalbench
from xalbench.cli import main
from xalbench.confinement import resolve_isolation
from xalbench.errors import ConfigError
from xalbench.results import DamagedResultWarning, iter_results

pytestmark = [pytest.mark.slow, pytest.mark.cost(60)]  # the session's smoke run (tests/conftest.py)


def _same(a: Any, b: Any) -> bool:
    """Equal, with None / NaN as the same missing value (JSON has no NaN)."""
    a_missing = a is None or (isinstance(a, float) and math.isnan(a))
    b_missing = b is None or (isinstance(b, float) and math.isnan(b))
    return a_missing == b_missing and (a_missing or a == b)


@pytest.fixture(scope="module")
def finished(smoke_run) -> tuple[xalbench.Results, list[dict[str, Any]]]:
    assert smoke_run.returncode == 0, smoke_run.stderr[-3000:]
    return xalbench.load_results(smoke_run.out), list(iter_results(smoke_run.out))


def test_every_round_metric_and_summary_value_round_trips(finished) -> None:
    res, cells = finished
    assert len(res.cells) == len(cells) == 16 and res.damaged == ()
    assert len(res.rounds) == sum(len(c["rounds"]) for c in cells) == 48
    rounds = res.rounds.set_index(["key", "round"])
    by_key = res.cells.set_index("key")
    for cell in cells:
        key = cell["cell"]["key"]
        for rd in cell["rounds"]:
            row = rounds.loc[(key, rd["round"])]
            assert row["n_labelled"] == rd["n_labelled"] and row["n_queried"] == len(rd["queried"])
            assert row["n_masks_revealed"] == rd["n_masks_revealed"]
            for metric, value in rd["metrics"].items():
                assert _same(row[metric], value), (key, rd["round"], metric)
            for name, value in rd["timings"].items():
                assert row[f"timing_{name}"] == value
            assert [row[f"acquired_class_{i}"] for i in range(3)] == rd["acquired_class_histogram"]
        summary = by_key.loc[key]
        for name, value in cell["summary"].items():
            assert _same(summary[name], value), (key, name)
        prov = cell["provenance"]
        assert summary["status"] == cell["status"] and summary["seed"] == cell["cell"]["seed"]
        assert summary["identity_sha256"] == cell["identity_sha256"] and summary["suite"] == "smoke"
        assert summary["isolation"] == prov["isolation"] == resolve_isolation("auto", warn=False)
        assert summary["split_hash"] == prov["split_hash"]
        assert summary["strategy_distribution"] == "xalbench" and summary["version:xalbench"] == xalbench.__version__
        assert summary["torch"] == prov["environment"]["torch"]


@pytest.mark.parametrize("key", ["acc", "dice"])
def test_leaderboard_frame_gives_the_reports_numbers(finished, smoke_run, key: str, capsys) -> None:
    res, _ = finished
    assert main(["report", str(smoke_run.out), "--format", "json"]) == 0
    report = {row["method"]: row for row in json.loads(capsys.readouterr().out)["leaderboard"]}
    board = xalbench.leaderboard_frame(res.cells, metric=key)
    assert len(board) == len(report) == 8 and set(board["method"]) == set(report)
    columns = {"mean": f"aulc_{key}_mean", "ci_low": f"aulc_{key}_ci_low", "ci_high": f"aulc_{key}_ci_high",
               "std": f"aulc_{key}_std", "delta": f"delta_{key}", "delta_ci_low": f"delta_{key}_ci_low",
               "delta_ci_high": f"delta_{key}_ci_high", "n_pairs": f"n_pairs_{key}", "p": f"p_{key}",
               "p_holm": f"p_{key}_holm", "n_seeds": "n_seeds", "baseline": "baseline"}
    if key == "acc":  # the report ranks by accuracy
        columns.update(rank="rank", rank_best="rank_best", rank_worst="rank_worst")
    for _, row in board.iterrows():
        shown = report[row["method"]]
        for ours, theirs in columns.items():
            assert _same(row[ours], shown[theirs]), (row["method"], ours)
        display = shown["display"][f"AULC_{key}"]  # "0.565 ± 0.222": the half-width the report shows
        assert display == f"{row['mean']:.3f} ± {row['half_width']:.3f}"


def test_leaderboard_frame_over_a_slice_and_another_baseline(finished) -> None:
    res, _ = finished
    two = res.cells[res.cells["method"].isin(["random+ce", "entropy+ce"])]
    forward = xalbench.leaderboard_frame(two, "aulc_acc").set_index("method")
    backward = xalbench.leaderboard_frame(two, "accuracy", baseline="entropy+ce").set_index("method")
    assert backward.loc["random+ce", "delta"] == pytest.approx(-forward.loc["entropy+ce", "delta"])
    assert math.isnan(backward.loc["entropy+ce", "delta"]) and backward.loc["random+ce", "baseline"] == "entropy+ce"
    assert set(forward["n_seeds"]) == {2} and pd.isna(forward["p"]).all()  # 2 seeds: no p-value


def test_bad_arguments_are_one_clear_error(finished, tmp_path: Path) -> None:
    res, _ = finished
    with pytest.raises(ConfigError, match="has no AULC in these cells; choose one of: acc, auc"):
        xalbench.leaderboard_frame(res.cells, "accuracyy")
    with pytest.raises(ConfigError, match="baseline 'random' is not a method"):
        xalbench.leaderboard_frame(res.cells, baseline="random")
    with pytest.raises(ConfigError, match="does not exist"):
        xalbench.load_results(tmp_path / "nowhere")


def test_damaged_files_are_skipped_with_a_warning(smoke_run, tmp_path: Path) -> None:
    shutil.copytree(smoke_run.out / "cells", tmp_path / "cells")
    victim = sorted((tmp_path / "cells").glob("*.json"))[0]
    victim.write_text(victim.read_text()[:-40])
    with pytest.warns(DamagedResultWarning, match="1 damaged cell file"):
        res = xalbench.load_results(tmp_path)
    assert res.damaged == (victim,) and len(res.cells) == 15
