"""Plan by power: the calibration's format, the seed count ``--n-seeds auto`` chooses, the dry run's power
table and wall-time estimate (on fabricated calibrations and timings), and one slow check of the estimate
against a measured tiny run."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.conftest import TINY_SUITE
from xalbench.cli import main
from xalbench.errors import ConfigError
from xalbench.power import Calibration, PowerRow, choose_n_seeds, find_calibration, wall_seconds

SUITE = TINY_SUITE.replace('strategies = {strategies}\nlosses = ["ce"]\n',
                           '[[methods]]\nstrategy = "random"\nloss = "ce"\n\n'
                           '[[methods]]\nstrategy = "random"\nloss = "dice"\n').format(rounds=1)


def calibration(sd_dice: float = 0.02, seconds: float = 2.0) -> dict:
    return {"suite": "tiny", "datasets": {"lesions": {
        "n_seeds": 5, "cell_seconds": seconds,
        "questions": {"sal-rq1": {"dice": sd_dice, "aulc_acc": 0.01}},
        "vs_baseline": {"accuracy": 0.03, "aulc_dice": 0.04}}}}


def write_suite(tmp_path: Path, cal: dict | None) -> Path:
    suite = tmp_path / "tiny.toml"
    suite.write_text(SUITE, encoding="utf-8")
    if cal is not None:
        (tmp_path / "tiny.calibration.json").write_text(json.dumps(cal), encoding="utf-8")
    return suite


# ----------------------------------------------------------------------------- the seed count
def test_auto_seeds_is_the_hand_computed_count() -> None:
    """SD 0.02, target 0.03: MDE(5) = (t_0.975,4 + t_0.8,4)·0.02/√5 = (2.776 + 0.941)·0.00894 = 0.0332 > 0.03,
    MDE(6) = (2.571 + 0.920)·0.02/√6 = 0.0285 ≤ 0.03 → 6 seeds. A calmer dataset (SD 0.01) does not
    matter; a row that is not a question's primary AULC quantity (SD 0.5) does not count."""
    rows = [PowerRow("a", "q", "dice", "AULC_dice", 0.02, True), PowerRow("b", "q", "dice", "AULC_dice", 0.01, True),
            PowerRow("a", "q2", "share", "share", 0.5, False), PowerRow("b", "q3", "iou", "AULC_IoU", float("nan"), True)]
    n, worst = choose_n_seeds(rows, 0.03)
    assert n == 6 and worst.dataset == "a"
    assert worst.mde(5) == pytest.approx(0.0332, abs=5e-4) and worst.mde(6) == pytest.approx(0.0285, abs=5e-4)
    assert choose_n_seeds(rows[:1], 0.2)[0] == 3  # never fewer than a p-value needs
    with pytest.raises(ConfigError, match="no seed count up to 50"):
        choose_n_seeds(rows, 0.001)
    with pytest.raises(ConfigError, match="at least one planned question"):
        choose_n_seeds(rows[2:], 0.03)


def test_calibration_format_and_its_errors(tmp_path: Path) -> None:
    cal = Calibration.from_dict(calibration(), "x.json", {"aulc_acc": "accuracy", "aulc_dice": "dice"})
    entry = cal.datasets["lesions"]
    assert entry.questions == {"sal-rq1": {"dice": 0.02, "accuracy": 0.01}}
    assert entry.vs_baseline == {"accuracy": 0.03, "dice": 0.04} and entry.cell_seconds == 2.0
    assert cal.startup_seconds == 12.0
    for bad, what in (({}, "'datasets'"), ({"datasets": {"d": {"n_seeds": 0}}}, "n_seeds"),
                      ({"datasets": {"d": {"n_seeds": 1, "vs_baseline": {"accuracy": 0.1}}}}, "n_seeds ≥ 2"),
                      ({"datasets": {"d": {"n_seeds": 3, "questions": {"q": {"dice": -1}}}}}, "≥ 0"),
                      ({"datasets": {}, "overhead_seconds_per_cell": -1}, "overhead_seconds_per_cell")):
        with pytest.raises(ConfigError, match=re.escape(what)):
            Calibration.from_dict(bad, "x.json")
    suite = write_suite(tmp_path, calibration())
    from xalbench.suite import SuiteSource

    spec = SuiteSource(name="tiny", path=str(suite)).load()
    assert find_calibration(spec).source.endswith("tiny.calibration.json")  # found beside the suite's TOML
    with pytest.raises(ConfigError, match="does not exist"):
        find_calibration(spec, str(tmp_path / "none.json"))


# ----------------------------------------------------------------------------- wall time
def test_wall_time_formula_on_fabricated_timings() -> None:
    """4 cells × 10 s + 2 cells × 30 s over 2 workers, plus 12 s start-up: 100 / 2 + 12 = 62 s."""
    assert wall_seconds({"a": 4, "b": 2}, {"a": 10.0, "b": 30.0}, 2, 12.0) == (62.0, [])
    assert wall_seconds({"a": 1}, {"a": 10.0}, 4, 12.0) == (22.0, [])  # one cell keeps one worker busy
    assert wall_seconds({"a": 4, "b": 2}, {"a": 10.0}, 2) == (None, ["b"])
    assert wall_seconds({}, {}, 2) == (0.0, [])


