"""The whole profile in one forked child that imported torch first: work still works, escapes fail.

Each escape is one an untrusted strategy tried from inside a default run: the parent's environ,
cmdline and memory, other results (read and overwrite), site-packages and the package itself,
the data root, TCP/UDP to a local listener, a named unix socket (a fork server's listener),
signals, ptrace and process_vm_readv to the parent.
"""

from __future__ import annotations

import ctypes
import errno
import importlib
import json
import os
import signal
import socket
import sys
import sysconfig
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import scipy.stats
import sklearn.cluster
import threadpoolctl
import torch

import xalbench
from tests.confinement.conftest import need_landlock, need_seccomp
from tests.confinement.forked import ChildFailed, in_child
from xalbench.confinement import Profile, apply, landlock
from xalbench.confinement.syscalls import libc
from xalbench.errors import ConfinementError

PTRACE_SEIZE = 0x4206


class _IoVec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


def _outcome(fn) -> str:
    try:
        fn()
    except OSError as exc:
        return errno.errorcode.get(exc.errno or 0, str(exc.errno))
    return "ok"


def _raise_errno(result: int) -> None:
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def _ptrace_seize(pid: int) -> None:  # SEIZE: an attach that does not stop the parent if it wrongly succeeded
    lib = libc()
    lib.ptrace.restype = ctypes.c_long
    lib.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
    _raise_errno(lib.ptrace(PTRACE_SEIZE, pid, None, None))


def _vm_read(pid: int, address: int) -> None:
    lib = libc()
    lib.process_vm_readv.restype = ctypes.c_ssize_t
    buf = ctypes.create_string_buffer(16)
    local = _IoVec(ctypes.cast(buf, ctypes.c_void_p), 16)
    remote = _IoVec(address, 16)
    _raise_errno(lib.process_vm_readv(pid, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0))


@pytest.fixture
def world(tmp_path: Path):
    """Files, listeners and a profile as a run would have them around a sandbox."""
    results = tmp_path / "results" / "cells"
    results.mkdir(parents=True)
    (results / "random+ce.json").write_text('{"accuracy": 0.9}')
    data = tmp_path / "data"
    data.mkdir()
    (data / "labels.npy").write_bytes(b"\x93NUMPY labels")
    site = tmp_path / "site-packages"
    site.mkdir()
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    tcp = socket.create_server(("127.0.0.1", 0))
    tcp.setblocking(False)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.setblocking(False)
    unix = socket.socket(socket.AF_UNIX)
    unix.bind(str(tmp_path / "forkserver.sock"))
    unix.listen()
    unix.setblocking(False)
    purelib = Path(sysconfig.get_paths()["purelib"])
    probe = purelib / f"xalbench_confine_probe_{os.getpid()}.pth"
    w = {"results": results, "data": data, "site": site, "scratch": scratch, "tcp": tcp, "udp": udp, "unix": unix,
         "unix_path": str(tmp_path / "forkserver.sock"), "purelib_probe": probe,
         "package_probe": Path(xalbench.__file__).parent / f"confine_probe_{os.getpid()}.py",
         "profile": Profile.for_interpreter(write=[scratch])}
    try:
        yield w
    finally:
        for s in (tcp, udp, unix):
            s.close()
        for leftover in (probe, w["package_probe"]):
            if leftover.exists():
                leftover.unlink()


