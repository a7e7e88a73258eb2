"""Dropping root to an unprivileged user id, only where the code stays readable afterwards.

As root, :func:`drop` calls ``setgroups([])``, ``setgid`` and ``setuid`` (real, effective and saved
ids; every capability is lost). Files the process must open afterwards must then be readable by
that id: :func:`decide` checks every path the process will need (and each of its ancestors)
*before* anything is changed, and refuses with the first path that would become unreachable —
e.g. an interpreter under ``/root`` (mode 0700) — so the caller falls back to same-uid confinement
with that reason recorded.

**Protected** after a drop: every file only root (or the former user) may read or write (the
results key, other users' homes), and signals/ptrace by plain permission checks.
**Not checked**: files *inside* a granted directory (only the granted paths and their ancestors
are checked), and descriptors opened before the drop (they keep working).
"""

from __future__ import annotations

import dataclasses
import os
import stat
from collections.abc import Iterable
from pathlib import Path

__all__ = ["NOBODY", "UidDecision", "decide", "drop", "unreadable"]

NOBODY = 65534


@dataclasses.dataclass(frozen=True)
class UidDecision:
    drop: bool
    reason: str
    uid: int = NOBODY


def _mode(path: Path, cache: dict[Path, int | None] | None = None) -> int | None:
    if cache is not None and path in cache:
        return cache[path]
    try:
        mode: int | None = path.stat().st_mode
    except OSError:
        mode = None
    if cache is not None:
        cache[path] = mode
    return mode


def unreadable(path: str | os.PathLike[str], *, write: bool = False,
               cache: dict[Path, int | None] | None = None) -> str | None:
    """Why an unrelated user id could not reach ``path`` (None if it can): an ancestor that is not
    world-searchable, or ``path`` itself not world-readable (and searchable, for a directory).
    With ``write`` the path itself is not checked (the caller hands it over with ``chown``).
    ``cache`` keeps modes between calls (paths share ancestors)."""
    p = Path(os.path.abspath(path))
    for parent in reversed(p.parents):
        mode = _mode(parent, cache)
        if mode is not None and not mode & stat.S_IXOTH:
            return f"{parent} is mode {stat.S_IMODE(mode):04o} (not searchable by other users)"
    if write:
        return None
    mode = _mode(p, cache)
    if mode is None:
        return None  # a missing path is not granted at all
    need = stat.S_IROTH | (stat.S_IXOTH if stat.S_ISDIR(mode) else 0)
    if mode & need != need:
        return f"{p} is mode {stat.S_IMODE(mode):04o} (not readable by other users)"
    return None


def decide(read: Iterable[str], write: Iterable[str], *, wanted: bool = True, euid: int | None = None,
           uid: int = NOBODY) -> UidDecision:
    """Whether to drop to ``uid``: only as root, when asked, and when every path stays reachable."""
    euid = os.geteuid() if euid is None else euid
    if not wanted:
        return UidDecision(False, "not asked for by the profile", uid)
    if euid != 0:
        return UidDecision(False, f"not running as root (uid {euid}): nothing to drop", uid)
    cache: dict[Path, int | None] = {}
    for path in read:
        why = unreadable(path, cache=cache)
        if why:
            return UidDecision(False, f"kept uid 0: {why}; needed to read {path}", uid)
    for path in write:
        why = unreadable(path, write=True, cache=cache)
        if why:
            return UidDecision(False, f"kept uid 0: {why}; needed to write {path}", uid)
    return UidDecision(True, f"dropped to uid {uid}", uid)


def drop(uid: int, write: Iterable[str]) -> None:
    """Hand ``write`` (directories/files, not recursively) to ``uid``, then drop every id and group to it."""
    for path in write:
        os.chown(path, uid, uid)
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)
