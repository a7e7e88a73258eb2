"""Local worker processes (joblib's loky back end) for cells, tuning jobs and data decoding.

loky recycles a worker whose resident memory has grown by more than 300 MB since its first task
(it measures after every task, at most once a second, when ``psutil`` is installed): the worker
exits between tasks, a new one is started, and when tasks are waiting the main process prints
``UserWarning: A worker stopped while some jobs were given to the executor. This can be caused
by a too short worker timeout or by a memory leak.`` In xalbench that growth is no leak: measured
on ``medical`` cells run one after another in one process, a worker whose first cell was a small 2D
cell is 250–330 MB larger after a 3D cell with DUE's losses, SAL's dual models or EG-AL (libraries
imported on first use, the allocator's high-water mark) and stays there over the next cells; its
caches are bounded (:class:`~xalbench.harness.runtime.Runtime` keeps at most 8 datasets), and
memory-mapped datasets count their shared pages in the resident size. A recycled worker loses no
task (it exits only after returning its result), so results were never affected, but its
replacement pays the worker start-up (imports, registry, fork server) again.

So every pool started here turns that heuristic off in its workers (:func:`_keep_worker`). A worker
that really dies (killed for memory) still breaks the pool with loky's own error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

__all__ = ["map_in_processes"]

T = TypeVar("T")


def _keep_worker() -> None:
    """loky worker initializer: no restart on memory growth (the module docstring says why)."""
    from joblib.externals.loky import process_executor

    process_executor._USE_PSUTIL = False  # the flag loky's worker loop reads before each memory check


def map_in_processes(task: Callable[..., T], calls: Iterable[tuple[Any, ...]], n_jobs: int, *,
                     ordered: bool = False) -> Iterator[T]:
    """``task(*args)`` for every ``args`` in ``calls`` in ``n_jobs`` loky worker processes; results in
    completion order (``ordered``: in call order). ``task`` must be importable (a module-level function)."""
    from joblib import Parallel, delayed, parallel_config

    with parallel_config(backend="loky", initializer=_keep_worker):  # the pool is configured in the call
        results = Parallel(n_jobs=n_jobs, return_as="generator" if ordered else "generator_unordered")(
            delayed(task)(*args) for args in calls)
    yield from results
