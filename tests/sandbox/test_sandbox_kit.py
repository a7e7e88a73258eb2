"""The conformance kit runs strategies in the sandbox and its leak checks catch every cheater."""

from __future__ import annotations

import pytest

from tests.sandbox.cheaters import LABEL_CHEATERS, MUTATION_CHEATERS, WRITE_CHEATERS
from xalbench.errors import StrategyContractError, StrategyTimeoutError
from xalbench.testing import ALL_CHECKS, LEAK_CHECKS, check_strategy, using_time_limit
from xalbench.testing.checks import check_query_returns_k_valid_indices, check_runs_within_time_bound
from xalbench.testing.leak_checks import (
    check_no_side_effects,
    check_picks_ignore_hidden_data,
    check_sandbox_matches_inline,
    time_limit,
)

pytestmark = pytest.mark.cost(14)  # seconds on 2 cores: files start longest first (tests/conftest.py)


def _cls(cheaters, name):
    return {c.name: c for c in cheaters.CHEATERS}[name]


def test_leak_checks_are_part_of_the_kit():
    assert set(LEAK_CHECKS) <= set(ALL_CHECKS)


def test_honest_strategy_passes_the_leak_checks(cheaters):
    for check in LEAK_CHECKS:
        check(cheaters.HonestFirst)


@pytest.mark.parametrize("name", [n for n in LABEL_CHEATERS if n != "cheat-private"])
def test_hidden_data_readers_fail_the_kit(name, cheaters):
    with pytest.raises(AssertionError, match="reads data it must not see"):
        check_picks_ignore_hidden_data(_cls(cheaters, name))


def test_private_attribute_reader_finds_nothing_in_the_kit_as_in_a_run(cheaters):
    """The kit's context is built like a run's: ``ctx._pool_roi`` is empty on a hidden-mask track, so the
    private-attribute cheater picks what an honest strategy picks, in the kit as in the sandbox."""
    check_picks_ignore_hidden_data(cheaters.CheatPrivate)
    check_sandbox_matches_inline(cheaters.CheatPrivate)


@pytest.mark.parametrize("name", [*MUTATION_CHEATERS, *WRITE_CHEATERS])
def test_model_and_data_changes_fail_the_kit(name, cheaters):
    with pytest.raises(AssertionError, match="changed the model|wrote into"):
        check_no_side_effects(_cls(cheaters, name))


def test_process_dependent_strategy_fails_the_kit(cheaters):
    with pytest.raises(AssertionError, match="depends on"):
        check_sandbox_matches_inline(cheaters.WhereAmI)


def test_kit_queries_run_in_a_sandbox_and_a_hang_is_killed_at_the_time_limit(cheaters):
    with pytest.raises(StrategyContractError) as info:  # a crash in the kit is a crash of the sandbox
        check_query_returns_k_valid_indices(cheaters.Crasher)
    assert info.value.rule == "crash"
    with using_time_limit(1.0):
        assert time_limit() == 1.0
        with pytest.raises(StrategyTimeoutError, match="1 s"):
            check_runs_within_time_bound(cheaters.Sleeper)
    assert time_limit() == 60.0


@pytest.mark.slow
def test_check_strategy_takes_a_time_limit(cheaters):
    rows = {r["check_name"]: r for r in check_strategy(cheaters.Sleeper, on_fail=None, time_limit=0.5)}
    assert rows["check_runs_within_time_bound"]["status"] == "failed"
    assert isinstance(rows["check_runs_within_time_bound"]["exception"], StrategyTimeoutError)
    with pytest.raises(ValueError, match="> 0"):
        check_strategy(cheaters.HonestFirst, time_limit=0)
