"""Run a function in a forked child and get its result back through a pipe (tests only).

The child inherits everything already imported here (torch included); it reports a picklable
value, or the text of its exception, then leaves with ``os._exit`` (no pytest teardown in it).
"""

from __future__ import annotations

import os
import pickle
import traceback
from collections.abc import Callable
from typing import Any

__all__ = ["ChildFailed", "in_child"]


class ChildFailed(AssertionError):
    """The child raised (its traceback is the message) or died without reporting."""


def in_child(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            payload = pickle.dumps(("ok", fn(*args, **kwargs)))
        except BaseException:  # noqa: BLE001 - everything goes back to the parent
            payload = pickle.dumps(("error", traceback.format_exc()))
        with os.fdopen(write, "wb") as fh:
            fh.write(payload)
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as fh:
        data = fh.read()
    _, status = os.waitpid(pid, 0)
    if not data:
        raise ChildFailed(f"the child died without reporting (wait status {status})")
    kind, value = pickle.loads(data)
    if kind == "error":
        raise ChildFailed(value)
    return value
