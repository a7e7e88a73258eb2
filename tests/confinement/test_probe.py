"""``probe()`` finds out what the kernel offers without restricting the process that asks."""

from __future__ import annotations

import json
import os
import socket

from tests.confinement.forked import in_child
from xalbench.confinement import Probe, probe


def _status() -> dict[str, str]:
    with open("/proc/self/status") as fh:
        return {k: v.strip() for k, v in (line.split(":", 1) for line in fh if ":" in line)}


def test_probe_leaves_the_calling_process_unrestricted(tmp_path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("readable")
    parent = os.getpid()

    def child() -> dict:
        ns = os.readlink("/proc/self/ns/net")
        before = _status()
        found = probe()
        after = _status()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM):
            pass
        os.kill(parent, 0)
        (tmp_path / "written.txt").write_text("ok")
        return {"probe": found.as_dict(), "ns same": os.readlink("/proc/self/ns/net") == ns,
                "nnp": (before["NoNewPrivs"], after["NoNewPrivs"]), "seccomp": (before["Seccomp"], after["Seccomp"]),
                "uid": (before["Uid"], after["Uid"]), "outside": outside.read_text(),
                "parent environ": len(open(f"/proc/{parent}/environ", "rb").read()) > 0}

    got = in_child(child)
    assert got["ns same"] and got["nnp"] == ("0", "0") and got["seccomp"] == ("0", "0")
    assert got["uid"][0] == got["uid"][1] and got["outside"] == "readable" and got["parent environ"]
    assert (tmp_path / "written.txt").read_text() == "ok"
    json.dumps(got["probe"])
    assert got["probe"]["level"] in ("confined", "process")


def test_fallback_level_warns_once_naming_what_is_missing() -> None:
    base = dict(landlock_reason="", seccomp=True, seccomp_reason="", network_namespace=False,
                network_namespace_reason="not root", uid=1000, uid_drop=False, uid_reason="not root")
    none = Probe(landlock_abi=None, **{**base, "landlock_reason": "the kernel has no Landlock"})
    assert none.level == "process"
    assert "the kernel has no Landlock" in none.warning() and none.warning().count("\n") == 0
    old = Probe(landlock_abi=3, **base)
    assert old.level == "process" and "no TCP confinement" in old.warning()
    full = Probe(landlock_abi=7, **base)
    assert full.level == "confined" and full.warning() is None and full.missing() == ()
    no_sec = Probe(landlock_abi=7, **{**base, "seccomp": False, "seccomp_reason": "libseccomp not found"})
    assert no_sec.level == "confined" and any("UDP" in m for m in no_sec.missing())
