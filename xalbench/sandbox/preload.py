"""Imported once by the sandbox fork server, so that every sandbox forked from it starts warm.

It imports the sandbox's own code (and with it torch and numpy), then the modules
the harness named in the :data:`PRELOAD_ENV` environment variable (its ``sys.path`` and the
modules its main script and its strategies come from) — each under ``try``, so a module that
fails here is simply imported (and fails) in the sandbox that needs it — and finally freezes the
garbage collector's view of everything imported so far (never scanned, never copied in a
sandbox). It creates no CUDA context (forking after one is unsafe) and does not import
``torch._inductor`` (see :func:`xalbench.sandbox.child.configure_sandbox_determinism`).
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import sys

import xalbench.sandbox.child  # noqa: F401 - the sandbox's main loop and everything it imports
from xalbench.sandbox.client import PRELOAD_ENV


def _import_requested() -> None:
    try:
        request = json.loads(os.environ.pop(PRELOAD_ENV))
    except (KeyError, ValueError):
        return
    sys.path[:] = [p for p in request.get("sys_path", []) if isinstance(p, str)] or sys.path
    for name in request.get("modules", []):
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001, S112 - the sandbox that needs it will report the error
            continue


if __name__ != "__main__" and "multiprocessing.forkserver" in sys.modules and PRELOAD_ENV in os.environ:
    _import_requested()
    gc.freeze()  # what the server imported is never scanned (or copied) in a sandbox
