"""Confine the calling process to a :class:`Profile`; record exactly what was applied.

Meant to be called first thing in a freshly forked, single-threaded child that has already
imported its code and before it receives any data. Everything that can fail is *prepared*
first (paths opened, Landlock ruleset and seccomp filter built, the id drop decided) — an error
there raises :class:`~xalbench.errors.ConfinementError` with nothing applied. Then, in this
order: resource limits, a network namespace (while still privileged), the id drop, no_new_privs,
Landlock, seccomp (last: it forbids ``unshare``). What the kernel does not offer is skipped and
named in the returned :class:`Applied`; only ``required=True`` turns a missing Landlock ≥ 4 into
an error (raised before anything is applied).

What a confined process can still do, whatever the level: use every descriptor it inherited
(close what it must not have before calling :func:`apply`), read the memory it inherited by
fork, ``stat`` any path, spend CPU time (the caller's timeout), and talk to whoever holds the
other end of its inherited pipes.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from xalbench.confinement import identity, landlock, netns, seccomp
from xalbench.confinement.limits import apply_limits
from xalbench.confinement.paths import prepare_imports
from xalbench.confinement.profile import Profile
from xalbench.confinement.syscalls import PR_GET_NO_NEW_PRIVS, PR_SET_NO_NEW_PRIVS, prctl
from xalbench.errors import ConfinementError

__all__ = ["Applied", "apply", "describe", "threads"]

MIN_ABI = 4  # filesystem + TCP: the least the `confined` level means


@dataclasses.dataclass(frozen=True)
class Applied:
    """What :func:`apply` actually did (JSON-able through :meth:`as_dict`).

    ``level``: ``confined`` (Landlock ≥ 4 on files and TCP, no UDP either — network namespace or
    seccomp — and the seccomp filter), ``confined-partial`` (some of it: the reasons say what is
    missing), ``none`` (no confinement beyond resource limits).
    ``network``: ``namespace`` | ``seccomp`` (no socket can be created) | ``landlock-tcp-only`` (UDP
    still open) | ``allowed`` (the profile allows it) | ``none``.
    """

    level: str
    landlock_abi: int | None
    landlock_reason: str
    landlock_rules: int
    landlock_tcp: bool
    landlock_scopes: tuple[str, ...]
    network: str
    network_reason: str
    seccomp: bool
    seccomp_reason: str
    seccomp_denied: tuple[str, ...]
    no_new_privs: bool
    uid_before: int
    uid_after: int
    uid_reason: str
    rlimits: tuple[tuple[str, int, int], ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "landlock": {"abi": self.landlock_abi, "reason": self.landlock_reason, "rules": self.landlock_rules,
                         "tcp": self.landlock_tcp, "scopes": list(self.landlock_scopes)},
            "network": {"mode": self.network, "reason": self.network_reason},
            "seccomp": {"on": self.seccomp, "reason": self.seccomp_reason, "denied": list(self.seccomp_denied)},
            "no_new_privs": self.no_new_privs,
            "uid": {"before": self.uid_before, "after": self.uid_after, "reason": self.uid_reason},
            "rlimits": {name: [soft, hard] for name, soft, hard in self.rlimits},
        }


def threads() -> int:
    """Threads of the calling process (Landlock, seccomp and namespaces bind only the calling one)."""
    return len(os.listdir("/proc/self/task"))


def _prepare_landlock(profile: Profile, abi: int | None) -> landlock.Ruleset | None:
    if abi is None:
        return None
    ruleset = landlock.Ruleset(abi, deny_tcp=not profile.network)
    try:
        ruleset.add_all(profile.rules())
    except BaseException:
        ruleset.close()
        raise
    return ruleset


def _prepare_seccomp(profile: Profile) -> tuple[tuple[bytes, tuple[str, ...]] | None, str]:
    if not profile.seccomp:
        return None, "off in the profile"
    ok, why = seccomp.available()
    if not ok:
        return None, why
    denied = seccomp.DENIED if not profile.network else tuple(n for n in seccomp.DENIED if n != "socket")
    return seccomp.compiled(seccomp.FilterSpec(denied=denied)), ""


def _network(profile: Profile, in_namespace: bool, ns_why: str, sec: bool, tcp: bool) -> tuple[str, str]:
    if profile.network:
        return "allowed", "the profile allows network access"
    if in_namespace:
        extra = " and no socket() at all (seccomp)" if sec else ""
        return "namespace", f"own network namespace (no interfaces){extra}"
    if sec:
        return "seccomp", f"socket() denied for every address family (no namespace: {ns_why})"
    if tcp:
        return "landlock-tcp-only", f"TCP denied by Landlock; UDP and unix sockets open (no namespace: {ns_why}; no seccomp)"
    return "none", f"no namespace ({ns_why}), no seccomp, no Landlock TCP rules"


def _level(abi: int | None, ruleset_applied: bool, network: str, sec: bool) -> str:
    if ruleset_applied and abi is not None and abi >= MIN_ABI and network in ("namespace", "seccomp") and sec:
        return "confined"
    if ruleset_applied or sec or network in ("namespace", "seccomp"):
        return "confined-partial"
    return "none"


def apply(profile: Profile, *, required: bool = False) -> Applied:
    """Confine the calling process to ``profile`` (best effort; see the module docstring).

    Raises :class:`ConfinementError` *before applying anything* if the process has more than one
    thread, a declared ``read``/``write`` path is missing, a path cannot be opened, or
    ``required`` and the kernel offers no Landlock ABI ≥ 4. An error *after* the first step says
    which steps took effect: the process is then partly confined and must exit.
    """
    n = threads()
    if n != 1:
        raise ConfinementError(f"apply() needs a single-threaded process ({n} threads: only the calling one would "
                               "be confined); call it first thing in a freshly forked child")
    abi, abi_why = landlock.abi_version()
    if required and (abi is None or abi < MIN_ABI):
        have = f"ABI {abi}" if abi is not None else abi_why
        raise ConfinementError(f"confinement requires Landlock ABI >= {MIN_ABI} (files and TCP); this kernel has "
                               f"{have}; run with --isolation process, or on Linux >= 6.7 with Landlock enabled")
    missing = profile.missing()
    if missing:
        raise ConfinementError(f"confinement profile names paths that do not exist: {', '.join(missing)}")
    uid_before = os.geteuid()
    decision = identity.decide(profile.readable(), profile.write, wanted=profile.drop_uid, euid=uid_before)
    prepare_imports()
    try:
        ruleset = _prepare_landlock(profile, abi)
    except OSError as exc:
        raise ConfinementError(f"cannot build the Landlock ruleset ({exc}); nothing was applied") from exc
    try:
        filt, sec_why = _prepare_seccomp(profile)
    except OSError as exc:
        if ruleset is not None:
            ruleset.close()
        raise ConfinementError(f"cannot build the seccomp filter ({exc}); nothing was applied") from exc

    done: list[str] = []
    try:
        rlimits = apply_limits(profile.limits)
        done.append("rlimits")
        in_ns, ns_why = (False, "the profile allows network access") if profile.network else netns.enter()
        if in_ns:
            done.append("network namespace")
        if decision.drop:
            identity.drop(decision.uid, profile.write)
            done.append("uid drop")
        prctl(PR_SET_NO_NEW_PRIVS, 1)
        done.append("no_new_privs")
        if ruleset is not None:
            ruleset.restrict()
            done.append("landlock")
        if filt is not None:
            seccomp.install(filt[0])
            done.append("seccomp")
    except (OSError, ValueError) as exc:
        raise ConfinementError(f"confinement failed after {', '.join(done) or 'nothing'} took effect ({exc}); "
                               "this process is partly confined: exit it") from exc
    finally:
        if ruleset is not None:
            ruleset.close()

    landlocked = "landlock" in done
    sec = "seccomp" in done
    tcp = landlocked and ruleset is not None and bool(ruleset.handled_net)
    scopes = tuple(name for bit, name in ((landlock.SCOPE_SIGNAL, "signal"),
                                          (landlock.SCOPE_ABSTRACT_UNIX_SOCKET, "abstract-unix-socket"))
                   if landlocked and ruleset is not None and ruleset.scoped & bit)
    network, net_why = _network(profile, in_ns, ns_why, sec, tcp)
    ll_why = abi_why if abi is None else (f"Landlock ABI {abi}" + ("" if abi >= MIN_ABI else
                                                                    f" (< {MIN_ABI}: no TCP rules)"))
    return Applied(
        level=_level(abi, landlocked, network, sec), landlock_abi=abi if landlocked else None, landlock_reason=ll_why,
        landlock_rules=ruleset.rules if ruleset is not None else 0, landlock_tcp=tcp, landlock_scopes=scopes,
        network=network, network_reason=net_why, seccomp=sec, seccomp_reason=sec_why or "denied calls fail with EPERM",
        seccomp_denied=filt[1] if filt is not None else (),
        no_new_privs=bool(prctl(PR_GET_NO_NEW_PRIVS)), uid_before=uid_before, uid_after=os.geteuid(),
        uid_reason=decision.reason, rlimits=tuple((k, v[0], v[1]) for k, v in rlimits.items()),
    )


def describe(record: dict[str, Any] | None) -> str:
    """One line for a report header from :meth:`Applied.as_dict` (``none`` when nothing was applied)."""
    if not record:
        return "none"
    parts = [record.get("level", "?")]
    abi = (record.get("landlock") or {}).get("abi")
    parts.append(f"Landlock ABI {abi}" if abi else "no Landlock")
    parts.append(f"network: {(record.get('network') or {}).get('mode', '?')}")
    parts.append("seccomp" if (record.get("seccomp") or {}).get("on") else "no seccomp")
    uid = record.get("uid") or {}
    parts.append(f"uid {uid.get('after')}" + (" (dropped)" if uid.get("after") != uid.get("before") else ""))
    return ", ".join(parts)
