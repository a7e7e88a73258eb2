"""``verify``: sampled re-runs reproduce an honest submission; a strategy that memorised the public data's
labels keeps its edge only on the public data and is flagged on held-out data."""

from __future__ import annotations

import dataclasses
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.leaderboard.conftest import DATASET, PluginSite, reference, run_suite, suite_toml

pytestmark = pytest.mark.cost(75)  # seconds on 2 cores: files start longest first (tests/conftest.py)

SECRET = b"test-secret-0123456789abcdef"
# decoy-digits with a label-coding corner swatch in 90 % of the pool (none in test): a model trained on a
# random labelled set leans on the swatch; one trained on swatch-free, class-balanced picks does not
VERIFY_OPTIONS = {"size": 16, "margin": 2, "n_train": 300, "n_val": 50, "n_test": 200, "rho": 0.9}


def _checked(sub: Path, runtime: Any):
    from xalbench.leaderboard.check import check_submission

    report = check_submission(sub, reference=reference(), runtime=runtime)
    assert report.ok, report.lines()
    return report.submission


def test_sample_is_fixed_by_the_manifest(lb_submission: Path, runtime: Any) -> None:
    from xalbench.leaderboard.verify import held_out_seed, sample_cells

    sub = _checked(lb_submission, runtime)
    first = sample_cells(sub, 1)
    assert first == sample_cells(sub, 1) and first[0].method in sub.own_methods
    assert [c.seed for c in sample_cells(sub, 2)] == [0, 1] or len({c.seed for c in sample_cells(sub, 2)}) == 2
    a, b = held_out_seed(SECRET, "s", "d", 0), held_out_seed(SECRET + b"x", "s", "d", 0)
    assert a != b and a != 0 and held_out_seed(SECRET, "s", "d", 0) == a


def test_compare_catches_a_non_reproducing_cell(lb_submission: Path, runtime: Any) -> None:
    from xalbench.leaderboard.adapter import Adapter
    from xalbench.leaderboard.verify import VerifySettings, _compare

    sub = _checked(lb_submission, runtime)
    adapter = Adapter(runtime)
    cell = sub.cells[0]
    rerun = json.loads(json.dumps({"rounds": cell.rounds}))
    assert _compare(cell, rerun, True, VerifySettings(), adapter)[0]
    rerun["rounds"][0]["queried_sha256"] = "0" * 64
    ok, detail = _compare(cell, rerun, True, VerifySettings(), adapter)
    assert not ok and "queried" in detail
    name = next(iter(rerun["rounds"][1]["metrics"]))
    rerun["rounds"][1]["metrics"][name] = (rerun["rounds"][1]["metrics"][name] or 0) + 0.3
    ok, detail = _compare(cell, rerun, False, VerifySettings(), adapter)
    assert not ok and name in detail


@pytest.fixture(scope="module")
def verify_board(tmp_path_factory: pytest.TempPathFactory) -> Any:
    toml = suite_toml(epochs=5, rounds=2, options=VERIFY_OPTIONS, dataset_name="decoy-digits", initial=30,
                      query=45, extra_training="min_steps = 60\nlr = 0.003")
    site = tmp_path_factory.mktemp("verify-site")
    with PluginSite(site, toml, VERIFY_OPTIONS, "decoy-digits") as ps:
        run = run_suite(tmp_path_factory.mktemp("verify-run") / "run",
                        ["random", "lbtest-confident", "lbtest-peek", "lbtest-snoop"])
        board = tmp_path_factory.mktemp("verify-board")
        yield ps, run, board, tmp_path_factory.mktemp("verify-work")


@pytest.mark.slow
@pytest.mark.parametrize(("submitter", "method", "status"), [
    ("honest-lab", "lbtest-confident+ce", "verified"),
    ("peeking-lab", "lbtest-peek+ce", "flagged"),
    ("snooping-lab", "lbtest-snoop+ce", "flagged"),  # finds no held-out seed, secret or data: confined
])
def test_held_out_data(verify_board: Any, submitter: str, method: str, status: str,
                       monkeypatch: pytest.MonkeyPatch) -> None:
    from xalbench.leaderboard.submit import submit
    from xalbench.leaderboard.verify import VerifySettings, record_path, verify

    monkeypatch.setenv("XALBENCH_LEADERBOARD_SECRET", "must-not-reach-the-plugin")
    site, run, board, work = verify_board
    sub = submit(run, runtime=site.runtime, submitter=submitter, out=board / "submissions", methods=[method])
    record = verify(sub, reference=reference(), board=board, secret=SECRET, runtime=site.runtime,
                    settings=VerifySettings(cells=1), workdir=work)
    assert record["rerun"][0]["match"], record["rerun"]  # the sampled cell reproduces bit for bit
    entry = record["held_out"][DATASET][method]
    assert record["status"] == status, (record["reasons"], entry)
    if status == "flagged":
        assert entry["collapse"] and entry["submitted"]["acc"] > entry["held_out"]["acc"]
        assert any("held-out" in r for r in record["reasons"])
    from xalbench.leaderboard.verify import held_out_seed

    text = record_path(board, json.loads((sub / "manifest.json").read_text())).read_text()
    assert json.loads(text)["status"] == status
    assert str(held_out_seed(SECRET, "lb-tiny", DATASET, 0)) not in text  # held-out seeds are never written
    shutil.rmtree(sub)


