"""Collect every benchmark's ratios and print them as one markdown table at the end of the run.

``python -m pytest benchmarks`` (or ``tox -e bench``): after each test, the ``ratio*`` keys of
its ``benchmark.extra_info`` and, for the sandbox benchmark, the ratios it prints become rows
of :mod:`table`; the scale benchmarks add theirs with ``table.record``. The table is printed
in pytest's terminal summary, whatever the capture mode. Benchmarks run one at a time: the test
suite's pytest-xdist workers (``-n`` in the project's ``addopts``) would time them against each other.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import table  # noqa: E402

_PRINTED = pytest.StashKey[io.StringIO]()


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """No pytest-xdist workers for benchmarks (before xdist's own configure starts them)."""
    if hasattr(config.option, "numprocesses"):
        config.option.numprocesses = 0
        config.option.dist = "no"


class _Tee(io.TextIOBase):
    """Forward writes to ``stream`` and keep a copy (the test's printed ratios)."""

    def __init__(self, stream: Any, copy: io.StringIO) -> None:
        self._stream, self._copy = stream, copy

    def write(self, text: str) -> int:
        self._copy.write(text)
        return self._stream.write(text)

    def flush(self) -> None:
        self._stream.flush()


@pytest.fixture(autouse=True)
def _keep_printed(request: pytest.FixtureRequest) -> Iterator[None]:
    copy = io.StringIO()
    request.node.stash[_PRINTED] = copy
    stream = sys.stdout
    sys.stdout = _Tee(stream, copy)
    try:
        yield
    finally:
        sys.stdout = stream


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.passed:
        return
    module = Path(str(item.fspath)).stem
    bench = getattr(item, "funcargs", {}).get("benchmark")
    if bench is not None and getattr(bench, "extra_info", None):
        table.ROWS.extend(table.from_extra_info(module, item.name, dict(bench.extra_info)))
    if module == "test_bench_sandbox" and _PRINTED in item.stash:
        table.ROWS.extend(table.from_sandbox_output(item.stash[_PRINTED].getvalue()))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if table.ROWS:
        terminalreporter.write_sep("=", "benchmark table")
        terminalreporter.write_line(table.render())
