"""A task whose worker grows by more than loky's recycling threshold (300 MB) on its second call and
keeps that memory, as an xalbench worker does after its first 3D cell (test helper)."""

from __future__ import annotations

import os
import time

GROWTH = 330 << 20  # bytes held from the second call on; loky recycles above 3e8
_HELD: list[bytes] = []
_CALLS = [0]


def grow(i: int) -> tuple[int, int]:
    """``(i, pid)``; the second call in a process holds ``GROWTH`` more bytes. Every call lasts past loky's
    1 s interval between memory checks (and keeps joblib from batching calls), as a cell does."""
    _CALLS[0] += 1
    if _CALLS[0] == 2:
        _HELD.append(b"\x01" * GROWTH)  # written, so resident
    time.sleep(1.05)
    return i, os.getpid()


def main(mode: str, n_tasks: int = 6) -> None:
    """Run ``n_tasks`` calls of :func:`grow` in 2 workers through xalbench (``xalbench``) or plain joblib
    (``joblib``); print the results and the worker pids."""
    if mode == "xalbench":
        from xalbench.utils.processes import map_in_processes

        results = list(map_in_processes(grow, ((i,) for i in range(n_tasks)), 2))
    else:
        from joblib import Parallel, delayed

        results = list(Parallel(n_jobs=2, backend="loky", return_as="generator_unordered")(
            delayed(grow)(i) for i in range(n_tasks)))
    print(sorted(i for i, _ in results), len({pid for _, pid in results}))