def _confined_child(w: dict, parent: int, secret_address: int) -> dict:
    applied = apply(w["profile"], required=True)
    out: dict[str, str] = {}
    # work that must keep working
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(36, 3))
    loss = torch.nn.functional.cross_entropy(model(torch.randn(5, 1, 5, 5)), torch.tensor([0, 1, 2, 0, 1]))
    loss.backward()
    out["torch"] = "ok" if model[0].weight.grad is not None else "no grad"
    points = np.random.default_rng(0).normal(size=(40, 3))
    scipy.linalg.svd(points)
    scipy.stats.ttest_rel(points[:, 0], points[:, 1])
    # one OpenMP thread: this child was forked from a test process that may already hold an OpenMP team
    # (an earlier test's KMeans), and libgomp is not fork-safe — the child would wait at the team's barrier
    # forever (seen under pytest-xdist). A sandbox never forks from such a process: its fork server is fresh.
    with warnings.catch_warnings(), threadpoolctl.threadpool_limits(1, user_api="openmp"):
        warnings.simplefilter("ignore", UserWarning)  # loky cannot run lscpu confined: it counts logical cores
        labels = sklearn.cluster.KMeans(3, n_init=1, random_state=0).fit_predict(points)  # reads the cgroup CPU quota
    out["numpy/scipy/sklearn"] = "ok" if len(set(labels.tolist())) == 3 else "bad clusters"
    sys.modules.pop("colorsys", None)
    out["import"] = _outcome(lambda: importlib.import_module("colorsys"))
    out["scratch write"] = _outcome(lambda: (w["scratch"] / "tmp.bin").write_bytes(b"ok"))

    def tcp() -> None:
        with socket.socket() as s:
            s.connect(w["tcp"].getsockname())

    def udp() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b"leak", w["udp"].getsockname())

    def unix() -> None:
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(w["unix_path"])

    def write_new(path: Path) -> None:
        with open(path, "x") as fh:  # never leave it behind if the write wrongly succeeds
            fh.write("import os")
        path.unlink()

    escapes = {
        "parent environ": lambda: open(f"/proc/{parent}/environ", "rb").read(),
        "parent cmdline": lambda: open(f"/proc/{parent}/cmdline", "rb").read(),
        "parent mem": lambda: open(f"/proc/{parent}/mem", "rb").close(),
        "results read": lambda: (w["results"] / "random+ce.json").read_text(),
        "results overwrite": lambda: (w["results"] / "random+ce.json").write_text('{"accuracy": 0.05}'),
        "results list": lambda: os.listdir(w["results"]),
        "fake site-packages write": lambda: write_new(w["site"] / "evil.pth"),
        "real purelib write": lambda: write_new(w["purelib_probe"]),
        "xalbench package write": lambda: write_new(w["package_probe"]),
        "data root read": lambda: (w["data"] / "labels.npy").read_bytes(),
        "home list": lambda: os.listdir(os.path.expanduser("~")),
        "tcp connect": tcp,
        "udp sendto": udp,
        "unix connect": unix,
        "kill 0": lambda: os.kill(parent, 0),
        "SIGCONT": lambda: os.kill(parent, signal.SIGCONT),
        "ptrace": lambda: _ptrace_seize(parent),
        "process_vm_readv": lambda: _vm_read(parent, secret_address),
    }
    for name, fn in escapes.items():
        out[name] = _outcome(fn)
    return {"applied": applied.as_dict(), "outcomes": out}


@need_landlock(6)
@need_seccomp
def test_full_profile_blocks_every_escape_and_keeps_torch_working(world) -> None:
    secret = ctypes.create_string_buffer(b"hidden pool labels")
    before = (world["results"] / "random+ce.json").read_text()
    got = in_child(_confined_child, world, os.getpid(), ctypes.addressof(secret))
    out, applied = got["outcomes"], got["applied"]

    assert out["torch"] == "ok" and out["import"] == "ok" and out["scratch write"] == "ok"
    assert out["numpy/scipy/sklearn"] == "ok"
    assert (world["scratch"] / "tmp.bin").read_bytes() == b"ok"
    work = ("torch", "import", "scratch write", "numpy/scipy/sklearn")
    escaped = {k: v for k, v in out.items() if v == "ok" and k not in work}
    assert escaped == {}, f"escapes that worked: {sorted(escaped)}"
    for name in ("parent environ", "parent cmdline", "parent mem", "results read", "results overwrite",
                 "fake site-packages write", "real purelib write", "xalbench package write", "data root read"):
        assert out[name] == "EACCES", (name, out[name])
    for name in ("tcp connect", "udp sendto", "unix connect", "kill 0", "SIGCONT", "ptrace", "process_vm_readv"):
        assert out[name] == "EPERM", (name, out[name])

    assert (world["results"] / "random+ce.json").read_text() == before
    assert not world["purelib_probe"].exists() and not world["package_probe"].exists()
    for listener in (world["tcp"], world["unix"]):
        with pytest.raises(BlockingIOError):
            listener.accept()
    with pytest.raises(BlockingIOError):  # the datagram never arrived
        world["udp"].recv(16)

    json.dumps(applied)
    assert applied["level"] == "confined" and applied["landlock"]["tcp"]
    assert applied["landlock"]["scopes"] == ["signal", "abstract-unix-socket"]
    assert applied["seccomp"]["on"] and "socket" in applied["seccomp"]["denied"]
    assert applied["network"]["mode"] in ("namespace", "seccomp") and applied["no_new_privs"]


