"""A private network namespace: the process loses every network interface (a fresh, down ``lo``).

``unshare(CLONE_NEWNET)`` needs ``CAP_SYS_ADMIN`` (root, in practice). Whether it works is
*tried*, never assumed (a container may grant root but filter ``unshare``): :func:`enter` tries
it in the calling process, :func:`can_enter` in a short-lived forked child.

**Protected** in the new namespace: TCP, UDP, raw and abstract unix sockets cannot reach any other
namespace's interfaces or listeners. **Not protected**: sockets opened before (they stay in the
old namespace), named unix sockets (a filesystem path, reachable from any namespace: Landlock
does not police them, :mod:`.seccomp` denies ``socket``), and threads other than the calling one.
"""

from __future__ import annotations

import errno
import os

from xalbench.confinement.syscalls import CLONE_NEWNET, unshare

__all__ = ["can_enter", "enter"]


def enter() -> tuple[bool, str]:
    """Move the calling thread into a new network namespace: (True, "") or (False, why not)."""
    try:
        unshare(CLONE_NEWNET)
    except OSError as exc:
        if exc.errno == errno.EPERM:
            return False, "no privilege for a network namespace (CAP_SYS_ADMIN; not root, or unshare is filtered)"
        if exc.errno == errno.EINVAL:
            return False, "the kernel has no network namespaces (CONFIG_NET_NS)"
        return False, f"unshare(CLONE_NEWNET) failed: {exc.strerror}"
    return True, ""


def can_enter() -> tuple[bool, str]:
    """Whether :func:`enter` would work here, tried in a forked child (this process is not changed)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: one system call, its answer, exit (nothing that could take a lock)
        os.close(read)
        ok, why = enter()
        os.write(write, (b"1" if ok else b"0") + why.encode()[:1000])
        os._exit(0)
    os.close(write)
    try:
        answer = os.read(read, 1024)
    finally:
        os.close(read)
        os.waitpid(pid, 0)
    if answer[:1] == b"1":
        return True, ""
    return False, answer[1:].decode(errors="replace") or "the probing child died"
