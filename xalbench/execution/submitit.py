"""The ``submitit`` executor: one SLURM array task per cell (or local / in-process jobs without SLURM).

``--executor submitit`` submits the cells as one SLURM job array (``map_array``; one task per
cell, ``array_parallelism`` at a time) when ``sbatch`` is available, otherwise as local
subprocess jobs (``cluster=local``), or in this process (``cluster=debug``). Each task runs
:func:`~xalbench.execution.common.run_cell_task` on a cell whose results directory must be on
storage the nodes share; the controller polls the jobs and yields each cell's result as its
task ends. SLURM options: ``partition``, ``time`` (minutes per cell), ``mem`` (e.g. ``16G``),
``gpus_per_node`` (default 1 with ``--device cuda``, else 0), ``cpus_per_task`` (default: the
cell's ``--threads``), ``account``, ``qos``, ``constraint``, ``array_parallelism``, ``setup``
(shell lines run before the task, ``;``-separated) and ``folder`` (job scripts and logs; default
``<results>/submitit``). Unknown options fail before anything is submitted. Without SLURM, at
most ``array_parallelism`` (default ``--workers``) jobs run at once, or one per visible GPU with
``--device cuda`` (each job sees only its GPU).

**Requeue-safe.** The task is a :class:`CellTask` (``submitit.helpers.Checkpointable``): when
SLURM preempts a task or its time limit nears (``--signal=USR2@90``), submitit calls
:meth:`CellTask.checkpoint`, which resubmits the same cell, and requeues the task (at most
``max_num_timeout`` times after time-outs). The killed process releases the cell's lock as it
unwinds; the requeued task resumes the cell from its last round checkpoint, so the final file is
bitwise the one an uninterrupted run writes.
"""

from __future__ import annotations

import re
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

from xalbench.errors import ConfigError
from xalbench.execution.base import Executor
from xalbench.execution.common import lost_cell_result, run_cell_task
from xalbench.execution.gpus import visible_gpus
from xalbench.options import Options

__all__ = ["SubmititExecutor", "cell_task"]

_MEM = re.compile(r"^\d+[KMGT]?$")


def _require_submitit() -> None:
    try:
        import submitit  # noqa: F401
    except ImportError:
        raise ConfigError("--executor submitit needs submitit: pip install 'xalbench[slurm]'") from None


def _cell_task_class() -> type:
    _require_submitit()
    from submitit.helpers import Checkpointable, DelayedSubmission

    class CellTask(Checkpointable):
        """One cell as a requeue-safe SLURM task: ``CellTask()(spec)`` runs (or resumes) the cell."""

        def __call__(self, spec: Any) -> dict[str, Any]:
            return run_cell_task(spec)

        def checkpoint(self, spec: Any) -> DelayedSubmission:
            """Preempted or timing out: resubmit the same cell. Nothing to save here: the cell
            checkpoints itself after every round and resumes from there."""
            return DelayedSubmission(self, spec)

    CellTask.__module__, CellTask.__qualname__ = __name__, "CellTask"  # pickled by reference
    return CellTask


def cell_task() -> Any:
    """A :class:`CellTask` (the class is built once, on first use: only runs that use submitit import it)."""
    cls = globals().get("CellTask")
    if cls is None:
        globals()["CellTask"] = cls = _cell_task_class()
    return cls()


