"""The ``dask`` executor on an in-process LocalCluster: bitwise the results of ``local``; lost workers."""

from __future__ import annotations

import types

import pytest

from tests.execution.conftest import comparable, retarget, run_with
from xalbench.errors import OptionsError

pytestmark = pytest.mark.cost(25)  # seconds on 2 cores: files start longest first (tests/conftest.py)

pytest.importorskip("distributed", reason="install xalbench[dask] to test the dask executor")

from xalbench.execution.dask import DaskExecutor  # noqa: E402


def test_threads_local_cluster_equals_local(planned, reference, tmp_path) -> None:
    executor = DaskExecutor({"processes": False, "n_workers": 2})
    assert run_with(executor, planned, tmp_path) == reference


@pytest.mark.slow
def test_process_local_cluster_equals_local(planned, reference, tmp_path) -> None:
    """A spawned worker process runs both cells (its cell host and the strategies' sandboxes); two workers
    share the cells in the threads test above."""
    executor = DaskExecutor({"processes": True, "n_workers": 1, "memory_limit": "3GiB"})
    assert run_with(executor, planned, tmp_path) == reference


def test_options_are_checked_when_built() -> None:
    with pytest.raises(OptionsError, match="did you mean 'n_workers'"):
        DaskExecutor({"n_worker": 2})
    with pytest.raises(OptionsError, match="resources"):
        DaskExecutor({"resources": "GPU=one"})


class _Future:
    def __init__(self, status: str, exc: BaseException | None = None) -> None:
        self.status, self._exc = status, exc

    def exception(self) -> BaseException | None:
        return self._exc


def _client(limit: int | None) -> types.SimpleNamespace:
    return types.SimpleNamespace(scheduler_info=lambda: {"workers": {"w": {"memory_limit": limit}}})


def test_killed_worker_gives_a_failed_result_naming_the_memory_limit(planned, tmp_path) -> None:
    from distributed import KilledWorker

    cell = retarget(planned.cells, tmp_path)[0]
    result = DaskExecutor()._outcome(_Future("error", KilledWorker("k", "w", 3)), cell, _client(2 * 2**30))
    assert result["status"] == "failed" and result["error"]["type"] == "KilledWorker"
    assert "2.0 GiB" in result["error"]["message"] and "memory_limit" in result["error"]["message"]
    assert result["cell"]["key"] == cell.key and "content_sha256" in result
    assert not cell.result_path.exists()  # no file: the next run resumes or reruns the cell


def test_killed_worker_after_the_cell_was_written_returns_that_file(planned, reference, tmp_path) -> None:
    from distributed import KilledWorker

    from xalbench.harness.cell import run_cell

    cell = retarget(planned.cells, tmp_path)[0]
    written = run_cell(cell)
    result = DaskExecutor()._outcome(_Future("error", KilledWorker("k", "w", 3)), cell, _client(None))
    assert result == written and comparable([result])[cell.key] == reference[cell.key]
