"""The single place the leaderboard runs cells (``verify``'s re-runs and held-out runs).

:func:`run_cells` starts a fresh Python process (its own session, the maintainer secret scrubbed
from its environment, killed with its process group on time-out) that plans the requested cells
with the runner and runs them; the parent reads the results back through :mod:`.adapter`. The
job — the suite, the cells and, for held-out runs, the data seeds — reaches the child **through
its standard input**, never a file, and the child holds no secret (only the seeds derived from
it). Held-out data is generated into a **private data root** (mode 0700) that is deleted when
the run ends. The runner call itself is :func:`adapter.run_suite` with ``isolation="confined"``:
each cell's own process and its strategy's sandbox are confined by the kernel, so no plugin code
that runs with data can read the child's memory, environment or command line, the results
directory or the data root of the held-out data (``isolation="process"`` only when the
maintainer allows it explicitly).
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["CellRequest", "run_cells", "SECRET_ENV", "RerunError"]

SECRET_ENV = "XALBENCH_LEADERBOARD_SECRET"
DATA_ENV = "XALBENCH_DATA"


class RerunError(RuntimeError):
    """The re-run process failed or timed out."""


@dataclasses.dataclass(frozen=True)
class CellRequest:
    dataset: str
    method: str
    components: dict[str, str]  # kind → name (strategy, loss, trainer, mask_source)
    seed: int


def run_cells(suite: Any, requests: Sequence[CellRequest], out_dir: Path, *,
              dataset_seeds: Mapping[str, int] | None = None, timeout: float | None = None,
              isolation: str = "confined") -> list[Any]:
    """Run ``requests`` of ``suite`` (datasets optionally regenerated from other data seeds) in a
    child process; returns the finished cells as :class:`adapter.RunCell` in request order."""
    from xalbench.errors import ConfigError
    from xalbench.leaderboard import adapter

    out_dir.mkdir(parents=True, exist_ok=True)
    job = json.dumps({
        "suite": dataclasses.asdict(suite),
        "requests": [dataclasses.asdict(r) for r in requests],
        "dataset_seeds": dict(dataset_seeds or {}),
        "out_dir": str(out_dir),
        "isolation": isolation,
    }, default=str).encode("utf-8")
    with tempfile.TemporaryDirectory(prefix="xalbench-heldout-data-") as data_root:  # mode 0700, removed after
        env = {k: v for k, v in os.environ.items() if k != SECRET_ENV}
        if dataset_seeds:
            env[DATA_ENV] = data_root  # held-out data is generated here and nowhere else
        proc = subprocess.Popen([sys.executable, "-m", "xalbench.leaderboard.rerun"], env=env, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            output, _ = proc.communicate(job, timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise RerunError(f"re-run exceeded {timeout} s and was killed") from None
    if proc.returncode != 0:
        tail = output.decode("utf-8", "replace").strip().splitlines()[-3:]
        raise RerunError(f"re-run process exited with {proc.returncode}: {' | '.join(tail)}")
    try:
        run = adapter.read_run(out_dir)
    except ConfigError as exc:  # the child exited cleanly but wrote no run
        raise RerunError(f"re-run wrote no results: {exc}") from None
    found = {(c.dataset, c.method, c.seed): c for c in run.cells}
    out = []
    for r in requests:
        cell = found.get((r.dataset, r.method, r.seed))
        if cell is None or cell.status != "ok":
            why = "missing" if cell is None else f"{cell.status}"
            raise RerunError(f"re-run of {r.dataset}/{r.method}/seed {r.seed} is {why}")
        out.append(cell)
    return out


def _child() -> int:
    from xalbench.leaderboard import adapter
    from xalbench.suite import SuiteSpec

    job = json.loads(sys.stdin.buffer.read().decode("utf-8"))  # through a pipe: the job is in no file
    suite = SuiteSpec.from_dict(job["suite"])
    requests = [CellRequest(**r) for r in job["requests"]]
    seeds_by_label = job["dataset_seeds"]
    fields = {f.name for f in dataclasses.fields(suite)}
    groups: dict[tuple[str, tuple[int, ...]], list[CellRequest]] = {}
    by_cell: dict[tuple[str, str], set[int]] = {}
    for r in requests:
        by_cell.setdefault((r.dataset, r.method), set()).add(r.seed)
    for (dataset, method), seeds in by_cell.items():
        groups.setdefault((dataset, tuple(sorted(seeds))), []).append(
            next(r for r in requests if (r.dataset, r.method) == (dataset, method)))
    for (dataset, seeds), reqs in sorted(groups.items()):
        spec = adapter.dataset_spec(suite, dataset)
        if dataset in seeds_by_label:
            spec = adapter.with_dataset_seed(spec, seeds_by_label[dataset])
        methods = tuple(adapter.method_spec(suite, r.method, r.components) for r in reqs)
        changes: dict[str, Any] = {"datasets": (spec,), "methods": methods, "seeds": seeds}
        changes.update({k: v for k, v in (("grids", ()), ("wildcard_strategies", False),
                                          ("wildcard_losses", False)) if k in fields})
        adapter.run_suite(dataclasses.replace(suite, **changes), job["out_dir"], isolation=job["isolation"])
    return 0


if __name__ == "__main__":
    sys.exit(_child())
