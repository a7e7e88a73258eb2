"""Landlock (Linux ≥ 5.13, no privilege needed) by ctypes: filesystem, TCP and scope restriction.

A process builds a *ruleset* (the access rights it wants the kernel to police, and per path
hierarchy the rights it keeps), then restricts itself to it — irreversibly, together with every
process it later creates. What each ABI adds (a right unknown to the running kernel is dropped
from the ruleset, so the same code works on every ABI, each protecting what it can):

* ABI 1 — files: execute, read file, read (list) directory, write file, remove, make
  dir/regular/socket/fifo/block/char/symlink. ABI 2 — ``REFER`` (rename/link across
  directories). ABI 3 — ``TRUNCATE``. ABI 5 — ``IOCTL_DEV`` (ioctl on device files).
* ABI 4 — TCP ``bind`` and ``connect``: handled with no port rule, so both are denied on every port.
* ABI 6 — scopes: no signal to, and no connection to an abstract unix socket of, a process
  outside the restricted domain (the parent included).

**Protected** once restricted: opening any path beneath no rule (``/proc/<other pid>/…``
included), writing, creating, removing or renaming outside the writable rules, TCP (ABI ≥ 4),
signals and abstract unix sockets out of the domain (ABI ≥ 6); a Landlock-confined process also
cannot ``ptrace`` or open ``/proc/<pid>/mem`` of a process outside its domain.
**Not protected**: UDP, raw and named unix sockets (Landlock has no rule for them: see
:mod:`.seccomp`), ``stat``/``readlink`` on any path (metadata), descriptors opened before the
restriction, and threads other than the calling one (restrict a single-threaded process).
"""

from __future__ import annotations

import ctypes
import dataclasses
import errno
import os
import stat
from collections.abc import Iterable

from xalbench.confinement.syscalls import check, landlock_numbers, libc

__all__ = ["FS", "NET_BIND_TCP", "NET_CONNECT_TCP", "SCOPE_ABSTRACT_UNIX_SOCKET", "SCOPE_SIGNAL", "Rule",
           "abi_version", "fs_rights", "READ", "READ_EXECUTE", "READ_WRITE", "FILE_RIGHTS", "Ruleset"]


class FS:
    """``LANDLOCK_ACCESS_FS_*`` bits (linux/landlock.h)."""

    EXECUTE = 1 << 0
    WRITE_FILE = 1 << 1
    READ_FILE = 1 << 2
    READ_DIR = 1 << 3
    REMOVE_DIR = 1 << 4
    REMOVE_FILE = 1 << 5
    MAKE_CHAR = 1 << 6
    MAKE_DIR = 1 << 7
    MAKE_REG = 1 << 8
    MAKE_SOCK = 1 << 9
    MAKE_FIFO = 1 << 10
    MAKE_BLOCK = 1 << 11
    MAKE_SYM = 1 << 12
    REFER = 1 << 13  # ABI 2
    TRUNCATE = 1 << 14  # ABI 3
    IOCTL_DEV = 1 << 15  # ABI 5


NET_BIND_TCP = 1 << 0  # ABI 4
NET_CONNECT_TCP = 1 << 1
SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0  # ABI 6
SCOPE_SIGNAL = 1 << 1

_CREATE_RULESET_VERSION = 1 << 0
_RULE_PATH_BENEATH = 1

_ABI1_FS = (1 << 13) - 1
_FS_BY_ABI = {1: _ABI1_FS, 2: _ABI1_FS | FS.REFER, 3: _ABI1_FS | FS.REFER | FS.TRUNCATE,
              4: _ABI1_FS | FS.REFER | FS.TRUNCATE}
_ALL_FS = _ABI1_FS | FS.REFER | FS.TRUNCATE | FS.IOCTL_DEV

READ = FS.READ_FILE | FS.READ_DIR
READ_EXECUTE = READ | FS.EXECUTE
READ_WRITE = _ALL_FS
# The only rights a rule on a non-directory may carry (others make landlock_add_rule fail with EINVAL).
FILE_RIGHTS = FS.EXECUTE | FS.WRITE_FILE | FS.READ_FILE | FS.TRUNCATE | FS.IOCTL_DEV