def _status() -> dict[str, str]:
    with open("/proc/self/status") as fh:
        return dict(line.rstrip("\n").split(":\t", 1) for line in fh if ":\t" in line)


def test_required_without_landlock_4_applies_nothing(world, monkeypatch) -> None:
    monkeypatch.setattr(landlock, "abi_version", lambda: (3, "Landlock ABI 3"))

    def child() -> tuple[str, str, str, tuple]:
        try:
            apply(world["profile"], required=True)
        except ConfinementError as exc:
            status = _status()
            import resource

            return str(exc), status["NoNewPrivs"].strip(), status["Seccomp"].strip(), \
                resource.getrlimit(resource.RLIMIT_CORE)
        return "applied", "", "", ()

    message, nnp, sec, core = in_child(child)
    assert "requires Landlock ABI >= 4" in message and "ABI 3" in message
    assert nnp == "0" and sec == "0" and core == __import__("resource").getrlimit(__import__("resource").RLIMIT_CORE)


@need_landlock(1)
def test_a_missing_declared_path_or_extra_threads_refuse_before_applying(world, tmp_path) -> None:
    gone = Profile.for_interpreter(read=[tmp_path / "no-such-weights.pt"])
    with pytest.raises(ChildFailed, match="paths that do not exist: .*no-such-weights.pt"):
        in_child(apply, gone)

    def threaded() -> str:
        stop = threading.Event()
        t = threading.Thread(target=stop.wait)
        t.start()
        try:
            apply(world["profile"])
        except ConfinementError as exc:
            return str(exc) + " NoNewPrivs=" + _status()["NoNewPrivs"].strip()
        finally:
            stop.set()
            t.join()
        return "applied"

    message = in_child(threaded)
    assert "single-threaded" in message and "2 threads" in message and message.endswith("NoNewPrivs=0")


@need_seccomp
def test_without_landlock_the_record_says_what_is_missing(world, monkeypatch) -> None:
    monkeypatch.setattr(landlock, "abi_version", lambda: (None, "the kernel has no Landlock"))

    def child() -> tuple[dict, str]:
        applied = apply(world["profile"])
        return applied.as_dict(), _outcome(lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).close())

    applied, udp = in_child(child)
    assert applied["level"] == "confined-partial" and applied["landlock"]["abi"] is None
    assert applied["landlock"]["reason"] == "the kernel has no Landlock" and not applied["landlock"]["tcp"]
    assert applied["seccomp"]["on"] and udp == "EPERM" and applied["network"]["mode"] in ("namespace", "seccomp")


def test_relative_paths_are_refused() -> None:
    with pytest.raises(ConfinementError, match="not an absolute path"):
        Profile(code=("relative/dir",))


@need_landlock(1)
def test_profile_allowing_network_keeps_sockets(world) -> None:
    profile = Profile.for_interpreter(write=[world["scratch"]], network=True)

    def child() -> tuple[dict, str]:
        applied = apply(profile)
        return applied.as_dict(), _outcome(lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).close())

    applied, udp = in_child(child)
    assert udp == "ok" and applied["network"]["mode"] == "allowed" and not applied["landlock"]["tcp"]
    assert "socket" not in applied["seccomp"]["denied"]


_PLOTTING_CHILD = """
import sys, tempfile
from xalbench.confinement import Profile, apply
scratch = tempfile.mkdtemp()
apply(Profile.for_interpreter(write=[scratch], seccomp=False, drop_uid=False), required=True)
import matplotlib.pyplot  # what pytorch-grad-cam and MONAI import after a cell is confined
print("imported", "matplotlib.font_manager" in sys.modules)
"""


@need_landlock(4)
def test_a_confined_process_imports_matplotlib_quietly(tmp_path) -> None:
    """pytorch-grad-cam imports matplotlib.pyplot; confined, it must find its font list (read only), not
    rebuild it in every cell through ``fc-list`` and print that it cannot save the cache."""
    import subprocess

    proc = subprocess.run([sys.executable, "-c", _PLOTTING_CHILD], capture_output=True, text=True, timeout=120,
                          cwd=tmp_path)
    assert proc.returncode == 0 and "imported True" in proc.stdout, proc.stderr
    assert "font_manager" not in proc.stderr and "Fontconfig" not in proc.stderr, proc.stderr
