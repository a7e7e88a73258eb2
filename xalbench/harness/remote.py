"""The confined cell host's side (:mod:`xalbench.harness.confined`): a store and a querier that ask
the worker for everything, and the loop that runs the cells the worker sends."""

from __future__ import annotations

import faulthandler
import os
import tempfile
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

from xalbench.harness.cell import error_of, run_body
from xalbench.harness.cellfiles import apply_progress, progress_of
from xalbench.harness.identity import CellSpec
from xalbench.harness.runtime import Runtime, for_selection
from xalbench.harness.state import CellRun
from xalbench.plugins import PluginSelection
from xalbench.sandbox.child import die_with_parent, receive, scrub_environment, send
from xalbench.sandbox.messages import ErrorReply, QueryReply, RoundRequest
from xalbench.sandbox.session import error_from_reply

__all__ = ["FAULT_LOG", "RelayQuerier", "RemoteStore", "host_main"]

FAULT_LOG = "cell-fault.log"


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


def _serve(conn: Connection, runtime: Runtime, applied: dict[str, Any], spec: CellSpec) -> None:
    """Run one cell the worker sent and report its result (or its error)."""
    try:
        store, querier = RemoteStore(conn), RelayQuerier(conn)
        result = run_body(spec, runtime, store, lambda run: querier,
                          lambda record: send(conn, ("round", record)))
        if "provenance" in result and "confinement" in result["provenance"]:
            result["provenance"]["confinement"]["cell"] = applied
        send(conn, ("done", result))
    except BaseException as exc:  # noqa: BLE001 - the worker turns it into the cell's error
        send(conn, ("failed", error_of(exc)))


def host_main(conn: Connection, selection: PluginSelection, scratch: str, reads: tuple[str, ...]) -> None:
    """Entry point of a confined cell host (see the module docstring): build the registry, confine
    this process, then run the cells the worker sends until it says ``close`` or goes away."""
    os.setsid()
    scrub_environment(os.environ)
    log = open(Path(scratch) / FAULT_LOG, "w", encoding="utf-8")  # noqa: SIM115 - lives as long as the process
    faulthandler.enable(log, all_threads=True)
    try:
        from xalbench.confinement import Profile, apply

        os.environ["TMPDIR"] = scratch
        tempfile.tempdir = None  # the fork server cached /tmp: the next gettempdir() reads TMPDIR
        os.environ.setdefault("LOKY_MAX_CPU_COUNT", "1")
        runtime = for_selection(selection)  # plugins are found (and imported) before: no data here yet
        applied = apply(Profile.for_interpreter(read=reads, write=(scratch,)), required=True).as_dict()
        die_with_parent()  # a thread: only after confinement, which binds the calling thread alone
    except BaseException as exc:  # noqa: BLE001 - the worker fails the cell it sent with this error
        send(conn, ("failed", error_of(exc)))
        return
    send(conn, ("ready", applied))
    while True:
        try:
            message = receive(conn)
        except (EOFError, OSError):
            return
        if message[0] != "cell":
            return
        _serve(conn, runtime, applied, message[1])