def fs_rights(abi: int) -> int:
    """Every filesystem right ABI ``abi`` knows (what a ruleset of that ABI handles)."""
    return _FS_BY_ABI.get(abi, _ALL_FS) if abi >= 1 else 0


def abi_version() -> tuple[int | None, str]:
    """(Landlock ABI of the running kernel or None, why not). Restricts nothing."""
    numbers = landlock_numbers()
    if numbers is None:
        return None, f"Landlock system call numbers unknown for this architecture ({os.uname().machine})"
    res = libc().syscall(numbers[0], None, ctypes.c_size_t(0), ctypes.c_uint32(_CREATE_RULESET_VERSION))
    if res >= 0:
        return int(res), f"Landlock ABI {res}"
    err = ctypes.get_errno()
    if err == errno.ENOSYS:
        return None, "the kernel has no Landlock (built without CONFIG_SECURITY_LANDLOCK, or older than 5.13)"
    if err == errno.EOPNOTSUPP:
        return None, "Landlock is built in but disabled at boot (add landlock to the lsm= kernel parameter)"
    return None, f"Landlock version query failed: {os.strerror(err)}"


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def _attr_size(abi: int) -> int:
    """The ruleset attribute grows with the ABI: fs only (1–3), + net (4–5), + scoped (≥ 6)."""
    return 8 if abi < 4 else 16 if abi < 6 else 24


@dataclasses.dataclass(frozen=True)
class Rule:
    """Keep ``rights`` beneath ``path`` (masked to the ABI; to file rights if ``path`` is not a directory)."""

    path: str
    rights: int


class Ruleset:
    """A Landlock ruleset being built: :meth:`add` rules, then :meth:`restrict` (or :meth:`close`).

    Building is reversible (nothing is restricted until :meth:`restrict`); every path is opened
    with ``O_PATH`` and closed again after its rule is added.
    """

    def __init__(self, abi: int, *, deny_tcp: bool = True, scopes: bool = True) -> None:
        numbers = landlock_numbers()
        if numbers is None or abi < 1:
            raise OSError(errno.ENOSYS, "Landlock is not available")
        self.abi = abi
        self._create, self._add, self._restrict = numbers
        self.handled_fs = fs_rights(abi)
        self.handled_net = (NET_BIND_TCP | NET_CONNECT_TCP) if deny_tcp and abi >= 4 else 0
        self.scoped = (SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL) if scopes and abi >= 6 else 0
        attr = _RulesetAttr(self.handled_fs, self.handled_net, self.scoped)
        self.fd: int | None = check(libc().syscall(self._create, ctypes.byref(attr), ctypes.c_size_t(_attr_size(abi)),
                                                   ctypes.c_uint32(0)), "landlock_create_ruleset")
        self.rules = 0

    def add(self, rule: Rule) -> None:
        """Allow ``rule.rights`` (as far as handled) beneath ``rule.path``; OSError if it cannot be opened."""
        if self.fd is None:
            raise ValueError("ruleset already closed")
        fd = os.open(rule.path, os.O_PATH | os.O_CLOEXEC)
        try:
            rights = rule.rights & self.handled_fs
            if not stat.S_ISDIR(os.fstat(fd).st_mode):
                rights &= FILE_RIGHTS
            if not rights:
                return
            attr = _PathBeneathAttr(rights, fd)
            check(libc().syscall(self._add, ctypes.c_int(self.fd), ctypes.c_int(_RULE_PATH_BENEATH),
                                 ctypes.byref(attr), ctypes.c_uint32(0)), f"landlock_add_rule({rule.path})")
            self.rules += 1
        finally:
            os.close(fd)

    def add_all(self, rules: Iterable[Rule]) -> None:
        for rule in rules:
            self.add(rule)

    def restrict(self) -> None:
        """Restrict the calling thread (and its future children) to this ruleset; needs no_new_privs
        (or CAP_SYS_ADMIN). Irreversible. Closes the ruleset."""
        if self.fd is None:
            raise ValueError("ruleset already closed")
        try:
            check(libc().syscall(self._restrict, ctypes.c_int(self.fd), ctypes.c_uint32(0)), "landlock_restrict_self")
        finally:
            self.close()

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
