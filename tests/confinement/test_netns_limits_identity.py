"""Network namespace, resource limits and the id-drop decision (forked children where they change state)."""

from __future__ import annotations

import errno
import os
import resource
import shutil
import signal
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.confinement.forked import in_child
from xalbench.confinement import identity, limits, netns


def _ns() -> str:
    return os.readlink("/proc/self/ns/net")


def test_can_enter_leaves_this_process_in_its_namespace() -> None:
    before = _ns()
    ok, why = netns.can_enter()
    assert _ns() == before
    assert ok or why


def test_entering_cuts_the_loopback_listener() -> None:
    ok, why = netns.can_enter()
    if not ok:
        pytest.skip(f"no network namespace here: {why}")
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    before = _ns()

    def child() -> tuple[bool, str, str]:
        entered, _ = netns.enter()
        try:
            with socket.socket() as s:
                s.connect(("127.0.0.1", port))
            outcome = "connected"
        except OSError as exc:
            outcome = errno.errorcode.get(exc.errno or 0, "?")
        return entered, _ns(), outcome

    try:
        entered, ns, outcome = in_child(child)
        assert entered and ns != before
        assert outcome in ("ENETUNREACH", "ECONNREFUSED")  # lo is down in a fresh namespace
    finally:
        listener.close()


def test_limits_are_set_soft_equals_hard(tmp_path) -> None:
    big = tmp_path / "big.bin"

    def child() -> tuple[dict[str, list[int]], str, int]:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past FSIZE then fails with EFBIG
        applied = limits.apply_limits(limits.Limits(nofile=64, fsize=1 << 16, core=0, nproc_extra=64))
        try:
            big.write_bytes(b"\0" * (1 << 17))
            outcome = "written"
        except OSError as exc:
            outcome = errno.errorcode.get(exc.errno or 0, "?")
        return applied, outcome, resource.getrlimit(resource.RLIMIT_NOFILE)[1]

    applied, outcome, nofile_hard = in_child(child)
    assert applied["RLIMIT_NOFILE"] == [64, 64] and nofile_hard == 64
    assert applied["RLIMIT_FSIZE"] == [1 << 16, 1 << 16] and applied["RLIMIT_CORE"] == [0, 0]
    assert applied["RLIMIT_NPROC"][0] >= 64
    assert "RLIMIT_AS" not in applied
    assert outcome == "EFBIG"


def test_limits_reject_bad_values() -> None:
    with pytest.raises(ValueError, match="nofile"):
        limits.Limits(nofile=-1)


@pytest.fixture
def open_tmp() -> Iterator[Path]:
    """A world-searchable temporary directory (pytest's own base is private to its user)."""
    path = Path(tempfile.mkdtemp(prefix="xalbench-confine-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _tree(root: Path, top_mode: int) -> tuple[list[str], list[str]]:
    """root/top (``top_mode``)/venv/lib/pkg + root/top/venv/bin/python, and a scratch dir."""
    pkg = root / "top" / "venv" / "lib" / "pkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    py = root / "top" / "venv" / "bin" / "python"
    py.parent.mkdir()
    py.write_text("")
    for path in (root, root / "top" / "venv", root / "top" / "venv" / "lib", pkg, py.parent):
        path.chmod(0o755)
    py.chmod(0o755)
    (pkg / "__init__.py").chmod(0o644)
    (root / "top").chmod(top_mode)
    scratch = root / "scratch"
    scratch.mkdir(mode=0o700)
    return [str(pkg), str(py)], [str(scratch)]


def test_uid_drop_decision_on_fabricated_trees(open_tmp) -> None:
    tmp_path = open_tmp
    (tmp_path / "open").mkdir()
    (tmp_path / "closed").mkdir()
    read, write = _tree(tmp_path / "open", 0o755)
    yes = identity.decide(read, write, euid=0)
    assert yes.drop and yes.uid == identity.NOBODY

    read, write = _tree(tmp_path / "closed", 0o700)
    no = identity.decide(read, write, euid=0)
    assert not no.drop and "top is mode 0700" in no.reason and "not searchable" in no.reason

    (tmp_path / "open" / "top" / "venv" / "lib" / "pkg" / "__init__.py").chmod(0o600)
    file_closed = identity.decide([str(tmp_path / "open" / "top" / "venv" / "lib" / "pkg" / "__init__.py")], [],
                                  euid=0)
    assert not file_closed.drop and "0600" in file_closed.reason

    assert "not running as root" in identity.decide(read, write, euid=1000).reason
    assert "not asked" in identity.decide(read, write, euid=0, wanted=False).reason


def test_this_interpreter_under_a_private_home_keeps_root() -> None:
    import sys

    blocked = identity.unreadable(sys.base_prefix)
    decision = identity.decide([sys.base_prefix], [], euid=0)
    assert decision.drop == (blocked is None)
    if blocked:
        assert blocked in decision.reason


@pytest.mark.skipif(os.geteuid() != 0, reason="the drop itself needs root")
def test_drop_hands_over_scratch_and_loses_root(open_tmp) -> None:
    tmp_path = open_tmp
    scratch = tmp_path / "scratch"
    scratch.mkdir(mode=0o700)
    secret = tmp_path / "secret"
    secret.write_text("root only")
    secret.chmod(0o600)

    def child() -> tuple[int, int, str, str]:
        identity.drop(identity.NOBODY, [str(scratch)])
        (scratch / "mine").write_text("ok")
        try:
            secret.read_text()
            outcome = "read"
        except PermissionError:
            outcome = "EACCES"
        return os.getuid(), os.getgid(), outcome, (scratch / "mine").read_text()

    assert in_child(child) == (identity.NOBODY, identity.NOBODY, "EACCES", "ok")
