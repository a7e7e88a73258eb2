"""The repository's own leaderboard: every shipped submission passes `check` against the shipped suites
and reference, and the generated pages are exactly what `build` makes of them (what CI's
`xalbench leaderboard build --check` enforces on every pull request)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.cost(15)  # seconds on 2 cores: files start longest first (tests/conftest.py)

BOARD = Path(__file__).resolve().parents[2] / "leaderboard"


@pytest.mark.slow
def test_shipped_board_is_valid_and_current() -> None:
    from tests.leaderboard.conftest import make_runtime
    from xalbench.leaderboard.build import build
    from xalbench.leaderboard.check import load_reference

    if not any((BOARD / "submissions").glob("*/*")):
        pytest.skip("no submissions shipped")
    assert build(BOARD, reference=load_reference(BOARD / "reference.json"), runtime=make_runtime(), check=True) == []
