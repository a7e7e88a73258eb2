"""The ``ray`` executor (optional extra ``xalbench[ray]``): cells as Ray tasks.

``--executor ray`` starts a local Ray instance for the run (``num_cpus`` = ``--workers`` × the
cell's threads) and shuts it down after; ``--executor-option address=auto`` (or
``ray://HOST:10001``, ``HOST:6379``) joins a running cluster instead. Each cell is one task of
:func:`~xalbench.execution.common.run_cell_task` asking for ``threads`` CPUs (and one GPU with
``--device cuda``: Ray sets ``CUDA_VISIBLE_DEVICES`` for the task, which then runs on ``cuda``).
Results are yielded as tasks finish (``ray.wait``). A task whose worker died (out of memory, node
lost) gives the cell a ``failed`` result; the next run resumes it from its checkpoint.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

from xalbench.errors import ConfigError
from xalbench.execution.base import Executor
from xalbench.execution.common import lost_cell_result, run_cell_task
from xalbench.options import Options

__all__ = ["RayExecutor"]


class RayExecutor(Executor):
    """Cells as Ray tasks on a local Ray instance or a running cluster (``address=…``)."""

    name: ClassVar[str] = "ray"
    summary: ClassVar[str] = "Ray tasks: a local Ray instance, or a running cluster (address=auto or ray://HOST:PORT)"

    @dataclass(frozen=True)
    class Options(Options):
        address: str = ""  #: "" = start a local Ray for the run; "auto" or an address = join a cluster
        num_cpus: int = 0  #: local Ray: CPUs to offer (0 = --workers × the cells' threads)
        gpus_per_cell: float = 1.0  #: GPUs each cell asks for with --device cuda
        memory_mb: int = 0  #: memory each cell reserves (Ray's scheduling resource; 0 = none)
        max_retries: int = 0  #: re-runs of a cell whose worker died (the cell resumes from its checkpoint)

        def __post_init__(self) -> None:
            if min(self.num_cpus, self.memory_mb, self.max_retries) < 0 or self.gpus_per_cell < 0:
                raise ValueError("num_cpus, gpus_per_cell, memory_mb and max_retries must be ≥ 0")

    def _start(self, cells: list[Any], workers: int) -> bool:
        """Connect or start Ray; ``True`` if this run started it (and shuts it down)."""
        try:
            import ray
        except ImportError:
            raise ConfigError("--executor ray needs Ray: pip install 'xalbench[ray]'") from None
        if ray.is_initialized():
            return False
        o = self.options
        common = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
        if o.address:
            ray.init(address=o.address, **common)
        else:
            threads = max(c.threads for c in cells)
            # Local workers import what this process can (plugins given as extra modules), as spawned ones do.
            env = {"env_vars": {"PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}}
            ray.init(num_cpus=o.num_cpus or max(1, workers) * threads, runtime_env=env, **common)
        return True

    def run(self, cells: list[Any], *, workers: int, runtime: Any) -> Iterator[dict[str, Any]]:
        if not cells:
            return
        started = self._start(cells, workers)
        import ray

        try:
            o = self.options
            task = ray.remote(run_cell_task)
            pending: dict[Any, Any] = {}
            for cell in cells:
                opts: dict[str, Any] = {"num_cpus": cell.threads, "max_retries": o.max_retries}
                if cell.device.startswith("cuda"):
                    opts["num_gpus"] = o.gpus_per_cell
                if o.memory_mb:
                    opts["memory"] = o.memory_mb * 2**20
                pending[task.options(**opts).remote(cell)] = cell
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                cell = pending.pop(ready[0])
                try:
                    result = ray.get(ready[0])
                except ray.exceptions.RayError as exc:
                    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                    result = lost_cell_result(cell, type(exc).__name__, f"Ray could not run this cell ({first})")
                yield result
        finally:
            if started:
                ray.shutdown()
