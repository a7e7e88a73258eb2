"""Timeouts kill, crashes and out-of-memory stay in their cell, errors carry the sandbox's traceback."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.sandbox.conftest import World
from xalbench.errors import StrategyContractError, StrategyTimeoutError
from xalbench.sandbox import InlineQuerier, ProcessQuerier, SandboxSpec
from xalbench.sandbox.child import scrub_environment


def _alive(pid: int) -> bool:
    """Running (a zombie or a vanished pid counts as dead)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state not in ("Z", "X")


def _wait_dead(pid: int, seconds: float = 5.0) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("ignore_term", [False, True], ids=["plain", "ignores-sigterm"])
def test_sleeper_is_killed_with_its_children_and_the_next_sandbox_works(ignore_term, cheaters, world: World,
                                                                        tmp_path: Path):
    pid_file = tmp_path / "grandchild.pid"
    spec = world.spec(cheaters.Sleeper, {"ignore_term": ignore_term, "pid_file": str(pid_file)}, timeout=1.5)
    querier = ProcessQuerier(spec, world.data()).start()
    with pytest.raises(StrategyTimeoutError) as info:
        querier.query(world.request(0))
    assert info.value.rule == "timeout" and "strategy_timeout" in str(info.value)
    assert _wait_dead(querier.pid), "the sandbox survived its timeout"
    assert pid_file.exists() and _wait_dead(int(pid_file.read_text())), "the strategy's child process survived"
    with pytest.raises(RuntimeError, match="already failed"):
        querier.query(world.request(0))
    with ProcessQuerier(world.spec(cheaters.HonestFirst), world.data()) as nxt:
        assert nxt.query(world.request(0)).indices.tolist() == world.unlabelled()[: world.k].tolist()


def test_inline_timeout_abandons_the_thread_with_the_same_rule(cheaters, world: World):
    spec = world.spec(cheaters.Sleeper, {"seconds": 2.0}, timeout=0.3)
    with pytest.raises(StrategyTimeoutError, match="strategy_timeout"):
        InlineQuerier(spec, world.data()).query(world.request(0))


@pytest.mark.parametrize(("how", "expect"), [("exit", "exit code 7"), ("segfault", "SIGSEGV")])
def test_crash_fails_with_rule_crash_and_the_fault_traceback(how, expect, cheaters, world: World):
    with ProcessQuerier(world.spec(cheaters.Crasher, {"how": how}), world.data()) as q:
        with pytest.raises(StrategyContractError) as info:
            q.query(world.request(0))
    assert info.value.rule == "crash" and expect in str(info.value)
    if how == "segfault":  # faulthandler's dump names the strategy's frame
        assert "in query" in info.value.traceback_tail


def test_out_of_memory_fails_with_rule_memory(cheaters, world: World):
    spec = world.spec(cheaters.Hog, memory_limit=12 << 30)
    with ProcessQuerier(spec, world.data()) as q:
        with pytest.raises(StrategyContractError) as info:
            q.query(world.request(0))
    assert info.value.rule == "memory", str(info.value)


def test_exception_keeps_the_strategys_last_traceback_lines(cheaters, world: World):
    for querier in (ProcessQuerier, InlineQuerier):
        with querier(world.spec(cheaters.Raiser), world.data()) as q:
            with pytest.raises(StrategyContractError) as info:
                q.query(world.request(0))
        err = info.value
        assert err.rule == "exception" and "ZeroDivisionError" in str(err)
        assert "in helper" in err.traceback_tail and "divided by zero on purpose" in err.traceback_tail
        assert "\n" not in str(err), "the message must stay on one line"


def test_a_strategy_that_cannot_start_fails_at_the_first_query(cheaters, world: World):
    with ProcessQuerier(world.spec(cheaters.Crasher, {"no_such_option": 1}), world.data()) as q:
        with pytest.raises(StrategyContractError, match="failed to start.*no_such_option") as info:
            q.query(world.request(0))
    assert info.value.rule == "exception"


def test_credentials_are_scrubbed_from_the_sandbox_environment(cheaters, world: World):
    env = {"HOME": "/root", "GITHUB_TOKEN": "x", "aws_secret_access_key": "y", "DB_PASSWORD": "z", "PATH": "/bin"}
    assert scrub_environment(env) == ["DB_PASSWORD", "GITHUB_TOKEN", "aws_secret_access_key"]
    assert env == {"HOME": "/root", "PATH": "/bin"}
    with ProcessQuerier(world.spec(cheaters.EnvProbe), world.data()) as q:
        assert q.query(world.request(0)).indices.tolist() == world.unlabelled()[: world.k].tolist()


def test_sandbox_process_is_gone_and_its_files_removed_after_close(cheaters, world: World):
    q = ProcessQuerier(world.spec(cheaters.HonestFirst), world.data()).start()
    q.query(world.request(0))
    pid, directory = q.pid, q._dir
    assert Path(directory, "pool_images.npy").exists() and not Path(directory, "pool_labels.npy").exists()
    q.close()
    assert _wait_dead(pid) and not os.path.exists(directory)


def test_spec_rejects_nonsense(world: World):
    base = world.spec(object)
    with pytest.raises(ValueError, match="timeouts"):
        SandboxSpec(**{**vars(base), "timeout": 0})
    with pytest.raises(ValueError, match="memory_limit"):
        SandboxSpec(**{**vars(base), "memory_limit": 1024})


@pytest.mark.slow
def test_sandbox_dies_with_a_killed_harness(cheaters, tmp_path: Path):
    """A harness process SIGKILLed mid-query leaves no sandbox behind (the sandbox watches its parent)."""
    import signal
    import subprocess
    import sys

    script = tmp_path / "harness.py"
    script.write_text(
        "import sys\n"
        "from tests.sandbox.conftest import make_world\n"
        f"sys.path.insert(0, {str(Path(cheaters.__file__).parent)!r})\n"
        "import xalbench_cheaters\n"
        "from xalbench.sandbox import ProcessQuerier\n"
        "if __name__ == '__main__':\n"
        "    w = make_world()\n"
        "    q = ProcessQuerier(w.spec(xalbench_cheaters.Sleeper), w.data()).start()\n"
        "    q._wait_ready()\n"
        "    print(q.pid, flush=True)\n"
        "    q.query(w.request(0))\n", encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.getcwd(), os.environ.get("PYTHONPATH", "")])}
    harness = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        sandbox_pid = int(harness.stdout.readline())
        time.sleep(0.5)
        assert _alive(sandbox_pid)
        harness.send_signal(signal.SIGKILL)
        harness.wait()
        assert _wait_dead(sandbox_pid, 10.0), "the sandbox outlived its harness"
    finally:
        harness.kill()
