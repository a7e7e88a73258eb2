"""``xalbench leaderboard ...`` through the command line."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

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
