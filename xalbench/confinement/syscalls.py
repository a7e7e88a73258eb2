"""Thin ctypes access to the few Linux system calls confinement needs (no third-party binding).

Only what :mod:`xalbench.confinement` uses: a libc handle with ``errno``, the Landlock system
call numbers of the running architecture, ``prctl`` and ``unshare``. Nothing here restricts
anything by itself.
"""

from __future__ import annotations

import ctypes
import functools
import os
import platform

__all__ = ["LANDLOCK_SYSCALLS", "landlock_numbers", "libc", "check", "prctl", "unshare",
           "PR_SET_NO_NEW_PRIVS", "PR_GET_NO_NEW_PRIVS", "CLONE_NEWNET"]

PR_SET_NO_NEW_PRIVS = 38
PR_GET_NO_NEW_PRIVS = 39
CLONE_NEWNET = 0x40000000

# landlock_create_ruleset, landlock_add_rule, landlock_restrict_self. Since Linux 5.1 new system
# calls share one number on every architecture (asm-generic/unistd.h), except alpha (+110), and
# the MIPS ABIs (per-ABI bases); only the architectures listed here are supported.
LANDLOCK_SYSCALLS: dict[str, tuple[int, int, int]] = {
    "x86_64": (444, 445, 446),
    "aarch64": (444, 445, 446),
    "arm64": (444, 445, 446),
    "riscv64": (444, 445, 446),
    "ppc64le": (444, 445, 446),
    "s390x": (444, 445, 446),
}


def landlock_numbers(machine: str | None = None) -> tuple[int, int, int] | None:
    """The three Landlock system call numbers for ``machine`` (default: this one), None if unknown."""
    return LANDLOCK_SYSCALLS.get(machine or platform.machine())


@functools.lru_cache(maxsize=1)
def libc() -> ctypes.CDLL:
    """The process's C library (the symbols already linked into the interpreter), with errno."""
    lib = ctypes.CDLL(None, use_errno=True)
    lib.syscall.restype = ctypes.c_long
    lib.prctl.restype = ctypes.c_int
    lib.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    lib.unshare.restype = ctypes.c_int
    lib.unshare.argtypes = [ctypes.c_int]
    return lib


def check(result: int, what: str) -> int:
    """``result`` if it is not negative, else :class:`OSError` with the call's errno and ``what``."""
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return result


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    return check(libc().prctl(option, arg2, arg3, arg4, arg5), f"prctl({option})")


def unshare(flags: int) -> None:
    check(libc().unshare(flags), f"unshare({flags:#x})")