def __getattr__(name: str) -> Any:
    if name == "CellTask":
        return type(cell_task())
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class SubmititExecutor(Executor):
    """SLURM job arrays through submitit (one cell per task), or submitit's local/debug jobs."""

    name: ClassVar[str] = "submitit"
    summary: ClassVar[str] = "SLURM job arrays via submitit, one cell per task (cluster=local/debug without SLURM)"

    @dataclass(frozen=True)
    class Options(Options):
        cluster: Literal["auto", "slurm", "local", "debug"] = "auto"  #: auto = slurm when sbatch exists
        folder: str = ""  #: job scripts, pickles and logs ("" = <results>/submitit)
        partition: str = ""
        time: int = 60  #: minutes per cell (one array task)
        mem: str = ""  #: memory per task, e.g. 16G ("" = the partition's default)
        gpus_per_node: int = -1  #: -1 = 1 with --device cuda, else 0
        cpus_per_task: int = 0  #: 0 = the cell's --threads
        account: str = ""
        qos: str = ""
        constraint: str = ""
        array_parallelism: int = 0  #: tasks running at once (0 = every cell)
        setup: str = ""  #: shell lines before each task, ";"-separated (e.g. "module load cuda")
        max_num_timeout: int = 3  #: requeues after a time-out
        poll_seconds: float = 10.0  #: how often the controller checks the jobs

        def __post_init__(self) -> None:
            if self.time < 1:
                raise ValueError(f"time is in minutes and must be ≥ 1, got {self.time}")
            if self.mem and not _MEM.match(self.mem):
                raise ValueError(f"mem takes a SLURM size like 16G or 4000M, not {self.mem!r}")
            if self.gpus_per_node < -1 or self.cpus_per_task < 0 or self.array_parallelism < 0:
                raise ValueError("gpus_per_node must be ≥ -1, cpus_per_task and array_parallelism ≥ 0")
            if self.max_num_timeout < 0 or self.poll_seconds <= 0:
                raise ValueError("max_num_timeout must be ≥ 0 and poll_seconds > 0")

    def parameters(self, cells: list[Any]) -> dict[str, Any]:
        """The ``update_parameters`` keywords for ``cells`` (generic names, ``slurm_``-prefixed ones)."""
        o = self.options
        gpus = o.gpus_per_node if o.gpus_per_node >= 0 else int(any(c.device.startswith("cuda") for c in cells))
        params: dict[str, Any] = {
            "name": f"xalbench-{cells[0].config.suite}" if cells else "xalbench",
            "timeout_min": o.time,
            "cpus_per_task": o.cpus_per_task or max(c.threads for c in cells),
            "gpus_per_node": gpus,
            "tasks_per_node": 1,
            "slurm_array_parallelism": o.array_parallelism or max(1, len(cells)),
        }
        for key in ("partition", "mem", "account", "qos", "constraint"):
            if getattr(o, key):
                params[f"slurm_{key}"] = getattr(o, key)
        if o.setup:
            params["slurm_setup"] = [line.strip() for line in o.setup.split(";") if line.strip()]
        return params

    def make_executor(self, cells: list[Any], **extra: Any) -> Any:
        """A configured ``submitit.AutoExecutor`` (raises :class:`ConfigError` on a bad option)."""
        _require_submitit()
        import submitit

        o = self.options
        folder = o.folder or str(Path(cells[0].out_dir) / "submitit")
        try:
            ex = submitit.AutoExecutor(folder=str(Path(folder) / "%j"), cluster=None if o.cluster == "auto" else o.cluster,
                                       slurm_max_num_timeout=o.max_num_timeout, local_max_num_timeout=o.max_num_timeout)
            ex.update_parameters(**self.parameters(cells), **extra)
        except (NameError, ValueError, RuntimeError) as exc:
            raise ConfigError(f"executor 'submitit': {str(exc).splitlines()[0]}") from None
        return ex

    def submit(self, cells: list[Any]) -> list[tuple[Any, Any]]:
        """Submit ``cells`` as one job array; ``(job, cell)`` pairs in cell order."""
        ex = self.make_executor(cells)
        jobs = ex.map_array(cell_task(), cells)
        return list(zip(jobs, cells, strict=True))

    @staticmethod
    def outcome(job: Any, cell: Any) -> dict[str, Any]:
        """The cell's result from a finished job (a ``failed`` result if the task died)."""
        from submitit.core.utils import FailedJobError, UncompletedJobError

        try:
            return job.result()
        except (FailedJobError, UncompletedJobError) as exc:
            lines = [ln for ln in str(exc).strip().splitlines() if ln.strip()]
            last = lines[-1].strip() if lines else type(exc).__name__
            return lost_cell_result(cell, type(exc).__name__,
                                    f"submitit job {job.job_id} ended without a result ({last}); log: {job.paths.stderr}")

    def collect(self, pending: list[tuple[Any, Any]]) -> Iterator[dict[str, Any]]:
        """Yield each cell's result as its job ends (polling every ``poll_seconds``)."""
        while pending:
            waiting = []
            for job, cell in pending:
                if job.done():
                    yield self.outcome(job, cell)
                else:
                    waiting.append((job, cell))
            pending = waiting
            if pending:
                time.sleep(self.options.poll_seconds)

    def rolling(self, cells: list[Any], workers: int) -> Iterator[dict[str, Any]]:
        """Without SLURM (``local``/``debug`` jobs): at most ``array_parallelism`` (default
        ``--workers``) jobs at a time, or one per visible GPU, each job seeing only its own GPU."""
        gpus = visible_gpus() if any(c.device.startswith("cuda") for c in cells) else []
        slots = len(gpus) if gpus else (self.options.array_parallelism or max(1, workers))
        executors: dict[int, Any] = {}

        def executor(slot: int) -> Any:
            if slot not in executors:
                pin = {"local_visible_gpus": (int(gpus[slot]),)} if gpus and gpus[slot].isdigit() else {}
                executors[slot] = self.make_executor(cells, **pin)
            return executors[slot]

        todo, running, free = deque(cells), {}, list(range(min(slots, len(cells))))
        while todo or running:
            while todo and free:
                slot, cell = free.pop(0), todo.popleft()
                running[executor(slot).submit(cell_task(), cell)] = (slot, cell)
            finished = [job for job in running if job.done()]
            for job in finished:
                slot, cell = running.pop(job)
                free.append(slot)
                yield self.outcome(job, cell)
            if running and not finished:
                time.sleep(self.options.poll_seconds)

    def run(self, cells: list[Any], *, workers: int, runtime: Any) -> Iterator[dict[str, Any]]:
        if not cells:
            return
        if self.make_executor(cells).cluster != "slurm":
            yield from self.rolling(cells, workers)
            return
        yield from self.collect(self.submit(cells))