def test_dry_run_prints_power_and_time_and_auto_picks_the_seeds(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    suite = write_suite(tmp_path, calibration())
    out = tmp_path / "out"
    assert main(["run", "--suite", str(suite), "--dry-run", "--n-seeds", "auto", "--target-mde", "0.03",
                 "--out", str(out), "--workers", "1"]) == 0
    captured = capsys.readouterr()
    assert "--n-seeds auto: 6 seeds" in captured.err
    text = captured.out
    assert "lesions__random+dice__seed5" in text and "seed6" not in text
    assert "power at 6 seed(s)" in text
    row = next(line for line in text.splitlines() if "sal-rq1 *" in line)
    assert row.split()[-2:] == ["0.020", "0.028"]  # 0.0285 at 6 seeds
    # 12 cells × 2 s / 1 worker + 12 s start-up = 36 s
    assert "estimated time with 1 worker(s), wall clock: 0:36" in text
    assert main(["run", "--suite", str(suite), "--dry-run", "--n-seeds", "3", "--out", str(out),
                 "--calibration", str(tmp_path / "tiny.calibration.json")]) == 0
    assert "power at 3 seed(s)" in capsys.readouterr().out
    assert main(["run", "--suite", str(suite), "--dry-run", "--n-seeds", "3", "--target-mde", "0.03"]) == 2
    assert "--target-mde is used with --n-seeds auto" in capsys.readouterr().err


def test_the_per_cell_overhead_of_the_calibration_run_counts(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """Time no round records (starting a cell's process, building its data): 12 cells × (2 s + 1.5 s) + 12 s."""
    suite = write_suite(tmp_path, {**calibration(), "overhead_seconds_per_cell": 1.5})
    assert main(["run", "--suite", str(suite), "--dry-run", "--n-seeds", "6", "--out", str(tmp_path / "out"),
                 "--workers", "1"]) == 0
    text = capsys.readouterr().out
    assert "wall clock: 0:54" in text and "+ 1.5 s per cell not in its rounds" in text


def test_auto_without_a_calibration_says_what_to_do(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    suite = write_suite(tmp_path, None)
    assert main(["run", "--suite", str(suite), "--dry-run", "--n-seeds", "auto", "--out", str(tmp_path / "o")]) == 2
    assert "needs a calibration" in capsys.readouterr().err
    assert main(["run", "--suite", str(suite), "--dry-run", "--out", str(tmp_path / "o")]) == 0
    text = capsys.readouterr().out
    assert "no calibration for this suite" in text and re.search(r"lesions\s+sal-rq1 \*\s+AULC_dice", text)


# ----------------------------------------------------------------------------- against a measured run
@pytest.mark.slow
def test_dry_run_estimate_within_2x_of_a_measured_tiny_run(tmp_path: Path) -> None:
    """Calibrate the cell-seconds on seed 0, estimate seeds 1–2 before running them, then run them: the
    estimate's work (without the start-up constant) is within 2× of the cell-seconds they recorded."""
    import xalbench
    from xalbench.cli.estimate import estimate_seconds
    from xalbench.planning import plan_suite
    from xalbench.plugins import PluginSelection
    from xalbench.report.power import calibration_from_results, cell_seconds

    registry = PluginSelection.from_env().registry()
    suite_path = write_suite(tmp_path, None)
    first = xalbench.run(str(suite_path), registry=registry, out_dir=str(tmp_path / "a"), seeds=[0],
                         isolation="inline")
    cal = calibration_from_results(first, registry, "tiny")
    assert cal["datasets"]["lesions"]["cell_seconds"] > 0
    (tmp_path / "tiny.calibration.json").write_text(json.dumps(cal), encoding="utf-8")
    from xalbench.suite import SuiteSource

    suite = SuiteSource(name="tiny", path=str(suite_path)).load()
    calibrated = find_calibration(suite, registry=registry)
    plan = plan_suite(registry, suite, out_dir=str(tmp_path / "b"), seeds=[1, 2], isolation="inline")
    estimate, basis = estimate_seconds(plan, plan.cells, 1, calibrated)
    assert estimate is not None and "calibration" in basis
    second = xalbench.run(str(suite_path), registry=registry, out_dir=str(tmp_path / "b"), seeds=[1, 2],
                          isolation="inline")
    measured = sum(cell_seconds(r) for r in second)
    ratio = (estimate - calibrated.startup_seconds) / measured
    print(f"estimate {estimate - calibrated.startup_seconds:.2f} s of work vs measured {measured:.2f} s: ratio {ratio:.2f}")
    assert 0.5 <= ratio <= 2.0, (estimate, measured)
