"""The harness's side of a strategy sandbox: :class:`ProcessQuerier`.

One querier per cell. :meth:`ProcessQuerier.start` returns at once: it writes the cell's
data (:class:`~xalbench.sandbox.messages.CellData`, private copies — or, for a mapped pool,
the reference to its cache file, which the sandbox maps read-only) as ``.npy`` files into a
fresh private temporary directory and starts the sandbox process from a background thread,
so the sandbox boots while round 0 trains. :meth:`ProcessQuerier.query` sends one round's
request, waits at most the spec's ``timeout`` (plus up to :data:`GRACE` seconds for the sandbox's
own model rebuild and checks) and validates the returned indices again with
:func:`~xalbench.sandbox.guard.validate_indices`. :meth:`ProcessQuerier.close` stops the
process group and removes the directory; it also runs at garbage collection and at exit.

Processes come from ``multiprocessing.get_context("forkserver")`` (never the global start
method, never ``fork``: the fork server is a fresh interpreter that imports torch, numpy and
xalbench's built-in plugins once — :data:`PRELOAD`, :func:`main_imports`, :mod:`xalbench.sandbox.preload` — and forks each sandbox from that clean
state in milliseconds). Failures become :class:`~xalbench.errors.StrategyContractError` s:

* ``timeout`` — no answer in time (or no start within ``boot_timeout``): the process group
  gets SIGTERM, then SIGKILL, and the querier is spent;
* ``memory`` — the strategy hit the address-space limit (``MemoryError``, "can't allocate
  memory") or the process was SIGKILLed by someone else (the kernel's out-of-memory killer);
* ``crash`` — the process died without answering (segfault, ``os._exit``); the message has the
  exit code or signal and the last lines of ``fault.log`` (tracebacks of fatal signals);
* any rule the strategy broke inside the sandbox (``exception`` with its last traceback
  lines, ``forbidden-access``, ``model-mutated``, ``pool-mutated``, ``val-mutated``, ``nan``,
  the index rules), raised here with the same rule.
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import types
import weakref
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

import numpy as np

from xalbench.errors import StrategyContractError, StrategyTimeoutError
from xalbench.sandbox.child import FAULT_LOG, main, receive, send
from xalbench.sandbox.guard import validate_indices
from xalbench.sandbox.messages import CellData, ErrorReply, QueryReply, Ready, RoundRequest, SandboxSpec
from xalbench.sandbox.session import TAIL_LINES, error_from_reply

__all__ = ["GRACE", "PRELOAD", "ProcessQuerier", "main_imports", "preload", "start_process", "stop_process", "warm_up"]

#: Modules the fork server imports once, so that a sandbox starts in milliseconds; then
#: :mod:`xalbench.sandbox.preload` imports what :func:`main_imports` and :func:`preload` name.
PRELOAD = ("numpy", "torch", "xalbench.strategies.plugin", "xalbench.models.plugin", "xalbench.explain.plugin",
           "xalbench.harness.confined", "xalbench.harness.remote", "xalbench.sandbox.preload")
#: Seconds added to the strategy's timeout for the sandbox's own per-round work (model rebuild,
#: context, data checks); at most half the timeout.
GRACE = 2.0
_TERM_WAIT = 0.5
#: Environment variable through which the fork server learns what else to import (read by preload).
PRELOAD_ENV = "XALBENCH_SANDBOX_PRELOAD"
#: Native thread pools that would otherwise start threads when a forked process imports scipy or
#: scikit-learn (OpenBLAS does, at load): a process that confines itself must be single-threaded
#: (Landlock binds only the calling thread), and its work is single-threaded anyway (torch's own thread
#: count is set per cell). Set for the fork server and every process it forks, unless already set.
SINGLE_THREADED = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
_EXTRA: list[str] = []
_SERVER: dict[str, int] = {}  # {"pid": the process that started its fork server}
_LOCK = threading.Lock()


def main_imports() -> tuple[str, ...]:
    """Modules the main script took names from (already imported here).

    Every sandbox re-runs the harness's main script as ``__mp_main__`` (multiprocessing's rule for
    ``forkserver``/``spawn``: guard entry points with ``if __name__ == "__main__":``); Python 3.11's
    fork server does not pre-import it, so a script whose imports are not in the server would
    re-import them in every sandbox (about a second for a script that imports pytest). Preloading
    what the script imported makes that re-run cheap."""
    main = sys.modules.get("__main__")
    names: set[str] = set()
    for value in list(vars(main).values()) if main is not None else []:
        name = value.__name__ if isinstance(value, types.ModuleType) else getattr(value, "__module__", None)
        if isinstance(name, str) and name not in ("__main__", "__mp_main__", "builtins") and name in sys.modules:
            names.add(name)
    return tuple(sorted(names))


def preload(*modules: str) -> None:
    """Have the fork server import ``modules`` too (e.g. the modules of a run's plugin strategies:
    ``cls.__module__``), so sandboxes do not import them again. Effective until the server starts
    (the first sandbox of this process); a module that fails to import there is skipped."""
    with _LOCK:
        _EXTRA.extend(m for m in modules if m and m not in _EXTRA)


def _context(extra: tuple[str, ...] = ()) -> Any:
    """The ``forkserver`` context, its server started (spawned; it imports in the background)."""
    ctx = multiprocessing.get_context("forkserver")
    with _LOCK:
        if _SERVER.get("pid") != os.getpid():
            from multiprocessing import forkserver

            ctx.set_forkserver_preload(list(PRELOAD))
            modules = [*main_imports(), *_EXTRA, *(m for m in extra if m not in _EXTRA)]
            os.environ[PRELOAD_ENV] = json.dumps({"sys_path": sys.path, "modules": modules})
            saved = {k: os.environ.get(k) for k in SINGLE_THREADED}
            os.environ.update({k: "1" for k in SINGLE_THREADED if k not in os.environ})
            try:  # the server copies the environment when it is spawned, here
                forkserver.ensure_running()
            finally:
                del os.environ[PRELOAD_ENV]
                for k, v in saved.items():
                    if v is None:
                        os.environ.pop(k, None)
            _SERVER["pid"] = os.getpid()
    return ctx


def warm_up(*modules: str) -> None:
    """Start this process's fork server now (it imports torch and the rest in the background) with
    ``modules`` preloaded as well. Optional: the first :meth:`ProcessQuerier.start` does it."""
    preload(*modules)
    _context()


def start_process(target: Any, *args: Any, name: str) -> tuple[Any, Connection]:
    """Start ``target(child_conn, *args)`` in a fresh process forked from this process's fork server
    (its own session; the caller kills its group); returns the process and the parent's end of a duplex
    pipe. The harness uses it for a confined cell's process."""
    ctx = _context()
    parent_conn, child_conn = ctx.Pipe(duplex=True)
    proc = ctx.Process(target=target, args=(child_conn, *args), name=name, daemon=True)
    try:
        proc.start()
    finally:
        child_conn.close()
    return proc, parent_conn


