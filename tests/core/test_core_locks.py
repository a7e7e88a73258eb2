"""Cell locks: two controllers on one results directory never run a cell twice; stale locks expire."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

from tests.conftest import tiny_suite_text
from xalbench.harness.locks import CellLock
from xalbench.results import iter_results

LISTENER = """
import os
from xalbench import hookimpl

@hookimpl
def cell_started(cell):
    with open(os.environ["XALBENCH_TEST_LOG"], "a") as fh:
        fh.write(cell.key + "\\n")
"""


def test_two_controllers_never_run_the_same_cell_twice(fake_dist, tmp_path) -> None:
    fake_dist("xalbench-listener", "xalbench_listener", LISTENER)
    suite = tmp_path / "tiny.toml"
    suite.write_text(tiny_suite_text(["random", "entropy"], rounds=1))
    log = tmp_path / "started.log"
    env = {**os.environ, "XALBENCH_TEST_LOG": str(log)}
    cmd = [sys.executable, "-m", "xalbench.cli", "run", "--suite", str(suite), "--out", str(tmp_path / "out"),
           "--seeds", "0", "--workers", "1", "--isolation", "inline", "--quiet"]
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for p in procs:
        _out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err
    started = log.read_text().split()
    assert sorted(started) == sorted(set(started)) and len(started) == 2  # each cell ran exactly once
    assert {r["status"] for r in iter_results(tmp_path / "out")} == {"ok"}
    assert not list((tmp_path / "out" / "cells").glob("*.lock"))


def test_lock_of_a_dead_process_is_taken_over(tmp_path) -> None:
    path = tmp_path / "c.lock"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    path.write_text(json.dumps({"host": socket.gethostname(), "pid": int(dead.stdout), "since": 0}))
    lock = CellLock(path)
    assert lock.try_acquire()
    assert json.loads(path.read_text())["pid"] == os.getpid()
    lock.release()
    assert not path.exists()


def test_live_lock_is_respected_until_its_heartbeat_is_too_old(tmp_path) -> None:
    path = tmp_path / "c.lock"
    path.write_text(json.dumps({"host": "another-node", "pid": 1, "since": time.time()}))
    assert not CellLock(path, ttl=60).try_acquire()  # a fresh lock of another host
    old = time.time() - 120
    os.utime(path, (old, old))
    taker = CellLock(path, ttl=60)
    assert taker.try_acquire()  # its owner stopped beating: stale
    taker.release()
