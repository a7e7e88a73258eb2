"""``--isolation confined``: the cell's own work runs in a child process that the kernel confines.

Losses, explainers, trainers, mask sources, models and metrics run where the cell trains — a
process that legitimately holds the pool's labels and masks. With ``confined`` that process is a
*cell host*: a child of the worker, forked from the sandbox fork server, which builds its plugin
registry (as the worker did: import-time code is trusted with the installation) and then confines
itself (:mod:`xalbench.confinement`) before it loads any data:

* it **reads** the interpreter's code, the data root (its datasets' prepared or generated
  files) and nothing else — not the results directory, not its seal key, not home;
* it **writes** nothing but a private scratch directory (``TMPDIR``, emptied after every cell,
  deleted with the host);
* it has **no network** (no ``socket()`` at all; its own network namespace where possible), no
  signals or ptrace outside itself, ``no_new_privs`` and resource limits.

A host runs many cells, one after another, so the registry, the confinement, each dataset and
torch's first-call set-up are paid once per host rather than once per cell
(:class:`~xalbench.harness.hosts.CellHost`). It
only runs cells of one *trust domain* (:func:`~xalbench.harness.hosts.trust_domain`: the same third-party packages run in
the cell's process), so a plugin's code can only ever share a process with cells that run that
same code; a cell that fails retires its host. Each worker keeps a few hosts (:class:`~xalbench.harness.hosts.CellHosts`,
owned by its :class:`~xalbench.harness.runtime.Runtime`).

Everything the cell keeps or shares goes through the worker, which stays unconfined and is the
only process that holds the results directory's seal key: checkpoints, round 0's shared model,
the full-data reference and the final result are sent over a pipe and written — and sealed — by
the worker (:class:`Broker`); each round's query is relayed to the strategy's sandbox (itself
confined, started by the worker for each cell, which is the only one that can reach the fork
server); each round's record reaches the lifecycle listeners in the worker. So a plugin in the
cell process can at most spoil the cells of its own domain: it cannot write, forge or read
another cell's file.
"""

from __future__ import annotations

from typing import Any

from xalbench.data.common import resolve_data_root
from xalbench.errors import StrategyContractError
from xalbench.harness.cellfiles import CellFiles, Progress
from xalbench.harness.hosts import CellHost, CellHosts, trust_domain
from xalbench.harness.identity import CellSpec
from xalbench.harness.runtime import Runtime
from xalbench.harness.state import open_querier
from xalbench.lifecycle import CellInfo
from xalbench.sandbox.client import preload
from xalbench.sandbox.session import failure_of

__all__ = ["Broker", "run_confined"]


class Broker:
    """Serves one confined cell child: writes its progress and shared files (sealed), relays its
    queries to the strategy's sandbox, passes its round records to the listeners."""

    def __init__(self, spec: CellSpec, runtime: Runtime, info: CellInfo, files: CellFiles, querier: Any) -> None:
        self.spec, self.runtime, self.info, self.files, self.querier = spec, runtime, info, files, querier

    def handle(self, message: tuple[Any, ...]) -> tuple[bool, Any]:
        """(answer expected, answer) for one request of the child."""
        kind, *args = message
        if kind == "resume":
            return True, self.files.read_progress()
        if kind == "checkpoint":
            progress: Progress = args[0]
            self.files.write_progress(progress)
        elif kind == "load_round0":
            return True, self.files.load_round0(args[0])
        elif kind == "save_round0":
            self.files.save_round0(args[0], args[1])
        elif kind == "load_reference":
            return True, self.files.load_reference(args[0], args[1])
        elif kind == "save_reference":
            self.files.save_reference(args[0], args[1], args[2])
        elif kind == "query":
            try:
                reply: Any = self.querier.query(args[0])
            except StrategyContractError as err:
                reply = failure_of(err)
            return True, (reply, self.querier.confinement)
        elif kind == "round":
            self.runtime.registry.notify("round_finished", cell=self.info, round=args[0])
        else:
            raise ValueError(f"the confined cell sent an unknown request {kind!r}")
        return False, None


def _reads(spec: CellSpec) -> tuple[str, ...]:
    root = resolve_data_root(spec.data_root)
    return (str(root),) if root.exists() else ()


def run_confined(spec: CellSpec, runtime: Runtime, info: CellInfo) -> dict[str, Any]:
    """Run ``spec`` in a confined cell host; the worker keeps every file (see the module docstring)."""
    registry = runtime.registry
    bundle = runtime.dataset(spec.dataset, spec.data_root)  # generated or prepared on disk for the host
    files = CellFiles(spec)
    preload(__name__, *sorted({getattr(rec.obj, "__module__", "") for rec in registry}))
    reads = _reads(spec)
    key = (spec.selection, reads, trust_domain(spec, registry))
    hosts: CellHosts = runtime.service("confined-cell-hosts", CellHosts)
    with open_querier(spec, bundle, registry, "confined") as querier:
        host = hosts.take(key, lambda: CellHost(spec.selection, reads))
        try:
            return host.run(spec, Broker(spec, runtime, info, files, querier))
        finally:
            hosts.give_back(key, host)
