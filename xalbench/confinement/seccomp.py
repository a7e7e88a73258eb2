"""A seccomp-bpf filter through the system's libseccomp (ctypes; Debian's ``libseccomp.so.2``).

Default action ALLOW; the calls below fail with ``EPERM`` (``clone3`` with ``ENOSYS``, so the C
library falls back to ``clone``, whose namespace flags are then checkable):

* the other processes' memory and debugging: ``ptrace``, ``process_vm_readv``/``writev``,
  ``process_madvise``, ``pidfd_getfd``, ``kcmp``;
* kernel attack surface and global state: ``bpf``, ``perf_event_open``, ``userfaultfd``,
  ``io_uring_*`` (its operations bypass this filter), ``keyctl``/``add_key``/``request_key``,
  module loading, ``kexec_*``, ``reboot``, ``swapon``/``swapoff``, ``acct``, ``quotactl``,
  ``fanotify_init``, ``open_by_handle_at``/``name_to_handle_at``;
* namespaces and mounts: ``mount``, ``umount2``, ``pivot_root``, ``chroot``, ``unshare``,
  ``setns``, the new mount API (``fsopen``, ``fsmount``, ``move_mount``, ``open_tree``, …), and
  ``clone`` with any ``CLONE_NEW*`` flag;
* **every** ``socket()`` call (all address families: ``AF_INET``/``AF_INET6`` of any type — UDP,
  which Landlock cannot police — ``AF_UNIX``, ``AF_NETLINK``, ``AF_PACKET``): no new socket at
  all, so no connection to a named unix socket such as a fork server's listener. ``socketpair``
  stays allowed, and so do descriptors inherited from before the filter;
* ``prlimit64`` on another process (its own limits stay settable).

**Not protected** by this filter: paths (a filter sees integers, not strings: paths are
Landlock's job), inherited sockets, and threads other than the calling one. Other architectures'
system calls (e.g. 32-bit ``int 0x80`` on x86_64) kill the process (libseccomp's default).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import dataclasses
import errno
import functools
import os
import platform

from xalbench.confinement.syscalls import libc

__all__ = ["DENIED", "Filter", "FilterSpec", "available", "compiled", "install", "library"]

DENIED: tuple[str, ...] = (
    "ptrace", "process_vm_readv", "process_vm_writev", "process_madvise", "pidfd_getfd", "kcmp",
    "bpf", "perf_event_open", "userfaultfd", "io_uring_setup", "io_uring_enter", "io_uring_register",
    "keyctl", "add_key", "request_key", "init_module", "finit_module", "delete_module",
    "kexec_load", "kexec_file_load", "reboot", "swapon", "swapoff", "acct", "quotactl", "quotactl_fd",
    "fanotify_init", "open_by_handle_at", "name_to_handle_at",
    "mount", "umount2", "pivot_root", "chroot", "unshare", "setns", "mount_setattr",
    "fsopen", "fsconfig", "fsmount", "fspick", "move_mount", "open_tree",
    "socket",
)
_ENOSYS = ("clone3",)
CLONE_NEW_FLAGS = (0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000)

_ACT_ALLOW = 0x7FFF0000
_ACT_ERRNO = 0x00050000
_CMP_NE = 1
_CMP_MASKED_EQ = 7


def _errno_action(err: int) -> int:
    return _ACT_ERRNO | (err & 0xFFFF)


class _ArgCmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int), ("datum_a", ctypes.c_uint64),
                ("datum_b", ctypes.c_uint64)]


@functools.lru_cache(maxsize=1)
def library() -> tuple[ctypes.CDLL | None, str]:
    """(libseccomp, "") or (None, why it is missing)."""
    name = ctypes.util.find_library("seccomp")
    if name is None:
        return None, "libseccomp not found (install the libseccomp2 package)"
    try:
        lib = ctypes.CDLL(name, use_errno=True)
    except OSError as exc:
        return None, f"libseccomp could not be loaded ({exc})"
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_release.restype = None
    lib.seccomp_release.argtypes = [ctypes.c_void_p]
    lib.seccomp_load.restype = ctypes.c_int
    lib.seccomp_load.argtypes = [ctypes.c_void_p]
    lib.seccomp_syscall_resolve_name.restype = ctypes.c_int
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_export_bpf.restype = ctypes.c_int
    lib.seccomp_export_bpf.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.seccomp_rule_add_array.restype = ctypes.c_int
    lib.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint,
                                           ctypes.POINTER(_ArgCmp)]
    return lib, name


def available() -> tuple[bool, str]:
    """(True, library name) if a filter can be built and the kernel has seccomp filters; restricts nothing."""
    lib, why = library()
    if lib is None:
        return False, why
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            if not any(line.startswith("Seccomp:") for line in fh):
                return False, "the kernel has no seccomp (no Seccomp: line in /proc/self/status)"
    except OSError as exc:
        return False, f"cannot read /proc/self/status ({exc})"
    return True, why


@dataclasses.dataclass(frozen=True)
class FilterSpec:
    """Which calls a :class:`Filter` denies (names unknown on this architecture are skipped)."""

    denied: tuple[str, ...] = DENIED
    deny_clone_namespaces: bool = True
    deny_foreign_prlimit: bool = True


class Filter:
    """A seccomp filter being built with libseccomp, then exported as a BPF program (:func:`compiled`)."""

    def __init__(self, spec: FilterSpec = FilterSpec()) -> None:
        lib, why = library()
        if lib is None:
            raise OSError(errno.ENOSYS, why)
        self._lib = lib
        self._ctx: int | None = lib.seccomp_init(_ACT_ALLOW)
        if not self._ctx:
            raise OSError(errno.ENOMEM, "seccomp_init failed")
        self.denied: list[str] = []
        self.skipped: list[str] = []
        try:
            for name in spec.denied:
                self._rule(name, _errno_action(errno.EPERM))
            for name in _ENOSYS:
                if self._rule(name, _errno_action(errno.ENOSYS), record=False):
                    self.denied.append(f"{name} (ENOSYS)")
            if spec.deny_clone_namespaces:
                arg = 1 if platform.machine() == "s390x" else 0  # clone's flags argument
                added = [self._rule("clone", _errno_action(errno.EPERM), _ArgCmp(arg, _CMP_MASKED_EQ, flag, flag),
                                    record=False) for flag in CLONE_NEW_FLAGS]  # rules on one call are OR-ed
                if all(added):
                    self.denied.append("clone(CLONE_NEW*)")
            if spec.deny_foreign_prlimit and self._rule("prlimit64", _errno_action(errno.EPERM),
                                                        _ArgCmp(0, _CMP_NE, 0, 0), record=False):
                self.denied.append("prlimit64(pid != 0)")
        except BaseException:
            self.close()
            raise

    def _rule(self, name: str, action: int, cmp: _ArgCmp | None = None, *, record: bool = True) -> bool:
        """Add one rule; False if ``name`` is not a system call of this architecture."""
        nr = self._lib.seccomp_syscall_resolve_name(name.encode())
        if nr < 0:  # not a system call of this architecture (or a libseccomp pseudo-call)
            self.skipped.append(name)
            return False
        args = (ctypes.byref(cmp), 1) if cmp is not None else (None, 0)
        rc = self._lib.seccomp_rule_add_array(self._ctx, action, nr, args[1], args[0])
        if rc < 0:
            raise OSError(-rc, f"seccomp_rule_add({name}): {os.strerror(-rc)}")
        if record:
            self.denied.append(name)
        return True

    def export(self) -> bytes:
        """The filter as a BPF program (``struct sock_filter`` array), for :func:`install`. Closes it."""
        if self._ctx is None:
            raise ValueError("filter already closed")
        read, write = os.pipe()
        try:
            rc = self._lib.seccomp_export_bpf(self._ctx, write)
            os.close(write)
            write = -1
            if rc < 0:
                raise OSError(-rc, f"seccomp_export_bpf: {os.strerror(-rc)}")
            chunks = []
            while chunk := os.read(read, 65536):
                chunks.append(chunk)
            return b"".join(chunks)
        finally:
            if write >= 0:
                os.close(write)
            os.close(read)
            self.close()

    def close(self) -> None:
        if self._ctx is not None:
            self._lib.seccomp_release(self._ctx)
            self._ctx = None


@functools.lru_cache(maxsize=8)
def compiled(spec: FilterSpec = FilterSpec()) -> tuple[bytes, tuple[str, ...]]:
    """(BPF program, denied call names) for ``spec``, built once per process (build it in a fork
    server before forking: installing a compiled program costs one system call)."""
    filt = Filter(spec)
    denied = tuple(filt.denied)
    return filt.export(), denied


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter))]


_PR_SET_SECCOMP = 22
_SECCOMP_MODE_FILTER = 2


def install(program: bytes) -> None:
    """Install a compiled filter on the calling thread; irreversible. Needs no_new_privs (or
    CAP_SYS_ADMIN)."""
    n, rest = divmod(len(program), ctypes.sizeof(_SockFilter))
    if rest or not 0 < n <= 4096:
        raise ValueError(f"not a BPF program ({len(program)} bytes)")
    insns = (_SockFilter * n).from_buffer_copy(program)
    prog = _SockFprog(n, ctypes.cast(insns, ctypes.POINTER(_SockFilter)))
    if libc().prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.addressof(prog), 0, 0) < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl(PR_SET_SECCOMP): {os.strerror(err)}")
