"""``xalbench leaderboard ...`` through the command line."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest


def _main(argv: list[str]) -> int:
    from xalbench.leaderboard.cli import add_arguments, main

    parser = argparse.ArgumentParser(prog="xalbench leaderboard")
    add_arguments(parser)
    return main(parser.parse_args(argv))


def test_module_import_is_light() -> None:
    code = "import sys, xalbench.leaderboard.cli; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_check_and_build_commands(board: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sub = next((board / "submissions").glob("*/*"))
    assert _main(["check", str(sub), "--board", str(board)]) == 0
    assert "accepted" in capsys.readouterr().out
    (sub / "notes.txt").write_text("x", encoding="utf-8")
    assert _main(["check", str(sub), "--board", str(board), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report[0]["rejections"][0]["code"] == "path-unexpected-file"
    (sub / "notes.txt").unlink()
    assert _main(["build", "--board", str(board)]) == 0
    assert _main(["build", "--check", "--board", str(board)]) == 0
    (board / "results.csv").write_text("edited\n", encoding="utf-8")
    assert _main(["build", "--check", "--board", str(board)]) == 1
    assert "results.csv" in capsys.readouterr().err


def test_wired_into_the_xalbench_command(board: Path) -> None:
    from xalbench.cli import main

    sub = next((board / "submissions").glob("*/*"))
    assert main(["leaderboard", "check", str(sub), "--board", str(board)]) == 0


def test_verify_without_secret_is_a_config_error(board: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from xalbench.errors import ConfigError

    monkeypatch.delenv("XALBENCH_LEADERBOARD_SECRET", raising=False)
    sub = next((board / "submissions").glob("*/*"))
    with pytest.raises(ConfigError, match="secret"):
        _main(["verify", str(sub), "--board", str(board)])


def test_reference_pins_the_boards_seeds_and_narrows_the_band_to_them(lb_run: Path, runtime: Any,
                                                                      tmp_path: Path) -> None:
    """``leaderboard reference --board-seeds N`` writes seeds 0..N-1 as the grid every submission must run
    and sizes the canary band for a mean over N seeds (half-width ∝ 1/√N)."""
    from xalbench.errors import ConfigError
    from xalbench.leaderboard.reference import canary_bands

    path = tmp_path / "reference.json"
    suite, suite_bands = canary_bands(lb_run, path, runtime=runtime, floor=0.0, width=0.5)
    assert "seeds" not in json.loads(path.read_text())["suites"][suite]  # the suite's own seeds
    _, board_bands = canary_bands(lb_run, path, runtime=runtime, floor=0.0, width=0.5, board_seeds=8)
    assert json.loads(path.read_text())["suites"][suite]["seeds"] == list(range(8))
    for dataset, (lo, hi) in suite_bands.items():  # 2 suite seeds → 8 board seeds: half the half-width
        b_lo, b_hi = board_bands[dataset]
        assert b_hi - b_lo == pytest.approx((hi - lo) / 2, abs=2e-4)
    with pytest.raises(ConfigError, match="at least 3"):
        canary_bands(lb_run, path, runtime=runtime, board_seeds=2)
