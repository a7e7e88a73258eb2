"""End to end through ``xalbench run`` (in this process): cheating strategies installed from an outside
distribution, on a hidden-mask track, beside honest ones — each cheater finds nothing or fails its own cell
with a named rule, and honest cells are bitwise what they are in a run without the cheaters."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import dist_on_path
from tests.sandbox.cheaters import (
    CHEATER_MODULE,
    LABEL_CHEATERS,
    MUTATION_CHEATERS,
    WRITE_CHEATERS,
    cheat_suite_text,
    install_cheaters,
)
from xalbench.cli import main
from xalbench.results import iter_results

pytestmark = [pytest.mark.slow, pytest.mark.cost(32)]  # whole runs of the cheater distribution


def _run(suite: Path, out: Path, site: Path) -> int:
    """``xalbench run`` in this process with the cheater distribution on ``sys.path`` (its sandboxes and the
    cell's process get it from there); the exit code."""
    with dist_on_path(site, CHEATER_MODULE):
        return main(["run", "--suite", str(suite), "--out", str(out), "--quiet", "--workers", "1"])


def _by_strategy(out: Path) -> dict[str, dict[str, Any]]:
    return {r["cell"]["strategy"]: r for r in iter_results(out)}


def _picks(result: dict[str, Any]) -> list[list[int]]:
    return [r["queried"] for r in result["rounds"]]


def _comparable(result: dict[str, Any]) -> Any:
    return result["status"], [{k: v for k, v in r.items() if k != "timings"} for r in result["rounds"]]


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    return install_cheaters(tmp_path_factory.mktemp("site"))


@pytest.fixture(scope="module")
def cheat_run(site, tmp_path_factory) -> dict[str, dict[str, Any]]:
    root = tmp_path_factory.mktemp("cheat")
    strategies = ["random", "entropy", "honest-first", *LABEL_CHEATERS, *MUTATION_CHEATERS, *WRITE_CHEATERS,
                  "sleeper"]
    suite = root / "suite.toml"
    suite.write_text(cheat_suite_text(strategies, timeout=5.0))
    assert _run(suite, root / "out", site) == 1  # the write cheaters and the sleeper fail their own cells
    return _by_strategy(root / "out")


def test_label_cheaters_find_nothing_in_their_sandbox(cheat_run) -> None:
    honest = _picks(cheat_run["honest-first"])
    for name in LABEL_CHEATERS:
        assert cheat_run[name]["status"] == "ok"
        assert _picks(cheat_run[name]) == honest, name  # they picked exactly what they pick when blind


def test_model_changes_do_not_persist_into_later_rounds(cheat_run) -> None:
    honest = _picks(cheat_run["honest-first"])
    for name in MUTATION_CHEATERS:
        assert cheat_run[name]["status"] == "ok"
        assert _picks(cheat_run[name]) == honest, name  # round 1 on: the change died with the round's model


def test_writers_and_the_sleeper_fail_their_own_cells_with_named_rules(cheat_run) -> None:
    for name, rule in WRITE_CHEATERS.items():
        assert cheat_run[name]["status"] == "failed" and cheat_run[name]["error"]["rule"] == rule
    assert cheat_run["sleeper"]["status"] == "failed" and cheat_run["sleeper"]["error"]["rule"] == "timeout"


def test_honest_cells_are_bitwise_those_of_a_run_without_cheaters(cheat_run, site, tmp_path) -> None:
    suite = tmp_path / "suite.toml"
    suite.write_text(cheat_suite_text(["random", "entropy"], timeout=5.0))
    assert _run(suite, tmp_path / "out", site) == 0
    clean = _by_strategy(tmp_path / "out")
    for name in ("random", "entropy"):
        assert _comparable(clean[name]) == _comparable(cheat_run[name])


def test_check_plugin_fails_every_cheater_that_could_reach_hidden_data(site, capsys) -> None:
    """The kit fails the cheaters that find hidden data where the kit plants it (the garbage collector) or
    write into their copies; a private-attribute reader finds nothing in the kit, as in a run, and passes.
    ``xalbench check-plugin`` in this process, the distribution on ``sys.path`` (its sandboxes get it too)."""
    with dist_on_path(site, CHEATER_MODULE):
        for name, code in (("cheat-gc", 1), ("cheat-pool-write", 1), ("cheat-private", 0)):
            assert main(["check-plugin", name, "--timeout", "20"]) == code, (name, capsys.readouterr().out[-2000:])
            out = capsys.readouterr().out
            assert name in out and ("failed" in out) == bool(code), out[-2000:]
