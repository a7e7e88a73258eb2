"""Landlock primitive, each check in a forked child: files by hierarchy, TCP, signal scope."""

from __future__ import annotations

import errno
import os
import signal
import socket

import pytest

from tests.confinement.conftest import need_landlock
from tests.confinement.forked import in_child
from xalbench.confinement import landlock
from xalbench.confinement.syscalls import PR_SET_NO_NEW_PRIVS, prctl


def _errno(fn) -> str:
    try:
        fn()
    except OSError as exc:
        return errno.errorcode.get(exc.errno or 0, str(exc.errno))
    return "ok"


def _restrict(rules: list[landlock.Rule]) -> landlock.Ruleset:
    abi, _ = landlock.abi_version()
    ruleset = landlock.Ruleset(abi)
    ruleset.add_all(rules)
    prctl(PR_SET_NO_NEW_PRIVS, 1)
    handled = (ruleset.handled_fs, ruleset.handled_net, ruleset.scoped)
    ruleset.restrict()
    return handled


def test_abi_is_detected_without_restricting() -> None:
    abi, why = landlock.abi_version()
    assert (abi is None) == ("Landlock ABI" not in why)
    with open(__file__, encoding="utf-8") as fh:  # still unrestricted
        assert fh.read(1)


def test_rights_follow_the_abi() -> None:
    assert landlock.fs_rights(1) == (1 << 13) - 1
    assert landlock.fs_rights(2) & landlock.FS.REFER and not landlock.fs_rights(2) & landlock.FS.TRUNCATE
    assert landlock.fs_rights(4) == landlock.fs_rights(3)
    assert landlock.fs_rights(5) & landlock.FS.IOCTL_DEV
    assert landlock.fs_rights(0) == 0


@need_landlock(1)
def test_files_by_hierarchy(tmp_path) -> None:
    ro, rw, other = tmp_path / "ro", tmp_path / "rw", tmp_path / "other"
    for d in (ro, rw, other):
        d.mkdir()
        (d / "f.txt").write_text("x")
    single = tmp_path / "single.txt"
    single.write_text("s")

    def child() -> dict[str, str]:
        _restrict([landlock.Rule(str(ro), landlock.READ), landlock.Rule(str(rw), landlock.READ_WRITE),
                   landlock.Rule(str(single), landlock.READ_WRITE)])  # a file: rights masked, no EINVAL
        return {
            "read ro": _errno(lambda: open(ro / "f.txt").read()),
            "write ro": _errno(lambda: open(ro / "new.txt", "w").close()),
            "write rw": _errno(lambda: (rw / "new.txt").write_text("y")),
            "mkdir rw": _errno(lambda: (rw / "sub").mkdir()),
            "read other": _errno(lambda: open(other / "f.txt").read()),
            "list other": _errno(lambda: os.listdir(other)),
            "read single": _errno(lambda: single.read_text()),
            "rename out": _errno(lambda: os.rename(rw / "new.txt", other / "moved.txt")),
        }

    got = in_child(child)
    assert got == {"read ro": "ok", "write ro": "EACCES", "write rw": "ok", "mkdir rw": "ok", "read other": "EACCES",
                   "list other": "EACCES", "read single": "ok", "rename out": got["rename out"]}
    assert got["rename out"] in ("EACCES", "EXDEV")
    assert not (other / "moved.txt").exists() and (rw / "new.txt").exists()


@need_landlock(4)
def test_tcp_denied_but_udp_is_not_landlocks_to_close(tmp_path) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.setblocking(False)
    port, udp_port = listener.getsockname()[1], udp.getsockname()[1]

    def child() -> dict[str, str]:
        _restrict([])

        def tcp() -> None:
            with socket.socket() as s:
                s.connect(("127.0.0.1", port))

        def udp_send() -> None:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.sendto(b"x", ("127.0.0.1", udp_port))

        return {"tcp": _errno(tcp), "udp": _errno(udp_send)}

    try:
        got = in_child(child)
        assert got["tcp"] == "EACCES"
        assert got["udp"] == "ok"  # Landlock has no UDP rule: seccomp or a namespace must close it
        assert udp.recv(8) == b"x"
    finally:
        listener.close()
        udp.close()


@need_landlock(6)
def test_signals_and_ptrace_scoped_to_the_domain() -> None:
    parent = os.getpid()

    def child() -> dict[str, str]:
        _restrict([])
        return {"kill 0": _errno(lambda: os.kill(parent, 0)), "SIGCONT": _errno(lambda: os.kill(parent, signal.SIGCONT)),
                "self": _errno(lambda: os.kill(os.getpid(), 0)),
                "parent mem": _errno(lambda: open(f"/proc/{parent}/mem", "rb").close())}

    assert in_child(child) == {"kill 0": "EPERM", "SIGCONT": "EPERM", "self": "ok", "parent mem": "EACCES"}


def test_a_missing_path_fails_while_building_not_after() -> None:
    abi, _ = landlock.abi_version()
    if not abi:
        pytest.skip("no Landlock here")
    ruleset = landlock.Ruleset(abi)
    try:
        with pytest.raises(FileNotFoundError):
            ruleset.add(landlock.Rule("/no/such/path", landlock.READ))
    finally:
        ruleset.close()
