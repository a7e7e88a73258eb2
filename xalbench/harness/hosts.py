"""The worker's confined cell hosts (:mod:`xalbench.harness.confined`): start, reuse, retire, stop."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
import weakref
from collections.abc import Callable
from multiprocessing.connection import wait
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xalbench.errors import CellProcessError
from xalbench.harness.cell import failure
from xalbench.harness.config import used_components
from xalbench.harness.identity import CellSpec
from xalbench.harness.remote import FAULT_LOG, host_main
from xalbench.plugins import PluginSelection
from xalbench.registry import Registry
from xalbench.sandbox.child import receive, send
from xalbench.sandbox.client import fault_summary, start_process, stop_process

if TYPE_CHECKING:
    from xalbench.harness.confined import Broker

__all__ = ["CellHost", "CellHosts", "trust_domain"]


def trust_domain(spec: CellSpec, registry: Registry) -> tuple[str, ...]:
    """The top-level packages, other than xalbench's own, whose components a cell runs in its own
    process (dataset, loss, trainer, mask source, model, explainer, metrics — the strategy runs in
    its sandbox). Only cells with the same domain share a host: a plugin can spoil no cell that
    does not run its code."""
    config = spec.config
    used = [(kind, name) for kind, name in used_components(config.dataset, config.method, config.model,
                                                           config.explainer, config.metrics) if kind != "strategy"]
    packages = set()
    for kind, name in used:
        obj = registry.get(kind, name)
        packages.add((getattr(obj, "__module__", None) or type(obj).__module__).split(".")[0])
    return tuple(sorted(packages - {"xalbench"}))


def _empty(directory: str, keep: str) -> None:
    """Remove everything in ``directory`` but ``keep`` (a cell's leftovers in the host's scratch)."""
    for entry in os.scandir(directory):
        if entry.name == keep:
            continue
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                os.unlink(entry.path)


class CellHost:
    """One confined cell process that runs the cells of one trust domain, one after another.

    It boots once (registry, confinement, then for each cell the dataset from its own cache and
    torch's warm kernels), which is what a fresh process per cell paid again for every cell. Its
    scratch directory is emptied between cells; after a failed cell it is retired (a broken
    plugin's leftovers reach no later cell)."""

    def __init__(self, selection: PluginSelection, reads: tuple[str, ...]) -> None:
        self.scratch = tempfile.mkdtemp(prefix="xalbench-cell-")
        self.proc, self.conn = start_process(host_main, selection, self.scratch, reads, name="xalbench-cell")
        self.cells = 0
        self.alive = True
        self._finalizer = weakref.finalize(self, stop_process, self.proc, self.scratch, self.conn)

    def close(self) -> None:
        """Stop the process and remove its scratch directory."""
        self.alive = False
        if self.conn is not None and not self.conn.closed:
            with contextlib.suppress(OSError):
                send(self.conn, ("close",))
        self._finalizer()

    def _next(self) -> tuple[Any, ...] | None:
        """The host's next message, or ``None`` when it is gone."""
        ready = wait([self.conn, self.proc.sentinel])
        if self.conn not in ready and not self.conn.poll():
            return None
        try:
            return receive(self.conn)  # type: ignore[no-any-return]
        except (EOFError, OSError):
            return None

    def _died(self) -> CellProcessError:
        self.alive = False
        log = Path(self.scratch) / FAULT_LOG
        tail = fault_summary(log.read_text(encoding="utf-8", errors="replace")) if log.exists() else ""
        self._finalizer()
        return CellProcessError(f"the confined cell process died (exit code {self.proc.exitcode}) without a result"
                                + (f": {tail}" if tail else ""))

    def run(self, spec: CellSpec, broker: Broker) -> dict[str, Any]:
        """Run ``spec`` here, answering the host's requests with ``broker``; the cell's result."""
        if self.cells == 0:
            message = self._next()
            if message is None:
                raise self._died()
            if message[0] == "failed":  # the host could not start (e.g. confinement refused)
                self.close()
                return failure(spec, message[1])
        self.cells += 1
        send(self.conn, ("cell", spec))
        try:
            while True:
                message = self._next()
                if message is None:
                    raise self._died()
                if message[0] == "done":
                    return message[1]  # type: ignore[no-any-return]
                if message[0] == "failed":
                    self.close()
                    return failure(spec, message[1])
                answer, value = broker.handle(message)
                if answer:
                    send(self.conn, value)
        except BaseException:
            if self.alive:  # the worker failed mid-cell (a broken pipe, an interrupt): the host's state is unknown
                self.close()
            raise
        finally:
            if self.alive:
                _empty(self.scratch, FAULT_LOG)


class CellHosts:
    """This worker's confined cell hosts, one per (plugin selection, data root, trust domain); a host
    serves one cell at a time. At most :attr:`limit` are kept: the least recently used idle one goes."""

    limit = 4

    def __init__(self) -> None:
        self._idle: dict[tuple[Any, ...], CellHost] = {}
        self._lock = threading.Lock()
        self.started = 0  #: hosts started since the last :meth:`close`

    def take(self, key: tuple[Any, ...], start: Callable[[], CellHost]) -> CellHost:
        with self._lock:
            host = self._idle.pop(key, None)
        if host is not None and host.alive and host.proc.is_alive():
            return host
        if host is not None:
            host.close()
        self.started += 1
        return start()

    def give_back(self, key: tuple[Any, ...], host: CellHost) -> None:
        if not host.alive:
            return
        with self._lock:
            spare = self._idle.pop(key, None)
            self._idle[key] = host
            while len(self._idle) > self.limit:
                spare_key = next(iter(self._idle))
                extra = self._idle.pop(spare_key)
                extra.close()
        if spare is not None:
            spare.close()

    def close(self) -> None:
        with self._lock:
            hosts, self._idle = list(self._idle.values()), {}
            self.started = 0
        for host in hosts:
            host.close()