def stop_process(proc: Any, directory: str | None, conn: Connection | None) -> None:
    """Kill the sandbox's process group (it keeps nothing worth a graceful exit; stragglers the
    strategy started go with it), reap it, remove its files."""
    if proc is not None and proc.pid is not None:
        _kill_group(proc, signal.SIGKILL)
        proc.join()
    if conn is not None:
        conn.close()
    if directory is not None:
        shutil.rmtree(directory, ignore_errors=True)


def _kill_group(proc: Any, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)  # the sandbox called setsid(): its group id is its pid
    except (ProcessLookupError, PermissionError):
        if proc.is_alive():  # killed before setsid(): signal the process alone
            os.kill(proc.pid, sig)


def fault_summary(text: str) -> str:
    """From a ``faulthandler`` dump: the fatal error line and the innermost frames of the thread that
    crashed (most recent first), e.g. the strategy's ``query``."""
    lines = [ln.rstrip() for ln in text.splitlines() if ln.strip()]
    head = [ln for ln in lines if ln.startswith("Fatal Python error")][:1]
    frames: list[str] = []
    for i, line in enumerate(lines):
        if line.startswith("Current thread"):
            for frame in lines[i + 1:]:
                if not frame.startswith("  "):
                    break
                frames.append(frame)
            break
    return "\n".join(head + frames[: TAIL_LINES - len(head)])


