"""A scaffolded strategy from ``xalbench new-plugin`` to an accepted leaderboard submission, installed the
way an author installs it (``pip install -e``) into a throw-away virtualenv that sees this environment's
packages, so nothing is installed here.

The public board takes only the ``medical`` suite (4 datasets; a 2-method grid is 16 cells of up to half a
minute). This test runs the same workflow on the smallest shipped suite, ``smoke``: the new strategy is added
to a copy of the session's smoke run (tests/conftest.py), so only its 2 cells run (their round 0 is the one
the smoke run shared), and the submission holds the new strategy and the ``random`` canary (2 methods ×
2 seeds = 4 cells). A reference file takes ``smoke`` with a canary band that ``xalbench leaderboard
reference`` sets from that run — the maintainers' own step for a new suite — so ``submit`` and ``check``
validate the entry exactly as they validate ``medical`` ones.
"""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

import xalbench
from xalbench.cli import main

pytestmark = pytest.mark.cost(45)  # seconds on 2 cores: files start longest first (tests/conftest.py)

NAME = "scaffolded-least-confident"
DIST = f"xalbench-{NAME}"
REPO = Path(xalbench.__file__).resolve().parents[1]


def _venv(root: Path) -> Path:
    """A virtualenv without pip whose interpreter also sees this interpreter's site-packages (torch, xalbench's
    dependencies, pip, setuptools), through a ``.pth`` file that adds them as site directories."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    python = root / "bin" / "python"
    own = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                         check=True, capture_output=True, text=True).stdout.strip()
    dirs = [d for d in site.getsitepackages() if Path(d).is_dir()]
    Path(own, "xalbench_outer_site.pth").write_text("".join(f"import site; site.addsitedir({d!r})\n" for d in dirs))
    return python


def _env() -> dict[str, str]:
    """This worktree's xalbench (and plugin sources) first, as in the calling process."""
    paths = [str(REPO), *(p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p)]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}


def _ok(args: list[str], cwd: Path) -> str:
    proc = subprocess.run(args, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{' '.join(args[1:])} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


@pytest.mark.slow
def test_a_scaffolded_strategy_goes_from_new_plugin_to_an_accepted_submission(smoke_run, tmp_path: Path,
                                                                               capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("setuptools", minversion="77", reason="installing the plugin without build isolation (no "
                        "network) needs setuptools >= 77 here (torch's requirements bring a recent one)")
    assert smoke_run.returncode == 0, smoke_run.stderr[-3000:]
    plugin = tmp_path / DIST
    python = _venv(tmp_path / "venv")
    xal = [str(python), "-m", "xalbench.cli"]  # what needs the plugin installed runs in the virtualenv
    assert main(["new-plugin", NAME, "--dir", str(plugin)]) == 0
    _ok([str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "-e", str(plugin)],
        tmp_path)

    tests = _ok([str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider"], plugin)  # the plugin's own tests
    assert " passed" in tests and "failed" not in tests
    checks = _ok([*xal, "check-plugin", NAME], tmp_path)
    assert NAME in checks and DIST in checks and " failed" not in checks

    run = tmp_path / "runs" / "smoke"
    shutil.copytree(smoke_run.out, run)
    _ok([*xal, "run", "--suite", "smoke", "--strategies", f"random,{NAME}", "--out", str(run), "--workers", "1",
         "--isolation", "process", "--quiet"], tmp_path)
    ran = sorted(p.name for p in (run / "cells").glob(f"*{NAME}*.json"))
    assert ran == [f"synth-lesion-2d__{NAME}+ce__seed{s}.json" for s in (0, 1)]
    capsys.readouterr()
    assert main(["report", str(run), "--format", "json"]) == 0  # reads files only
    board = json.loads(capsys.readouterr().out)
    rows = {r["method"]: r for r in board["leaderboard"]}
    assert len(rows) == 9 and f"{NAME}+ce" in rows  # ranked among the smoke run's 8 strategies
    mine = rows[f"{NAME}+ce"]
    assert 1 <= mine["rank"] <= 9 and mine["n_seeds"] == 2 and mine["baseline"] == "random+ce"
    assert 0 < mine["aulc_acc_mean"] < 1 and mine["delta_acc"] is not None

    lb = tmp_path / "board"
    assert main(["leaderboard", "reference", str(run), "--board", str(lb)]) == 0  # the board takes `smoke`
    submitted = _ok([*xal, "leaderboard", "submit", str(run), "--submitter", "scaffold-e2e", "--board", str(lb)],
                    tmp_path)
    folder = lb / "submissions" / "scaffold-e2e" / f"{DIST}-0.1.0"
    assert f"{folder}: accepted (4 cells" in submitted
    assert f"{folder}: accepted (4 cells" in _ok([*xal, "leaderboard", "check", str(folder), "--board", str(lb)],
                                                 tmp_path)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["plugin"]["name"] == DIST
    assert {m["name"] for m in manifest["methods"]} == {"random+ce", f"{NAME}+ce"}
