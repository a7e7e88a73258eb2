"""The executor contract: run cells somewhere and yield their results as they finish.

A cell is a pure top-level function of a picklable :class:`~xalbench.harness.identity.CellSpec`
that writes its own result file (:func:`xalbench.harness.cell.run_cell`), so any executor gives
bitwise the same results on the same hardware. Executors are registered components
(``register_executors``) chosen with ``xalbench run --executor NAME``.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator
from typing import Any, ClassVar

from xalbench.base import Component

__all__ = ["Executor"]


class Executor(Component, abc.ABC):
    """Runs cells; ``workers`` is the CLI's ``--workers`` (``0`` = the back end's default)."""

    kind: ClassVar[str] = "executor"

    @abc.abstractmethod
    def run(self, cells: list[Any], *, workers: int, runtime: Any) -> Iterator[dict[str, Any]]:
        """Run every cell in ``cells`` and yield each result dict as it finishes (any order).

        ``runtime`` is the planning process's :class:`~xalbench.harness.runtime.Runtime`; an
        executor that runs cells in this process passes it to ``run_cell`` (no second registry);
        others leave the worker to build its own from ``cell.selection``."""