class ProcessQuerier:
    """Runs one cell's strategy in a sandbox process (see the module docstring); confined by the kernel
    when the spec says so (``SandboxSpec.confine``: :mod:`xalbench.sandbox.confine`)."""

    def __init__(self, spec: SandboxSpec, data: CellData) -> None:
        self.spec = dataclasses.replace(
            spec, strategy=spec.strategy.portable(), model=spec.model.portable(),
            explainer=None if spec.explainer is None else spec.explainer.portable())
        self._data: CellData | None = data
        self._dir: str | None = None
        self._proc: Any = None
        self._conn: Connection | None = None
        self._starter: threading.Thread | None = None
        self._start_error: BaseException | None = None
        self._ready: Ready | None = None
        self._n_pool = 0
        self._t_start = 0.0
        self._failed: StrategyContractError | None = None
        self._finalizer: weakref.finalize | None = None
        self.boot_seconds: float | None = None

    # ------------------------------------------------------------------ life cycle
    def start(self) -> ProcessQuerier:
        """Start the sandbox in the background; returns at once (idempotent)."""
        if self._starter is not None:
            return self
        if self._data is None:
            raise RuntimeError("this sandbox was closed; create a new querier for the next cell")
        self._dir = tempfile.mkdtemp(prefix="xalbench-sandbox-")
        self._data.save(Path(self._dir))
        self._n_pool = self._data.n_pool
        reads = self._data.referenced_files()
        self._data = None  # the sandbox has its copy; drop ours
        ctx = _context(tuple({ref.cls.__module__ for ref in (self.spec.strategy, self.spec.model, self.spec.explainer)
                              if ref is not None and ref.cls is not None}))
        parent_conn, child_conn = ctx.Pipe(duplex=True)
        self._conn = parent_conn
        self._proc = ctx.Process(target=main, args=(child_conn, self.spec, self._dir, reads),
                                 name="xalbench-sandbox", daemon=True)
        self._t_start = time.perf_counter()

        def launch() -> None:
            try:
                self._proc.start()
            except BaseException as exc:  # noqa: BLE001 - reported by the first query
                self._start_error = exc
            finally:
                child_conn.close()

        self._starter = threading.Thread(target=launch, name="xalbench-sandbox-start", daemon=True)
        self._starter.start()
        self._finalizer = weakref.finalize(self, stop_process, self._proc, self._dir, self._conn)
        return self

    def close(self) -> None:
        """Stop the sandbox and remove its files (safe to call twice)."""
        if self._starter is not None:
            self._starter.join(self.spec.boot_timeout)
        if self._finalizer is not None:
            self._finalizer()
        self._data = None

    def __enter__(self) -> ProcessQuerier:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    @property
    def isolation(self) -> str:  # type: ignore[override]
        return "confined" if self.spec.confine else "process"

    @property
    def confinement(self) -> dict[str, Any] | None:
        """What the sandbox applied to itself (once it has started; ``None`` when not confined)."""
        return None if self._ready is None else self._ready.confinement

    # ------------------------------------------------------------------ rounds
    def query(self, request: RoundRequest) -> QueryReply:
        """The strategy's validated answer for ``request``; raises :class:`StrategyContractError`."""
        if self._failed is not None:
            raise RuntimeError(f"this sandbox already failed ({self._failed.rule}); the cell is over")
        self.start()
        try:
            self._wait_ready()
            t0 = time.perf_counter()
            try:
                send(self._conn, request)
            except OSError:
                pass  # the process died; _receive reports how
            grace = min(GRACE, 0.5 * self.spec.timeout)
            reply = self._receive(self.spec.timeout + grace, what="answer", limit=self.spec.timeout)
            wall = time.perf_counter() - t0
            if isinstance(reply, ErrorReply):
                raise error_from_reply(reply)
            if not isinstance(reply, QueryReply):
                raise StrategyContractError("type", f"the sandbox of {self._name} answered {type(reply).__name__}")
            n_unlabelled = self._n_pool - len(request.labelled)
            indices = validate_indices(reply.indices, k=request.k, n_pool=self._n_pool,
                                       labelled=np.asarray(request.labelled, dtype=np.int64),
                                       n_unlabelled=n_unlabelled, name=self._name)
        except StrategyContractError as err:
            self._failed = err
            self.close()
            raise
        scores = None if reply.scores is None else np.asarray(reply.scores, dtype=np.float64)
        if scores is not None and scores.shape != (n_unlabelled,):
            scores = None
        return QueryReply(indices=indices, scores=scores, seconds=float(reply.seconds), wall_seconds=wall,
                          attempts=tuple(reply.attempts))

    @property
    def _name(self) -> str:
        return f"strategy {self.spec.strategy.name!r}"

    def _wait_ready(self) -> None:
        if self._ready is not None:
            return
        assert self._starter is not None
        self._starter.join(self.spec.boot_timeout)
        if self._start_error is not None:
            raise StrategyContractError("crash", f"the sandbox for {self._name} could not start: "
                                                 f"{type(self._start_error).__name__}: {self._start_error}")
        if self._starter.is_alive():
            raise StrategyTimeoutError(f"the sandbox for {self._name} did not start within "
                                       f"{self.spec.boot_timeout:g} s")
        left = max(0.0, self.spec.boot_timeout - (time.perf_counter() - self._t_start))
        reply = self._receive(left, what="start", limit=self.spec.boot_timeout)
        if isinstance(reply, ErrorReply):
            raise error_from_reply(reply)
        if not isinstance(reply, Ready):
            raise StrategyContractError("crash", f"the sandbox for {self._name} sent {type(reply).__name__} "
                                                 "instead of starting")
        self._ready = reply
        self.boot_seconds = time.perf_counter() - self._t_start

    def _receive(self, timeout: float, *, what: str, limit: float) -> Any:
        """The next message, or the right error if the process dies or stays silent."""
        assert self._conn is not None and self._proc is not None
        ready = wait([self._conn, self._proc.sentinel], timeout)
        if self._conn in ready or self._conn.poll():
            try:
                return receive(self._conn)
            except (EOFError, OSError):
                pass  # died while sending: a crash
        if not ready:
            _kill_group(self._proc, signal.SIGTERM)
            self._proc.join(_TERM_WAIT)
            _kill_group(self._proc, signal.SIGKILL)
            self._proc.join()
            verb = "start" if what == "start" else "return"
            setting = "boot_timeout" if what == "start" else "strategy_timeout"
            raise StrategyTimeoutError(
                f"{self._name} did not {verb} within {limit:g} s ({setting}); its sandbox was killed — "
                "raise strategy_timeout in the suite if the strategy is just slow")
        raise self._death()

    def _death(self) -> StrategyContractError:
        self._proc.join(5)
        code = self._proc.exitcode
        log = Path(self._dir or "") / FAULT_LOG
        tail = fault_summary(log.read_text(encoding="utf-8", errors="replace")) if self._dir and log.exists() else ""
        if code == -signal.SIGKILL:
            reply = ErrorReply("memory", f"the sandbox of {self._name} was killed (SIGKILL) without answering, "
                                         "most likely by the out-of-memory killer", tail)
        else:
            how = (f"signal {signal.Signals(-code).name}" if code is not None and code < 0
                   else f"exit code {code}")
            reply = ErrorReply("crash", f"the sandbox of {self._name} died ({how}) without answering", tail)
        return error_from_reply(reply)
