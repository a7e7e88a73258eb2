"""A suite's calibration file: the loader finds the shipped one, rejects damaged ones, and the builder's
between-seed SDs of paired differences are the ones a hand computation gives."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

import pytest

from xalbench.errors import ConfigError
from xalbench.report.calibrate import build_calibration, main
from xalbench.results import SCHEMA_VERSION, seal
from xalbench.suites.calibration import calibration_path, load_calibration
from xalbench.suites.plugin import suite_sources


@pytest.fixture(scope="module")
def registry() -> Any:
    from xalbench.plugins import load_registry

    return load_registry()


EMBEDDED = {"synth-lesion-2d", "synth-lesion-2d-imbalanced", "synth-cxr-multilabel", "synth-lesion-3d"}


def test_the_main_job_ships_a_calibration_of_its_embedded_datasets() -> None:
    data = load_calibration("medical")
    assert data is not None and data["suite"] == "medical"
    medical = next(s for s in suite_sources() if s.name == "medical").load()
    assert set(data["datasets"]) == EMBEDDED == {d.display for d in medical.datasets if not d.optional}
    for ds, entry in data["datasets"].items():
        assert entry["n_seeds"] >= 5, ds
        assert entry["cell_seconds"] > 0, ds
        assert entry["vs_baseline"]["accuracy"] > 0, ds
        assert all(c["n"] == entry["n_seeds"] and c["sd"] > 0 for c in entry["comparisons"]), ds
    questions = {q for entry in data["datasets"].values() for q in entry["questions"]}
    assert {"sal-rq1", "egal", "aeig", "due", "gestalt"} <= questions


def test_a_suite_without_a_calibration_has_none() -> None:
    assert load_calibration("smoke") is None
    assert load_calibration("no-such-suite") is None
    assert calibration_path("medical") == Path(next(s for s in suite_sources() if s.name == "medical").path
                                               ).with_name("medical.calibration.json")


def _suite_dir(tmp_path: Path, calibration: str) -> Path:
    (tmp_path / "mine.toml").write_text('name = "mine"\n', encoding="utf-8")
    (tmp_path / "mine.calibration.json").write_text(calibration, encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize(("text", "says"), [("{not json", "cannot be read as JSON"),
                                             ('{"suite": "mine"}', "'datasets' table"),
                                             ('{"suite": "other", "datasets": {}}', "is for suite 'other'")])
def test_a_damaged_calibration_is_one_clear_error(tmp_path: Path, text: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        load_calibration("mine", _suite_dir(tmp_path, text))


def _cell(ds: str, strategy: str, loss: str, seed: int, acc: float, dice: float,
          hist: tuple[int, ...] = (4, 4, 4), seconds: float = 1.0) -> dict[str, Any]:
    rounds = [{"round": 0, "metrics": {"accuracy": acc}, "acquired_class_histogram": list(hist),
               "timings": {"train_s": seconds, "eval_s": 0.0, "eval_maps_s": 5.0, "query_s": 0.0, "strategy_s": 7.0,
                           "io_s": 0.0}}]
    return {"status": "ok", "suite_hash": "abc", "rounds": rounds,
            "cell": {"dataset": ds, "method": f"{strategy}+{loss}", "strategy": strategy, "loss": loss, "seed": seed,
                     "trainer": "standard", "mask_source": "none", "strategy_options": {}, "loss_options": {},
                     "suite": "mine"},
            "summary": {"aulc_acc": acc, "aulc_dice": dice}}


def test_the_builder_gives_the_paired_sds_a_hand_computation_gives(registry) -> None:
    acc = {"random+ce": [0.60, 0.70, 0.65], "random+res": [0.62, 0.69, 0.70], "entropy+ce": [0.70, 0.72, 0.80],
           "egal+ce": [0.71, 0.80, 0.79]}
    dice = {"random+ce": [0.30, 0.31, 0.35], "random+res": [0.50, 0.40, 0.60], "entropy+ce": [0.3, 0.3, 0.3],
            "egal+ce": [0.3, 0.3, 0.3]}
    results = [_cell("d", *m.split("+"), seed, acc[m][seed], dice[m][seed], seconds=2.0 + seed)
               for m in acc for seed in range(3)]
    # imbalanced pool: random acquires class 0 mostly; aeig more of classes 1 and 2 than entropy
    results += [_cell("d", "aeig", "ce", s, 0.7, 0.3, hist=(6, 3 + s, 3), seconds=2.0 + s) for s in range(3)]
    results = [r for r in results if r["cell"]["strategy"] != "random" or r["cell"]["loss"] != "ce"] + [
        _cell("d", "random", "ce", s, acc["random+ce"][s], dice["random+ce"][s], hist=(10, 1, 1), seconds=2.0 + s)
        for s in range(3)]
    results = [r for r in results if r["cell"]["strategy"] != "entropy"] + [
        _cell("d", "entropy", "ce", s, acc["entropy+ce"][s], 0.3, hist=(8, 2, 2 - s % 2), seconds=2.0 + s)
        for s in range(3)]
    data = build_calibration(results, suite="mine", registry=registry, wall_seconds=30.0, workers=2)
    entry = data["datasets"]["d"]

    def sd(a: str, b: str, values: dict[str, list[float]]) -> float:
        return round(statistics.stdev([x - y for x, y in zip(values[a], values[b], strict=True)]), 5)

    by = {(c["question"], c["a"], c["b"], c["quantity"]): c["sd"] for c in entry["comparisons"]}
    assert by[("sal-rq1", "random+res", "random+ce", "dice")] == sd("random+res", "random+ce", dice)
    assert by[("sal-rq1", "random+res", "random+ce", "accuracy")] == sd("random+res", "random+ce", acc)
    assert by[("egal", "egal+ce", "random+ce", "accuracy")] == sd("egal+ce", "random+ce", acc)
    aeig = [(3 + s + 3) / (12 + s) for s in range(3)]
    ent = [(2 + 2 - s % 2) / (12 - s % 2) for s in range(3)]
    assert by[("aeig", "aeig+ce", "entropy+ce", "minority share")] == round(
        statistics.stdev([a - e for a, e in zip(aeig, ent, strict=True)]), 5)
    assert ("sal-rq1", "egal+ce", "random+ce", "dice") not in by  # egal+ce is a ce method, not supervision
    assert entry["questions"]["sal-rq1"]["dice"] == by[("sal-rq1", "random+res", "random+ce", "dice")]
    assert entry["vs_baseline"]["accuracy"] == round(statistics.median(
        [sd(m, "random+ce", acc) for m in ("random+res", "entropy+ce", "egal+ce")] + [
            statistics.stdev([0.7 - x for x in acc["random+ce"]])]), 5)
    assert entry["n_seeds"] == 3 and entry["cell_seconds"] == 3.0  # train + eval + query + io, parts not twice
    assert data["overhead_seconds_per_cell"] == round((30.0 * 2 - 3.0 * len(results)) / len(results), 3)


def test_equal_by_construction_pairs_are_left_out_and_the_cli_writes_json(tmp_path: Path) -> None:
    cells = tmp_path / "run" / "cells"
    cells.mkdir(parents=True)
    for s in range(2):
        for loss in ("due", "due-baseline-plus", "ce"):
            r = _cell("d", "entropy", loss, s, 0.5 + 0.1 * s, 0.4)
            (cells / f"d__entropy+{loss}__seed{s}.json").write_text(json.dumps(seal({**r, "schema": SCHEMA_VERSION})),
                                                                     encoding="utf-8")
    out = tmp_path / "cal.json"
    assert main([str(tmp_path / "run"), "-o", str(out)]) == 0
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["suite"] == "mine" and data["datasets"]["d"]["n_seeds"] == 2
    assert not [c for c in data["datasets"]["d"]["comparisons"] if c["question"] == "due"]
