"""seccomp primitive in forked children: every socket() refused, socketpair and threads kept."""

from __future__ import annotations

import ctypes
import errno
import os
import resource
import socket
import threading

import pytest

from tests.confinement.conftest import need_seccomp
from tests.confinement.forked import in_child
from xalbench.confinement import seccomp
from xalbench.confinement.syscalls import CLONE_NEWNET, PR_SET_NO_NEW_PRIVS, libc, prctl, unshare

PTRACE_SEIZE = 0x4206


def _errno(fn) -> str:
    try:
        fn()
    except OSError as exc:
        return errno.errorcode.get(exc.errno or 0, str(exc.errno))
    return "ok"


def _filter() -> None:
    program, _ = seccomp.compiled()
    prctl(PR_SET_NO_NEW_PRIVS, 1)
    seccomp.install(program)


def _ptrace(pid: int) -> None:
    lib = libc()
    lib.ptrace.restype = ctypes.c_long
    lib.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
    if lib.ptrace(PTRACE_SEIZE, pid, None, None) < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


@need_seccomp
def test_compiled_once_and_names_what_it_denies() -> None:
    program, denied = seccomp.compiled()
    assert seccomp.compiled()[0] is program
    assert len(program) % 8 == 0 and len(program) > 8 * len(denied) // 2
    assert {"socket", "ptrace", "process_vm_readv", "bpf", "unshare", "io_uring_setup"} <= set(denied)
    with pytest.raises(ValueError, match="not a BPF program"):
        seccomp.install(b"123")


@need_seccomp
def test_sockets_ptrace_and_namespaces_are_refused(tmp_path) -> None:
    parent = os.getpid()
    path = str(tmp_path / "listener.sock")
    unix = socket.socket(socket.AF_UNIX)
    unix.bind(path)
    unix.listen()
    unix.setblocking(False)

    def child() -> dict[str, str]:
        _filter()

        def unix_connect() -> None:
            with socket.socket(socket.AF_UNIX) as s:
                s.connect(path)

        def pair() -> None:
            a, b = socket.socketpair()
            a.sendall(b"x")
            assert b.recv(1) == b"x"
            a.close()
            b.close()

        def thread() -> None:
            out = []
            t = threading.Thread(target=lambda: out.append(1))
            t.start()
            t.join()
            assert out == [1]

        def fork() -> None:
            pid = os.fork()
            if pid == 0:
                os._exit(7)
            assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 7

        return {
            "udp": _errno(lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).close()),
            "tcp6": _errno(lambda: socket.socket(socket.AF_INET6, socket.SOCK_STREAM).close()),
            "netlink": _errno(lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW).close()),
            "unix": _errno(unix_connect),
            "socketpair": _errno(pair),
            "ptrace": _errno(lambda: _ptrace(parent)),
            "unshare": _errno(lambda: unshare(CLONE_NEWNET)),
            "prlimit parent": _errno(lambda: resource.prlimit(parent, resource.RLIMIT_CORE, (0, 0))),
            "own rlimit": _errno(lambda: resource.setrlimit(resource.RLIMIT_CORE, (0, 0))),
            "thread": _errno(thread),
            "fork": _errno(fork),
        }

    try:
        got = in_child(child)
        assert got == {"udp": "EPERM", "tcp6": "EPERM", "netlink": "EPERM", "unix": "EPERM", "socketpair": "ok",
                       "ptrace": "EPERM", "unshare": "EPERM", "prlimit parent": "EPERM", "own rlimit": "ok",
                       "thread": "ok", "fork": "ok"}
        with pytest.raises(BlockingIOError):
            unix.accept()
    finally:
        unix.close()


def test_missing_library_is_reported(monkeypatch) -> None:
    seccomp.library.cache_clear()
    monkeypatch.setattr(seccomp.ctypes.util, "find_library", lambda name: None)
    try:
        ok, why = seccomp.available()
        assert not ok and "libseccomp not found" in why
    finally:
        monkeypatch.undo()
        seccomp.library.cache_clear()
