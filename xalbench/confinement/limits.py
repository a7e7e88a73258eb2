"""Resource limits (``setrlimit``), soft = hard so the process cannot raise them again.

**Protected**: a fork or thread bomb (``RLIMIT_NPROC``), descriptor exhaustion (``NOFILE``), filling
the disk (``FSIZE``: a write past it fails and the process gets ``SIGXFSZ``), memory
(``AS``, optional: it counts virtual memory, so leave head-room above torch's import footprint)
and core dumps that would copy the process's memory to disk (``CORE = 0``).
**Not protected**: ``RLIMIT_NPROC`` counts every process and thread of the *user*, not of this
process, and is not enforced for root (it takes effect after an id drop); CPU time and wall
time are the caller's job (a timeout).
"""

from __future__ import annotations

import dataclasses
import resource

__all__ = ["Limits", "apply_limits", "system_tasks"]


@dataclasses.dataclass(frozen=True)
class Limits:
    """Values to set; None leaves a limit as it is.

    ``nproc_extra``: tasks (processes + threads) allowed beyond those that exist on the whole
    system now (an upper bound on the user's own, read in one go from ``/proc/loadavg``).
    """

    nofile: int | None = 1024
    fsize: int | None = 4 << 30
    address_space: int | None = None
    core: int | None = 0
    nproc_extra: int | None = 512

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if value is not None and (not isinstance(value, int) or value < 0):
                raise ValueError(f"Limits.{field.name} must be a non-negative int or None, got {value!r}")


def system_tasks() -> int:
    """Tasks (processes and threads) existing now on the system (``/proc/loadavg``'s 4th field)."""
    with open("/proc/loadavg", encoding="ascii") as fh:
        return int(fh.read().split()[3].split("/")[1])


def _set(name: str, value: int) -> tuple[int, int]:
    which = getattr(resource, name)
    _, hard = resource.getrlimit(which)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)  # lowering is always allowed, raising the hard limit is not
    resource.setrlimit(which, (value, value))
    return value, value


def apply_limits(limits: Limits) -> dict[str, list[int]]:
    """Set ``limits`` on the calling process; returns ``{"RLIMIT_X": [soft, hard]}`` as set."""
    wanted = {"RLIMIT_NOFILE": limits.nofile, "RLIMIT_FSIZE": limits.fsize, "RLIMIT_AS": limits.address_space,
              "RLIMIT_CORE": limits.core}
    if limits.nproc_extra is not None:
        wanted["RLIMIT_NPROC"] = system_tasks() + limits.nproc_extra
    return {name: list(_set(name, value)) for name, value in wanted.items() if value is not None}
