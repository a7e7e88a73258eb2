"""The built-in ``local`` executor: this process (1 worker) or local processes via joblib/loky.

Every cell runs with an explicit thread count (``--threads``), whatever the number of
workers, so ``--workers N`` gives results identical to ``--workers 1`` (loky would otherwise
cap BLAS threads at cores/N and change bits).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

from xalbench.execution.base import Executor
from xalbench.harness.cell import run_cell

__all__ = ["LocalExecutor"]


class LocalExecutor(Executor):
    """Cells in this process (``--workers 1``) or in local loky worker processes."""

    name: ClassVar[str] = "local"
    summary: ClassVar[str] = "This machine: the planning process (1 worker) or local processes (joblib/loky)"

    def run(self, cells: list[Any], *, workers: int, runtime: Any) -> Iterator[dict[str, Any]]:
        if workers <= 1 or len(cells) == 1:
            for cell in cells:
                yield run_cell(cell, runtime)
            return
        from joblib import Parallel, delayed

        yield from Parallel(n_jobs=min(workers, len(cells)), backend="loky", return_as="generator_unordered")(
            delayed(run_cell)(cell) for cell in cells
        )
