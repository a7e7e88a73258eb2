"""The sandbox process's main loop (runs in a ``forkserver`` child, never in the harness).

:func:`main` first puts the process in its own session and process group (``os.setsid``, so
the harness can kill it together with anything it spawned), removes environment variables
that look like credentials, writes Python tracebacks of fatal signals to ``fault.log`` in the
cell's data directory and gives numpy's legacy global generator a fresh random state (as a new
process would have). It imports the strategy's, model's and explainer's classes, then — with
``SandboxSpec.confine`` — confines itself with the kernel (:mod:`xalbench.sandbox.confine`:
files, network, signals, ptrace, resource limits; the address-space limit among them), else
applies only the optional address-space limit (``RLIMIT_AS``); only then does any data arrive.
It sets the cell's thread count and deterministic kernels (:func:`configure_sandbox_determinism`),
loads the cell's data (its own copy; a mapped pool is mapped read-only from the prepared cache),
creates the strategy and replies :class:`~xalbench.sandbox.messages.Ready` (with the record of
the confinement applied);
after that it answers one :class:`~xalbench.sandbox.messages.RoundRequest` at a time until
it receives ``None`` or the pipe closes. Messages are plain :mod:`pickle` bytes both ways.
"""

from __future__ import annotations

import faulthandler
import multiprocessing
import os
import pickle
import resource
import signal
import sys
import tempfile
import threading
import time
from collections.abc import MutableMapping
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np
import torch

from xalbench.sandbox.messages import CellData, Ready, SandboxSpec
from xalbench.sandbox.session import QuerySession, failure_of

__all__ = ["FAULT_LOG", "SECRET_WORDS", "configure_sandbox_determinism", "die_with_parent", "main", "scrub_environment"]

#: File (in the cell's data directory) that receives tracebacks of fatal signals.
FAULT_LOG = "fault.log"
#: Environment variables whose names contain one of these (any case) are removed in the sandbox.
SECRET_WORDS = ("TOKEN", "SECRET", "KEY", "PASSWORD", "PASSWD", "CREDENTIAL", "AUTH", "PRIVATE", "COOKIE")


def scrub_environment(env: MutableMapping[str, str]) -> list[str]:
    """Remove variables that look like credentials from ``env``; return their names."""
    names = [name for name in env if any(word in name.upper() for word in SECRET_WORDS)]
    for name in names:
        del env[name]
    return sorted(names)


def send(conn: Connection, message: Any) -> None:
    conn.send_bytes(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))


def receive(conn: Connection) -> Any:
    return pickle.loads(conn.recv_bytes())


def die_with_parent() -> None:
    """Kill this process group as soon as the harness process is gone (no orphaned sandboxes)."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        parent.join()
        os.killpg(os.getpgid(0), signal.SIGKILL)

    threading.Thread(target=watch, name="xalbench-sandbox-watchdog", daemon=True).start()


def configure_sandbox_determinism(threads: int, device: torch.device) -> None:
    """:func:`xalbench.seeding.configure_determinism`'s settings (thread count, deterministic
    kernels, cuDNN flags) without importing ``torch._inductor`` — which ``torch.use_deterministic_algorithms``
    does for its ``torch.compile`` flag, at the cost of more CPU than the rest of a sandbox's start.
    That flag is set too when the inductor is already imported; a strategy that imports it itself
    (``torch.compile``) gets the inductor's default."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.set_num_threads(max(1, int(threads)))
    warn_only = device.type == "cuda"
    torch._C._set_deterministic_algorithms(True, warn_only=warn_only)
    inductor = sys.modules.get("torch._inductor.config")
    if inductor is not None:
        inductor.deterministic = True
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True


def _attempt_log(data_dir: str, reads: tuple[str, ...]) -> Any:
    """The kit's record of escape attempts: reads outside the code, the cell data and the declared files;
    writes outside the scratch directory (:mod:`xalbench.sandbox.audit`)."""
    from xalbench.confinement import code_paths
    from xalbench.sandbox.audit import AttemptLog
    from xalbench.sandbox.confine import SCRATCH

    scratch = Path(data_dir) / SCRATCH
    scratch.mkdir(mode=0o700, exist_ok=True)
    os.environ["TMPDIR"] = str(scratch)
    tempfile.tempdir = None  # the next gettempdir() reads TMPDIR again
    return AttemptLog((*code_paths(), data_dir, *reads), (str(scratch),))


def main(conn: Connection, spec: SandboxSpec, data_dir: str, reads: tuple[str, ...] = ()) -> None:
    """Entry point of the sandbox process (a top-level function, so it can be a Process target).

    ``reads``: files the cell data maps (a prepared cache) — granted read-only when confined."""
    os.setsid()
    scrub_environment(os.environ)
    fault_log = open(Path(data_dir) / FAULT_LOG, "w", encoding="utf-8")  # noqa: SIM115 - lives as long as the process
    faulthandler.enable(fault_log, all_threads=True)
    np.random.seed(int.from_bytes(os.urandom(4), "little"))
    t0 = time.perf_counter()
    confinement = None
    try:
        classes = QuerySession.classes(spec)  # the strategy's code is imported here, before confinement
        attempts = _attempt_log(data_dir, (*reads, *spec.reads)) if spec.audit else None
        if spec.confine:
            from xalbench.sandbox.confine import confine_sandbox

            confinement = confine_sandbox(data_dir, (*reads, *spec.reads), spec.memory_limit)
        elif spec.memory_limit is not None:
            resource.setrlimit(resource.RLIMIT_AS, (spec.memory_limit, spec.memory_limit))
        die_with_parent()  # a thread: only after confinement, which binds the calling thread alone
        configure_sandbox_determinism(spec.threads, torch.device(spec.device))
        session = QuerySession(spec, CellData.load(Path(data_dir)), classes=classes, attempts=attempts)
    except BaseException as exc:  # noqa: BLE001 - reported to the harness, which fails the cell
        send(conn, failure_of(exc, during="start"))
        return
    send(conn, Ready(os.getpid(), time.perf_counter() - t0, confinement))
    while True:
        try:
            request = receive(conn)
        except EOFError:
            return
        if request is None:
            return
        try:
            reply: Any = session.answer(request)
        except BaseException as exc:  # noqa: BLE001 - every failure becomes a named rule
            reply = failure_of(exc)
        send(conn, reply)