def test_drop_is_judged_by_a_paired_test_with_five_seeds_and_a_margin_below() -> None:
    from xalbench.leaderboard.verify import VerifySettings, _judge_drop

    s = VerifySettings()
    honest = [0.04, -0.05, 0.03, -0.02, 0.01]  # an honest method's Δ moves this much between data draws
    assert not _judge_drop(honest, s)["collapse"]
    memoriser = [0.12, 0.09, 0.15, 0.11, 0.10]
    judged = _judge_drop(memoriser, s)
    assert judged["collapse"] and judged["p"] < 0.01 and "t-test" in judged["rule"]
    small = [0.012, 0.011, 0.013, 0.010, 0.012]  # significant but below min_drop: not flagged
    assert not _judge_drop(small, s)["collapse"]
    two = _judge_drop([0.12, 0.11], s)
    assert two["collapse"] and "margin" in two["rule"] and "p" not in two


def test_verify_refuses_to_run_unconfined_unless_allowed(lb_submission: Path, runtime: Any, monkeypatch) -> None:
    import importlib

    where = importlib.import_module("xalbench.confinement.probe")
    from xalbench.errors import ConfigError
    from xalbench.leaderboard.verify import VerifySettings, verify

    no_landlock = dataclasses.replace(where.probe(), landlock_abi=None, landlock_reason="not in this kernel")
    monkeypatch.setattr(where, "probe", lambda profile=None: no_landlock)
    secret = bytearray(SECRET)
    with pytest.raises(ConfigError, match="--allow-unconfined"):
        verify(lb_submission, reference=reference(), board=lb_submission.parent, secret=secret, runtime=runtime,
               settings=VerifySettings(cells=1), write=False)
    assert secret == bytearray(len(SECRET))  # wiped even when refused


def test_read_secret_takes_the_variable_out_of_the_environment(monkeypatch) -> None:
    import os

    from xalbench.leaderboard.verify import read_secret

    monkeypatch.setenv("XALBENCH_LEADERBOARD_SECRET", SECRET.decode())
    got = read_secret(None)
    assert bytes(got) == SECRET and "XALBENCH_LEADERBOARD_SECRET" not in os.environ


def test_rerun_job_travels_by_pipe_and_held_out_data_is_removed(monkeypatch, tmp_path) -> None:
    """The re-run child is handed its job on stdin (no job file anywhere) and a private data root that is
    gone once it exits."""
    import subprocess

    from xalbench.leaderboard import rerun

    seen: dict[str, object] = {}
    real = subprocess.Popen

    class Spy(real):  # type: ignore[misc, valid-type]
        def __init__(self, args, **kwargs):
            seen["args"], seen["env"] = list(args), dict(kwargs["env"])
            super().__init__([sys.executable, "-c", "import sys; sys.stdin.read()"], **kwargs)

    monkeypatch.setattr(rerun.subprocess, "Popen", Spy)
    monkeypatch.setattr(rerun, "_child", None)
    from xalbench.suite import parse_suite

    suite = parse_suite(suite_toml(), where="lb-tiny")
    from xalbench.errors import ConfigError

    with pytest.raises((rerun.RerunError, ConfigError)):  # the stand-in child runs nothing: no results
        rerun.run_cells(suite, [rerun.CellRequest(DATASET, "random+ce", {"strategy": "random"}, 0)], tmp_path / "o",
                        dataset_seeds={DATASET: 12345})
    assert not any(a.endswith("job.json") for a in seen["args"]) and not list(tmp_path.rglob("job.json"))
    data_root = seen["env"]["XALBENCH_DATA"]
    assert "XALBENCH_LEADERBOARD_SECRET" not in seen["env"] and not Path(data_root).exists()
