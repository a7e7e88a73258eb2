"""The ``dask`` executor: cells as ``dask.distributed`` tasks, on a running cluster or a ``LocalCluster``.

``--executor dask --executor-option scheduler=tcp://HOST:8786`` (or ``scheduler=FILE.json``, the
file ``dask scheduler --scheduler-file`` writes) sends cells to a running scheduler (workers must
see the results directory and have xalbench and the run's plugins installed); without ``scheduler`` an in-process ``LocalCluster`` of ``n_workers`` (default:
``--workers``) is started and closed with the run. Each cell is one ``client.submit`` of
:func:`~xalbench.execution.common.run_cell_task` (``pure=False``); results are yielded with
``as_completed`` as cells finish. The cell writes its own sealed file and sets its own torch
thread count, so results are bitwise those of ``--executor local``.

A worker process runs one cell at a time (torch's RNG and thread count are per process):
``processes=false`` (workers are threads of this process, handy for debugging) therefore runs
cells one after another. A cell whose worker died (``KilledWorker``, usually its memory limit)
gets a ``failed`` result naming the limit and resumes from its checkpoint on the next run.

With ``--device cuda`` and a ``LocalCluster``, one worker per visible GPU runs one cell at a
time on its own ``cuda:i``; on a running cluster, start one worker per GPU (each with its own
``CUDA_VISIBLE_DEVICES``) and ``--resources GPU=1``, and pass ``resources=GPU=1``.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

from xalbench.execution.base import Executor
from xalbench.execution.common import lost_cell_result, run_cell_task
from xalbench.execution.gpus import GpuQueues, wants_gpu_queues
from xalbench.options import Options

__all__ = ["DaskExecutor"]


def _resources(text: str) -> dict[str, float]:
    """``"GPU=1,MEM=2"`` → ``{"GPU": 1.0, "MEM": 2.0}``."""
    out: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, amount = part.partition("=")
        try:
            out[name.strip()] = float(amount) if sep else 1.0
        except ValueError:
            raise ValueError(f"resources takes NAME=AMOUNT[,NAME=AMOUNT], not {text!r}") from None
    return out


class DaskExecutor(Executor):
    """Cells as Dask tasks: a running scheduler (``scheduler=ADDRESS``) or an in-process ``LocalCluster``."""

    name: ClassVar[str] = "dask"
    summary: ClassVar[str] = "dask.distributed: a running scheduler (scheduler=ADDRESS) or an in-process LocalCluster"

    @dataclass(frozen=True)
    class Options(Options):
        scheduler: str = ""  #: address (or scheduler-file .json) of a running scheduler; "" = a LocalCluster
        n_workers: int = 0  #: LocalCluster workers (0 = --workers; with --device cuda, one per GPU)
        processes: bool = True  #: LocalCluster workers as processes (False: threads of this process)
        threads_per_worker: int = 1
        memory_limit: str = "auto"  #: per LocalCluster worker, e.g. "4GiB" ("auto" = memory / workers)
        allowed_failures: int = 1  #: LocalCluster: worker deaths a cell may cause before KilledWorker
        resources: str = ""  #: abstract resources each cell needs, e.g. "GPU=1"

        def __post_init__(self) -> None:
            if self.n_workers < 0 or self.threads_per_worker < 1 or self.allowed_failures < 0:
                raise ValueError("n_workers must be ≥ 0, threads_per_worker ≥ 1 and allowed_failures ≥ 0")
            _resources(self.resources)

    @contextlib.contextmanager
    def _client(self, n_workers: int) -> Iterator[Any]:
        import dask
        from distributed import Client, LocalCluster

        o = self.options
        if o.scheduler:
            where = {"scheduler_file": o.scheduler} if o.scheduler.endswith(".json") else {"address": o.scheduler}
            with Client(**where, set_as_default=False) as client:
                yield client
            return
        # Worker processes must be able to start the strategy's sandbox process (not daemonic).
        config = {"distributed.worker.daemon": False, "distributed.scheduler.allowed-failures": o.allowed_failures}
        memory: str | int = 0 if o.memory_limit.lower() in ("0", "none") else o.memory_limit
        with dask.config.set(config), LocalCluster(
                n_workers=n_workers, threads_per_worker=o.threads_per_worker, processes=o.processes,
                memory_limit=memory, dashboard_address=None, silence_logs=logging.ERROR) as cluster, \
                Client(cluster, set_as_default=False) as client:
            yield client

    def _limit(self, client: Any) -> str:
        limits = {w.get("memory_limit") for w in client.scheduler_info().get("workers", {}).values()}
        limits.discard(None)
        if not limits or limits == {0}:
            return "no memory limit is set, so the machine ran out of memory or the worker crashed"
        gib = max(limits) / 2**30
        return (f"the workers' memory limit is {gib:.1f} GiB: give them more "
                f"(--executor-option memory_limit=…) or run fewer cells per worker")

    def _outcome(self, future: Any, cell: Any, client: Any) -> dict[str, Any]:
        from distributed import KilledWorker

        if future.status == "finished":
            return future.result()
        exc = future.exception() if future.status == "error" else None
        if isinstance(exc, KilledWorker):
            return lost_cell_result(cell, "KilledWorker",
                                    f"the Dask worker running this cell died ({self._limit(client)})")
        what = f"{type(exc).__name__}: {exc}" if exc is not None else f"the task was {future.status}"
        return lost_cell_result(cell, type(exc).__name__ if exc is not None else "DaskError",
                                f"Dask could not run this cell ({what})")

    def run(self, cells: list[Any], *, workers: int, runtime: Any) -> Iterator[dict[str, Any]]:
        if not cells:
            return
        from distributed import as_completed

        o = self.options
        gpus = GpuQueues.for_run(cells, o.n_workers or workers) if wants_gpu_queues(cells) and not o.scheduler else None
        n_workers = len(gpus.devices) if gpus else min(o.n_workers or max(1, workers), len(cells))
        resources = _resources(o.resources) or None
        with self._client(n_workers) as client:
            pin: dict[str, list[str]] = {}
            if gpus:
                addresses = sorted(client.scheduler_info()["workers"])
                pin = {device: [addresses[i % len(addresses)]] for i, device in enumerate(gpus.devices)}
            meta: dict[Any, tuple[Any, str | None]] = {}

            def submit(cell: Any, device: str | None = None) -> Any:
                future = client.submit(run_cell_task, cell, pure=False, key=f"xalbench-{cell.key}-{uuid.uuid4().hex}",
                                       workers=pin.get(device or ""), allow_other_workers=False, resources=resources)
                meta[future] = (cell, device)
                return future

            first = [submit(cell, device) for device, cell in gpus.start()] if gpus else [submit(c) for c in cells]
            queue = as_completed(first, loop=client.loop)
            for future in queue:
                cell, device = meta.pop(future)
                result = self._outcome(future, cell, client)
                future.release()
                if gpus and device is not None:
                    following = gpus.next(device)
                    if following is not None:
                        queue.add(submit(following[1], following[0]))
                yield result
