"""Local worker pools keep their workers when a task makes them grow: no ``A worker stopped while some jobs
were given to the executor`` warning from loky mid-run, no restarted worker, every result back."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HELPERS = Path(__file__).parent / "helpers"
WARNING = "A worker stopped while some jobs were given to the executor"


def _run(mode: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HELPERS), os.environ.get("PYTHONPATH", "")])}
    code = f"import memory_growth; memory_growth.main({mode!r})"  # imported, so workers import it by name
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)


def test_workers_that_grow_are_kept_and_the_library_warning_is_not_printed() -> None:
    pytest.importorskip("psutil", reason="without psutil loky never checks a worker's memory")
    plain = _run("joblib")  # the situation, reproduced: loky recycles both workers and warns
    assert plain.returncode == 0 and WARNING in plain.stderr, plain.stderr
    assert plain.stdout.split()[-1] != "2"  # more than the 2 workers ran the tasks

    ours = _run("xalbench")
    assert ours.returncode == 0, ours.stderr
    assert WARNING not in ours.stderr and "Warning" not in ours.stderr, ours.stderr
    assert ours.stdout.strip() == "[0, 1, 2, 3, 4, 5] 2"  # every result, from the same 2 workers
