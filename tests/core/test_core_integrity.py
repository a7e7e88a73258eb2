"""Runs you can grow and trust: per-cell identity, validation before the first cell, damaged files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import tiny_suite_text
from xalbench.cli import main
from xalbench.results import iter_results

pytestmark = pytest.mark.cost(14)  # seconds on 2 cores: files start longest first (tests/conftest.py)

QUICK = ["--quiet", "--workers", "1", "--isolation", "inline"]


def _cells(out: Path) -> dict[str, float]:
    """Finished cell files → modification time (to count what a rerun recomputed)."""
    return {p.name: p.stat().st_mtime_ns for p in (out / "cells").glob("*.json") if not p.name.endswith(".partial.json")}


@pytest.fixture(scope="module")
def one_seed_run(tmp_path_factory) -> tuple[Path, Path]:
    """A finished 1-seed, 2-method, 1-round run of the tiny suite."""
    root = tmp_path_factory.mktemp("grow")
    suite = root / "tiny.toml"
    suite.write_text(tiny_suite_text(["random", "entropy"], rounds=1))
    out = root / "out"
    assert main(["run", "--suite", str(suite), "--out", str(out), "--seeds", "0", *QUICK]) == 0
    return suite, out


def test_growing_a_run_recomputes_nothing_finished(one_seed_run, capsys) -> None:
    suite, out = one_seed_run
    before = _cells(out)
    assert len(before) == 2
    assert main(["run", "--suite", str(suite), "--out", str(out), "--n-seeds", "2", "--workers", "1",
                 "--isolation", "inline"]) == 0
    err = capsys.readouterr().err
    assert "2 finished, 0 resumed, 2 to run" in err
    after = _cells(out)
    assert len(after) == 4
    assert all(after[name] == mtime for name, mtime in before.items())  # seed 0 untouched
    # another method: only its cells run; the finished ones stay
    assert main(["run", "--suite", str(suite), "--out", str(out), "--n-seeds", "2", "--strategies", "random,margin",
                 "--workers", "1", "--isolation", "inline"]) == 0
    assert "2 finished, 0 resumed, 2 to run" in capsys.readouterr().err
    assert _cells(out)["lesions__random+ce__seed0.json"] == before["lesions__random+ce__seed0.json"]


def test_changed_configuration_is_redone_and_the_old_file_kept_aside(tmp_path, capsys) -> None:
    suite = tmp_path / "tiny.toml"
    suite.write_text(tiny_suite_text(["random"], rounds=1))
    out = tmp_path / "out"
    assert main(["run", "--suite", str(suite), "--out", str(out), "--seeds", "0", *QUICK]) == 0
    first = json.loads((out / "cells" / "lesions__random+ce__seed0.json").read_text())
    suite.write_text(tiny_suite_text(["random"], rounds=1).replace("epochs = 2", "epochs = 3"))
    assert main(["run", "--suite", str(suite), "--out", str(out), "--seeds", "0", "--workers", "1",
                 "--isolation", "inline"]) == 0
    assert "0 finished, 0 resumed, 1 to run" in capsys.readouterr().err
    kept = json.loads((out / "cells" / ".superseded" / "lesions__random+ce__seed0.json").read_text())
    assert kept == first
    new = json.loads((out / "cells" / "lesions__random+ce__seed0.json").read_text())
    assert new["identity"]["training"]["epochs"] == 3 and new["identity_sha256"] != first["identity_sha256"]


def test_other_thread_count_is_another_identity(one_seed_run, tmp_path) -> None:
    from xalbench.harness.identity import identity_hash

    _suite, out = one_seed_run
    result = json.loads((out / "cells" / "lesions__random+ce__seed0.json").read_text())
    changed = dict(result["identity"], threads=2)
    assert identity_hash(changed) != result["identity_sha256"]
    assert "xalbench" in result["identity"]["sources"]  # code upgrades change the identity too


def test_hand_edited_metrics_are_damaged_and_redone(one_seed_run, tmp_path, capsys) -> None:
    suite, out = one_seed_run
    copy = tmp_path / "copy"
    subprocess.run(["cp", "-r", str(out), str(copy)], check=True)
    path = copy / "cells" / "lesions__entropy+ce__seed0.json"
    data = json.loads(path.read_text())
    data["summary"]["aulc_acc"] = 0.99
    path.write_text(json.dumps(data))
    assert main(["report", str(copy)]) == 1  # skipped with a warning line, exit 1
    captured = capsys.readouterr()
    assert "damaged" in captured.err and path.name in captured.err
    assert main(["run", "--suite", str(suite), "--out", str(copy), "--seeds", "0", *QUICK]) == 0
    assert (copy / "cells" / (path.name + ".corrupt")).exists()
    redone = json.loads(path.read_text())
    original = json.loads((out / "cells" / path.name).read_text())
    assert redone["summary"] == original["summary"]


def test_forged_cell_and_checkpoint_are_rejected_by_report_and_resume(one_seed_run, tmp_path, capsys) -> None:
    """A finished cell rewritten and resealed with the unkeyed seal (what a plugin that cannot read the key
    could do): report names it and exits 1; a resume moves it aside as ``*.forged`` and redoes the cell;
    a forged checkpoint is discarded and the cell runs from round 0 to the same result."""
    from xalbench.results import MAC_FIELD, seal

    suite, out = one_seed_run
    copy = tmp_path / "copy"
    subprocess.run(["cp", "-r", str(out), str(copy)], check=True)
    assert (copy / ".xalbench" / "seal.key").exists()
    path = copy / "cells" / "lesions__random+ce__seed0.json"
    data = json.loads(path.read_text())
    for r in data["rounds"]:
        r["metrics"]["accuracy"] = 0.05
    data["summary"]["aulc_acc"] = 0.05
    data.pop(MAC_FIELD)
    path.write_text(json.dumps(seal(data)))  # content hash recomputed: only the keyed seal can tell
    assert main(["report", str(copy)]) == 1
    assert path.name in capsys.readouterr().err
    partial = copy / "cells" / "lesions__entropy+ce__seed0.partial.json"
    partial.write_text(json.dumps(seal({"identity_sha256": json.loads((copy / "cells" /
                       "lesions__entropy+ce__seed0.json").read_text())["identity_sha256"], "rounds": [],
                       "labelled": []})))
    (copy / "cells" / "lesions__entropy+ce__seed0.json").unlink()  # unfinished, with a forged checkpoint
    assert main(["run", "--suite", str(suite), "--out", str(copy), "--seeds", "0", *QUICK]) == 0
    err = capsys.readouterr().err
    assert "forged" in err and path.name in err
    assert (copy / "cells" / (path.name + ".forged")).exists() and (copy / "cells" / (partial.name + ".forged")).exists()
    for name in (path.name, "lesions__entropy+ce__seed0.json"):
        redone, original = json.loads((copy / "cells" / name).read_text()), json.loads((out / "cells" / name).read_text())
        assert redone["rounds"][-1]["metrics"] == original["rounds"][-1]["metrics"]
        assert redone["summary"] == original["summary"]


def test_truncated_cell_and_checkpoint_files_are_redone(one_seed_run, tmp_path, capsys) -> None:
    suite, out = one_seed_run
    copy = tmp_path / "copy"
    subprocess.run(["cp", "-r", str(out), str(copy)], check=True)
    cell = copy / "cells" / "lesions__random+ce__seed0.json"
    cell.write_text(cell.read_text()[:200])
    partial = copy / "cells" / "lesions__entropy+ce__seed0.partial.json"
    partial.write_text('{"identity_sha256": "x", "rou')
    (copy / "cells" / "lesions__entropy+ce__seed0.json").unlink()
    assert main(["run", "--suite", str(suite), "--out", str(copy), "--seeds", "0", "--workers", "1",
                 "--isolation", "inline"]) == 0
    err = capsys.readouterr().err
    assert "damaged result" in err and "damaged checkpoint" in err
    def summaries(d: Path) -> dict:
        return {r["cell"]["key"]: r["summary"] for r in iter_results(d)}
    assert summaries(copy) == summaries(out)
    main(["report", str(out), "--format", "csv"])
    want = capsys.readouterr().out
    main(["report", str(copy), "--format", "csv"])
    assert capsys.readouterr().out == want


BAD_VALUES = [
    ("rounds = 2", "rounds = -2", "protocol.rounds"),
    ("epochs = 2", 'epochs = "ten"', "training.epochs"),
    ("batch_size = 16", "batch_size = 0", "training.batch_size"),
    ("epochs = 2", "epochs = -3", "training.epochs"),
    ("epochs = 2", 'epochs = 2\noptimizer = "rmsprop"', "training.optimizer"),
    ("query_size = 10", "query_size = -5", "protocol.query_size"),
    ("seeds = [0, 1]", "seeds = [0, 1]\nstrategy_timeout = true", "strategy_timeout"),
    ("seeds = [0, 1]", "seeds = [0, 0]", "seeds"),
    ("initial = 20", "initial = 500", "initial"),
    ("query_size = 10", "query_size = 119", "query_size"),
    ("n_train = 120", "n_train = -4", "n_train"),
]


@pytest.mark.parametrize(("old", "new", "key"), BAD_VALUES, ids=[b[2] + ":" + b[1].split("\n")[-1] for b in BAD_VALUES])
def test_bad_suite_value_exits_2_before_any_cell(tmp_path, capsys, old, new, key) -> None:
    text = tiny_suite_text(["random"], rounds=2)
    assert old in text
    suite = tmp_path / "bad.toml"
    suite.write_text(text.replace(old, new, 1))
    out = tmp_path / "out"
    assert main(["run", "--suite", str(suite), "--out", str(out), *QUICK]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and key in err[0]
    assert not (out / "cells").exists()  # no cell ran


@pytest.mark.parametrize("args", [["--seeds", ","], ["--n-seeds", "0"], ["--workers", "-1"], ["--threads", "0"]])
def test_empty_or_bad_cli_values_are_usage_errors(tmp_path, args) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["run", "--suite", "smoke", "--out", str(tmp_path), *args])
    assert exc.value.code == 2


def test_missing_data_root_is_an_error_only_when_needed(tmp_path, capsys) -> None:
    suite = tmp_path / "tiny.toml"
    suite.write_text(tiny_suite_text(["random"], rounds=1))
    assert main(["run", "--suite", str(suite), "--out", str(tmp_path / "o"), "--data-root", str(tmp_path / "nope"),
                 "--dry-run"]) == 0
    assert "does not exist" in capsys.readouterr().err  # a warning line: the embedded data do not need it
    real = tmp_path / "real.toml"
    real.write_text('name = "r"\nstrategies = ["random"]\n[[datasets]]\nname = "ham10000"\n')
    assert main(["run", "--suite", str(real), "--out", str(tmp_path / "o2"), "--data-root",
                 str(tmp_path / "nope")]) == 2
    assert "ham10000" in capsys.readouterr().err


def test_grids_keep_loss_options(tmp_path) -> None:
    from xalbench.planning import plan_suite
    from xalbench.plugins import load_registry
    from xalbench.suite import parse_suite

    text = tiny_suite_text(["random"], rounds=1).replace('losses = ["ce"]', 'losses = [{ name = "dice", options = { alpha = 0.2 } }]')
    plan = plan_suite(load_registry(), parse_suite(text, where="t"), out_dir=str(tmp_path), strategies=["margin"])
    assert {c.method.loss.options.get("alpha") for c in plan.cells} == {0.2}
    assert {c.method.strategy.name for c in plan.cells} == {"margin"}


def test_dry_run_prints_the_plan_and_runs_nothing(one_seed_run, capsys) -> None:
    suite, out = one_seed_run
    assert main(["run", "--suite", str(suite), "--out", str(out), "--n-seeds", "3", "--dry-run"]) == 0
    text = capsys.readouterr().out
    listing = [line.split() for line in text.splitlines() if line.startswith("  ")]
    assert {status for status, key in listing if key.endswith("seed0")} == {"finished"}
    assert {status for status, key in listing if key.endswith("seed2")} == {"run"}
    assert "estimated time" in text and "finished cell(s) of this suite" in text
    assert not (out / "cells" / "lesions__random+ce__seed2.json").exists()


def test_non_tty_log_has_one_line_per_finished_cell(tmp_path) -> None:
    suite = tmp_path / "tiny.toml"
    suite.write_text(tiny_suite_text(["random", "entropy"], rounds=1))
    proc = subprocess.run([sys.executable, "-m", "xalbench.cli", "run", "--suite", str(suite), "--out",
                           str(tmp_path / "o"), "--seeds", "0", "--workers", "1", "--isolation", "inline"],
                          capture_output=True, text=True, env={**os.environ}, timeout=600)
    assert proc.returncode == 0, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("[")]
    assert len(lines) == 2 and "ETA" in lines[-1] and "lesions__" in lines[0]
