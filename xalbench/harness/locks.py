"""A cell claims its work with an atomic lock file, so two workers, two clusters sharing one results
directory, or a restarted controller never run the same cell twice.

``cells/<key>.lock`` is created with ``O_CREAT | O_EXCL`` (atomic on local and NFS ≥ 3 file
systems) and holds the claimant's host, process id and start time; a background thread touches
it every :data:`HEARTBEAT` seconds while the cell runs. A lock is **stale** — and is taken over —
when its owner is a dead process on this host, or when its heartbeat is older than
``XALBENCH_LOCK_TTL`` seconds (default :data:`DEFAULT_TTL`; an owner on another host that lost
its node). A worker that finds a live lock waits for the other claimant's result.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from pathlib import Path

__all__ = ["DEFAULT_TTL", "HEARTBEAT", "CellLock"]

HEARTBEAT = 30.0
DEFAULT_TTL = 300.0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class CellLock:
    """One cell's claim (a context manager once acquired)."""

    def __init__(self, path: Path, ttl: float | None = None) -> None:
        self.path = path
        self.ttl = float(os.environ.get("XALBENCH_LOCK_TTL", DEFAULT_TTL)) if ttl is None else ttl
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _stale(self) -> bool:
        try:
            info = json.loads(self.path.read_text(encoding="utf-8"))
            age = time.time() - self.path.stat().st_mtime
        except (OSError, ValueError):
            return True  # unreadable or vanished: take it over
        if info.get("host") == socket.gethostname() and not _alive(int(info.get("pid", -1))):
            return True
        return age > self.ttl

    def try_acquire(self) -> bool:
        """Claim the cell (taking over a stale lock); ``False`` if someone else holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                if not self._stale():
                    return False
                try:  # break the stale lock atomically: only one taker wins the rename
                    os.replace(self.path, self.path.with_name(f"{self.path.name}.stale.{os.getpid()}"))
                    os.unlink(self.path.with_name(f"{self.path.name}.stale.{os.getpid()}"))
                except FileNotFoundError:
                    pass
                continue
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump({"host": socket.gethostname(), "pid": os.getpid(), "since": time.time()}, fh)
            self._thread = threading.Thread(target=self._beat, name="xalbench-lock", daemon=True)
            self._thread.start()
            return True
        return False

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT):
            try:
                os.utime(self.path)
            except OSError:
                return

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass

    def __enter__(self) -> CellLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
