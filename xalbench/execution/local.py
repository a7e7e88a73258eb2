"""The built-in ``local`` executor: this process (1 worker) or local processes via joblib/loky
(:func:`~xalbench.utils.processes.map_in_processes`: workers are not restarted when their memory grows).

Every cell runs with an explicit thread count (``--threads``), whatever the number of
workers, so ``--workers N`` gives results identical to ``--workers 1`` (loky would otherwise
cap BLAS threads at cores/N and change bits).

With ``--device cuda`` and several visible GPUs, one worker process per GPU (at most
``--workers``) runs one cell at a time on its own ``cuda:i``; the next cell goes to whichever
GPU frees up first (:class:`~xalbench.execution.gpus.GpuQueues`).
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, ClassVar

from xalbench.execution.base import Executor
from xalbench.execution.common import lost_cell_result, run_cell_task
from xalbench.execution.gpus import GpuQueues, on_device, prepare_device, wants_gpu_queues
from xalbench.harness.cell import run_cell
from xalbench.utils.processes import map_in_processes

__all__ = ["LocalExecutor", "run_gpu_queues"]


def run_gpu_queues(queues: GpuQueues, task: Callable[[Any], dict[str, Any]] = run_cell_task) -> Iterator[dict[str, Any]]:
    """Run ``queues`` with one single-process pool per GPU; yield results as cells finish."""
    ctx = multiprocessing.get_context("spawn")
    pools = {device: ProcessPoolExecutor(max_workers=1, mp_context=ctx) for device in queues.devices}
    running: dict[Future[dict[str, Any]], tuple[str, Any]] = {}
    try:
        for device, cell in queues.start():
            running[pools[device].submit(task, cell)] = (device, cell)
        while running:
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                device, cell = running.pop(future)
                try:
                    result = future.result()
                except BrokenProcessPool:
                    pools[device].shutdown(wait=False)
                    pools[device] = ProcessPoolExecutor(max_workers=1, mp_context=ctx)
                    result = lost_cell_result(cell, "WorkerDied", f"the worker process on {device} died "
                                              "(out of memory or killed); the next run resumes the cell")
                following = queues.next(device)
                if following is not None:
                    running[pools[device].submit(task, following[1])] = following
                yield result
    finally:
        for pool in pools.values():
            pool.shutdown(wait=True, cancel_futures=True)


class LocalExecutor(Executor):
    """Cells in this process (``--workers 1``) or in local loky worker processes."""

    name: ClassVar[str] = "local"
    summary: ClassVar[str] = "This machine: the planning process (1 worker) or local processes (joblib/loky)"

    def run(self, cells: list[Any], *, workers: int, runtime: Any) -> Iterator[dict[str, Any]]:
        if wants_gpu_queues(cells):
            queues = GpuQueues.for_run(cells, workers)
            if len(queues.devices) > 1:
                yield from run_gpu_queues(queues)
                return
            cells = [on_device(c, "cuda:0") if c.device == "cuda" else c for c in cells]
            workers = 1
        if workers <= 1 or len(cells) == 1:
            for cell in cells:
                prepare_device(cell.device)
                yield run_cell(cell, runtime)
            return
        yield from map_in_processes(run_cell, ((cell,) for cell in cells), min(workers, len(cells)))
