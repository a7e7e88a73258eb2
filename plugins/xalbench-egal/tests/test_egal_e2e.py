"""End to end through the CLI: the egal-smoke suite runs, reports EG-AL against random, and Fig. 3 replays it."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from xalbench_egal.figure import main as figure_main
from xalbench_egal.figure import replay_round

from xalbench.cli import main


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("egal-smoke")
    assert main(["run", "--suite", "egal-smoke", "--out", str(out), "--quiet", "--workers", "1"]) == 0
    return out


def test_every_cell_finishes_with_the_scaled_protocol(smoke_run: Path):
    cells = [json.loads(p.read_text()) for p in sorted((smoke_run / "cells").glob("*.json"))]
    assert len(cells) == 6 and {c["status"] for c in cells} == {"ok"}
    for c in cells:
        assert [r["n_labelled"] for r in c["rounds"]] == [12, 18, 24]  # 12 class-balanced + 2 × 6
    egal = [c for c in cells if c["cell"]["strategy"] == "egal"]
    assert {c["provenance"]["components"]["strategy"]["distribution"] for c in egal} == {"xalbench-egal"}
    assert {c["cell"]["loss"] for c in egal} == {"dice"}
    assert all(c["rounds"][0]["train_terms"]["n_annotated"] > 0 for c in egal)  # eq. 4's term was active


def test_report_shows_egal_against_random_with_paired_p(smoke_run: Path, tmp_path: Path):
    out = tmp_path / "report.json"
    assert main(["report", str(smoke_run), "--format", "json", "-o", str(out)]) == 0
    rows = {r["method"]: r for r in json.loads(out.read_text())["leaderboard"]}
    assert set(rows) == {"EG-AL", "Random+CE"}
    eg = rows["EG-AL"]
    assert eg["baseline"] == "Random+CE" and eg["n_seeds"] == 3
    assert 0.0 <= eg["p_vs_random"] <= 1.0 and not math.isnan(eg["p_holm"])
    md = tmp_path / "report.md"
    assert main(["report", str(smoke_run), "-o", str(md)]) == 0
    text = md.read_text()
    assert "p(acc)" in text and "EG-AL" in text and "Random+CE" in text  # the paired test's column


def test_figure_replays_the_recorded_batch(smoke_run: Path, tmp_path: Path):
    replay = replay_round(smoke_run, seed=0, round_index=1)
    assert replay.reproduced, (replay.recorded, replay.recomputed)
    png = tmp_path / "fig3.png"
    assert figure_main([str(smoke_run), str(png), "--seed", "1", "--top", "3"]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_figure_without_egal_cells_is_one_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    (tmp_path / "cells").mkdir()
    (tmp_path / "run.json").write_text("{}")
    assert figure_main([str(tmp_path), str(tmp_path / "x.png")]) == 2
    assert "no finished EG-AL" in capsys.readouterr().err
