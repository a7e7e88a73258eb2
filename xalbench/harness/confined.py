"""``--isolation confined``: the cell's own work runs in a child process that the kernel confines.

Losses, explainers, trainers, mask sources, models and metrics run where the cell trains — a
process that legitimately holds the pool's labels and masks. With ``confined`` that process is a
child of the worker, forked from the sandbox fork server, which builds its plugin registry (as the
worker did: import-time code is trusted with the installation) and then confines itself
(:mod:`xalbench.confinement`) before it loads any data:

* it **reads** the interpreter's code, the data root (its dataset's prepared or generated
  files) and nothing else — not the results directory, not its seal key, not home;
* it **writes** nothing but a private scratch directory (``TMPDIR``, deleted with it);
* it has **no network** (no ``socket()`` at all; its own network namespace where possible), no
  signals or ptrace outside itself, ``no_new_privs`` and resource limits.

Everything the cell keeps or shares goes through the worker, which stays unconfined and is the
only process that holds the results directory's seal key: checkpoints, round 0's shared model,
the full-data reference and the final result are sent over a pipe and written — and sealed — by
the worker (:class:`Broker`); each round's query is relayed to the strategy's sandbox (itself
confined, started by the worker, which is the only one that can reach the fork server); each
round's record reaches the lifecycle listeners in the worker. So a plugin in the cell process can
at most spoil its own cell: it cannot write, forge or read another cell's file.
"""

from __future__ import annotations

import contextlib
import faulthandler
import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

import numpy as np

from xalbench.data.common import resolve_data_root
from xalbench.errors import CellProcessError, StrategyContractError
from xalbench.harness.cell import error_of, failure, run_body
from xalbench.harness.cellfiles import CellFiles, Progress, apply_progress, progress_of
from xalbench.harness.identity import CellSpec
from xalbench.harness.runtime import Runtime, for_selection
from xalbench.harness.state import CellRun, open_querier
from xalbench.lifecycle import CellInfo
from xalbench.sandbox.child import die_with_parent, receive, scrub_environment, send
from xalbench.sandbox.client import fault_summary, preload, start_process
from xalbench.sandbox.messages import ErrorReply, QueryReply, RoundRequest
from xalbench.sandbox.session import error_from_reply, failure_of

__all__ = ["Broker", "cell_child", "run_confined"]

FAULT_LOG = "cell-fault.log"


# ---------------------------------------------------------------------- the child's side
class RemoteStore:
    """The confined cell's store: every read and write is a request to the worker."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def _ask(self, *message: Any) -> Any:
        send(self.conn, message)
        return receive(self.conn)

    def resume(self, run: CellRun) -> tuple[list[dict[str, Any]], np.ndarray] | None:
        progress = self._ask("resume")
        return None if progress is None else apply_progress(run, progress)

    def checkpoint(self, run: CellRun, rounds: list[dict[str, Any]], labelled: np.ndarray) -> None:
        send(self.conn, ("checkpoint", progress_of(run, rounds, labelled)))

    def load_round0(self, digest: str) -> dict[str, Any] | None:
        return self._ask("load_round0", digest)

    def save_round0(self, digest: str, saved: dict[str, Any]) -> None:
        send(self.conn, ("save_round0", digest, saved))

    def load_reference(self, name: str, digest: str) -> dict[str, float] | None:
        return self._ask("load_reference", name, digest)

    def save_reference(self, name: str, digest: str, record: dict[str, Any]) -> None:
        send(self.conn, ("save_reference", name, digest, record))


class RelayQuerier:
    """The confined cell's querier: each round's request is relayed to the strategy's sandbox by the worker."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.confinement: dict[str, Any] | None = None

    def query(self, request: RoundRequest) -> QueryReply:
        send(self.conn, ("query", request))
        reply, self.confinement = receive(self.conn)
        if isinstance(reply, ErrorReply):
            raise error_from_reply(reply)
        return reply

    def __enter__(self) -> RelayQuerier:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None


def cell_child(conn: Connection, spec: CellSpec, scratch: str, reads: tuple[str, ...]) -> None:
    """Entry point of the confined cell process (see the module docstring)."""
    os.setsid()
    scrub_environment(os.environ)
    log = open(Path(scratch) / FAULT_LOG, "w", encoding="utf-8")  # noqa: SIM115 - lives as long as the process
    faulthandler.enable(log, all_threads=True)
    try:
        from xalbench.confinement import Profile, apply

        os.environ["TMPDIR"] = scratch
        tempfile.tempdir = None  # the fork server cached /tmp: the next gettempdir() reads TMPDIR
        os.environ.setdefault("LOKY_MAX_CPU_COUNT", "1")
        runtime = for_selection(spec.selection)  # plugins are found (and imported) before: no data here yet
        applied = apply(Profile.for_interpreter(read=reads, write=(scratch,)), required=True).as_dict()
        die_with_parent()  # a thread: only after confinement, which binds the calling thread alone
        store, querier = RemoteStore(conn), RelayQuerier(conn)
        result = run_body(spec, runtime, store, lambda run: querier,
                          lambda record: send(conn, ("round", record)))
        if "provenance" in result and "confinement" in result["provenance"]:
            result["provenance"]["confinement"]["cell"] = applied
        send(conn, ("done", result))
    except BaseException as exc:  # noqa: BLE001 - the worker turns it into the cell's error
        send(conn, ("failed", error_of(exc)))


# ---------------------------------------------------------------------- the worker's side
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


@contextlib.contextmanager
def _scratch() -> Iterator[str]:
    path = tempfile.mkdtemp(prefix="xalbench-cell-")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _kill(proc: Any) -> None:
    if proc.pid is None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.join()


def run_confined(spec: CellSpec, runtime: Runtime, info: CellInfo) -> dict[str, Any]:
    """Run ``spec`` in a confined child process; the worker keeps every file (see the module docstring)."""
    registry = runtime.registry
    bundle = runtime.dataset(spec.dataset, spec.data_root)  # generated or prepared on disk for the child
    files = CellFiles(spec)
    preload(__name__, *sorted({getattr(rec.obj, "__module__", "") for rec in registry}))
    with _scratch() as scratch, open_querier(spec, bundle, registry, "confined") as querier:
        proc, conn = start_process(cell_child, spec, scratch, _reads(spec), name="xalbench-cell")
        broker = Broker(spec, runtime, info, files, querier)
        try:
            while True:
                ready = wait([conn, proc.sentinel])
                if conn not in ready and not conn.poll():
                    break
                try:
                    message = receive(conn)
                except (EOFError, OSError):
                    break
                if message[0] in ("done", "failed"):
                    return message[1] if message[0] == "done" else failure(spec, message[1])
                answer, value = broker.handle(message)
                if answer:
                    send(conn, value)
        finally:
            _kill(proc)
            conn.close()
        log = Path(scratch) / FAULT_LOG
        tail = fault_summary(log.read_text(encoding="utf-8", errors="replace")) if log.exists() else ""
        raise CellProcessError(f"the confined cell process died (exit code {proc.exitcode}) without a result"
                               + (f": {tail}" if tail else ""))
