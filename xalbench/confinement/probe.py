"""What this kernel and process offer for confinement — found out without confining anything.

The Landlock ABI comes from a version query (restricts nothing), seccomp from libseccomp and
``/proc/self/status``, the network namespace from ``unshare`` tried in a short-lived forked child,
the id drop from the rights on the profile's paths. :attr:`Probe.level` is the default isolation
level: ``confined`` where Landlock ABI ≥ 4 is available, else ``process`` (with one warning).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from xalbench.confinement import identity, landlock, netns, seccomp
from xalbench.confinement.apply import MIN_ABI
from xalbench.confinement.profile import Profile

__all__ = ["Probe", "probe", "resolve_isolation"]


@dataclasses.dataclass(frozen=True)
class Probe:
    landlock_abi: int | None
    landlock_reason: str
    seccomp: bool
    seccomp_reason: str
    network_namespace: bool
    network_namespace_reason: str
    uid: int
    uid_drop: bool
    uid_reason: str

    @property
    def level(self) -> str:
        """The default isolation level here: ``confined`` or ``process``."""
        return "confined" if self.landlock_abi is not None and self.landlock_abi >= MIN_ABI else "process"

    def missing(self) -> tuple[str, ...]:
        """What a confined process would lack here, one phrase each."""
        out = []
        if self.landlock_abi is None:
            out.append(f"Landlock ({self.landlock_reason}): no filesystem, TCP or signal confinement")
        elif self.landlock_abi < MIN_ABI:
            out.append(f"Landlock ABI >= {MIN_ABI} (have {self.landlock_abi}): no TCP confinement")
        elif self.landlock_abi < 6:
            out.append(f"Landlock ABI >= 6 (have {self.landlock_abi}): signals to other processes not scoped")
        if not self.seccomp:
            out.append(f"seccomp ({self.seccomp_reason}): UDP and unix sockets open unless a network namespace is")
        if not self.network_namespace and not self.seccomp:
            out.append(f"network namespace ({self.network_namespace_reason})")
        return tuple(out)

    def warning(self) -> str | None:
        """One line for the ``process`` fallback (None where ``confined`` is available)."""
        if self.level == "confined":
            return None
        return ("OS confinement unavailable, strategies run with process isolation only: missing "
                + "; ".join(self.missing()))

    def as_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "level": self.level, "missing": list(self.missing())}


def probe(profile: Profile | None = None) -> Probe:
    """What :func:`~xalbench.confinement.apply.apply` could do here with ``profile`` (default: the
    running interpreter's), without restricting the calling process."""
    abi, abi_why = landlock.abi_version()
    sec, sec_why = seccomp.available()
    ns, ns_why = netns.can_enter()
    profile = profile or Profile.for_interpreter()
    decision = identity.decide(profile.readable(), profile.write, wanted=profile.drop_uid)
    return Probe(landlock_abi=abi, landlock_reason=abi_why, seccomp=sec, seccomp_reason=sec_why,
                 network_namespace=ns, network_namespace_reason=ns_why or "available", uid=os.geteuid(),
                 uid_drop=decision.drop, uid_reason=decision.reason)


def resolve_isolation(requested: str, *, warn: bool = True) -> str:
    """The isolation level to run with: ``auto`` → ``confined`` where the kernel offers Landlock ABI ≥ 4,
    else ``process`` (with one warning on stderr saying what is missing); ``confined`` asked for on a
    kernel that cannot → :class:`~xalbench.errors.ConfigError` before any work; ``process`` and
    ``inline`` as asked."""
    import sys

    from xalbench.errors import ConfigError

    levels = ("auto", "confined", "process", "inline")
    if requested not in levels:
        raise ConfigError(f"isolation must be one of {', '.join(levels)}, got {requested!r}")
    if requested in ("process", "inline"):
        return requested
    found = probe()
    if found.level == "confined":
        return "confined"
    if requested == "confined":
        raise ConfigError("--isolation confined needs Landlock ABI >= 4 (Linux >= 6.7 with Landlock enabled); "
                          f"missing here: {'; '.join(found.missing())}; use --isolation process")
    if warn:
        print(f"xalbench: warning: {found.warning()}", file=sys.stderr)
    return "process"
