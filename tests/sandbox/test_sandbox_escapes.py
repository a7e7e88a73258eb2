"""Plugins that try to reach past their process, installed from an outside distribution and run with a
plain ``xalbench run``: under ``--isolation confined`` every escape fails (the escaper picks what an
honest strategy picks, the escaping loss logs zeros, the victim files, listeners and site-packages are
untouched) — while under ``--isolation process`` the same escapes succeed (so the test can fail) — and
honest cells are bitwise those of a run without the escapers."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import dist_on_path
from tests.sandbox.escapers import ESCAPER_MODULE, escape_suite_text, install_escapers
from xalbench.confinement import probe
from xalbench.results import iter_results
from xalbench.sealing import Sealer

pytestmark = [
    pytest.mark.cost(35),
    pytest.mark.slow,
    pytest.mark.skipif(probe().level != "confined", reason="the kernel offers no Landlock ABI >= 4 here"),
]

ESCAPES = ("escape-environ", "escape-cmdline", "escape-results-read", "escape-results-tamper",
           "escape-write-outside", "escape-site-packages", "escape-proc-mem", "escape-data-root", "escape-tcp",
           "escape-udp", "escape-unix", "escape-signal", "escape-ptrace")
HONEST = ("random", "entropy", "honest-first")


class Listeners:
    """A TCP listener, a UDP socket and a named unix socket on this machine, counting what reaches them."""

    def __init__(self, folder: Path) -> None:
        self.tcp = socket.create_server(("127.0.0.1", 0))
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.udp.settimeout(0.2)
        self.unix_path = str(folder / "listener.sock")
        self.unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.unix.bind(self.unix_path)
        self.unix.listen()
        self.accepted = {"tcp": 0, "unix": 0}
        for name, sock in (("tcp", self.tcp), ("unix", self.unix)):
            threading.Thread(target=self._accept, args=(name, sock), daemon=True).start()

    def _accept(self, name: str, sock: socket.socket) -> None:
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            self.accepted[name] += 1
            conn.close()

    def datagrams(self) -> int:
        n = 0
        while True:
            try:
                self.udp.recv(64)
            except OSError:
                return n
            n += 1

    def plan(self) -> dict[str, Any]:
        return {"tcp": self.tcp.getsockname()[1], "udp": self.udp.getsockname()[1], "unix": self.unix_path}

    def close(self) -> None:
        for sock in (self.tcp, self.udp, self.unix):
            sock.close()


def _victim(folder: Path) -> Path:
    """A results directory with one finished, keyed-sealed cell file (what the escapers read and rewrite)."""
    (folder / "cells").mkdir(parents=True)
    cell = folder / "cells" / "lesions__random+ce__seed0.json"
    cell.write_text(json.dumps(Sealer.for_results(folder).seal({"status": "ok", "rounds": [
        {"metrics": {"accuracy": 0.8}}]})))
    return cell


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    return install_escapers(tmp_path_factory.mktemp("escaper-site"))


def _run(root: Path, site: Path, isolation: str, strategies: tuple[str, ...],
         listeners: Listeners) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    victim_dir = root / "victim"
    victim = _victim(victim_dir)
    outside, data_root = root / "outside", root / "data"
    outside.mkdir()
    data_root.mkdir()
    suite = root / "suite.toml"
    suite.write_text(escape_suite_text(list(strategies)))
    plan = {"results": str(victim_dir), "outside": str(outside), "data_root": str(data_root), **listeners.plan()}
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
           "XALBENCH_ESCAPE_PLAN": json.dumps(plan), "XALBENCH_TEST_TOKEN": "not-for-plugins",
           "XALBENCH_DATA": str(data_root)}
    before = victim.read_bytes()
    proc = subprocess.run([sys.executable, "-m", "xalbench.cli", "run", "--suite", str(suite), "--out",
                           str(root / "out"), "--quiet", "--workers", "1", "--isolation", isolation],
                          capture_output=True, text=True, env=env, timeout=1200)
    cells = {r["cell"]["method"]: r for r in iter_results(root / "out")}
    return proc, {"cells": cells, "victim_changed": victim.read_bytes() != before,
                  "outside": sorted(p.name for p in outside.iterdir())}


@pytest.fixture(scope="module")
def runs(site, tmp_path_factory) -> Iterator[dict[str, Any]]:
    out: dict[str, Any] = {}
    for isolation in ("process", "confined"):
        root = tmp_path_factory.mktemp(isolation)
        listeners = Listeners(root)
        try:
            proc, seen = _run(root, site, isolation, (*HONEST, *ESCAPES), listeners)
            seen.update(proc=proc, accepted=dict(listeners.accepted), datagrams=listeners.datagrams())
        finally:
            listeners.close()
        out[isolation] = seen
    out["clean"] = _clean_run(tmp_path_factory.mktemp("clean"), site)
    yield out


def _clean_run(root: Path, site: Path) -> dict[str, Any]:
    """The honest strategies alone (no escaper, no escaping loss), with ``xalbench run`` in this process."""
    from xalbench.cli import main

    suite = root / "suite.toml"
    suite.write_text(escape_suite_text(list(HONEST), escaping_loss=False))
    with dist_on_path(site, ESCAPER_MODULE):
        assert main(["run", "--suite", str(suite), "--out", str(root / "out"), "--quiet", "--workers", "1"]) == 0
    return {"cells": {r["cell"]["method"]: r for r in iter_results(root / "out")}}


def _escaped(run: dict[str, Any], name: str) -> bool:
    result = run["cells"][f"{name}+ce"]
    assert result["status"] == "ok", result.get("error")
    picks = result["rounds"][0]["queried"]
    honest = run["cells"]["honest-first+ce"]["rounds"][0]["queried"]
    return picks != honest


def test_every_escape_works_without_confinement(runs) -> None:
    """The positive control: with process isolation each escape reaches what it aims at."""
    control = runs["process"]
    assert control["proc"].returncode == 0, control["proc"].stderr[-2000:]
    assert {name for name in ESCAPES if _escaped(control, name)} == set(ESCAPES)
    assert control["victim_changed"] and control["accepted"]["tcp"] and control["accepted"]["unix"]
    assert control["datagrams"] > 0
    terms = control["cells"]["random+escape-loss"]["rounds"][0]["train_terms"]
    assert all(terms[k] == 1.0 for k in terms if k.startswith("escaped_")), terms


def test_every_escape_fails_when_confined(runs) -> None:
    confined = runs["confined"]
    assert confined["proc"].returncode == 0, confined["proc"].stderr[-2000:]
    assert [name for name in ESCAPES if _escaped(confined, name)] == []
    assert not confined["victim_changed"] and confined["outside"] == []
    assert confined["accepted"] == {"tcp": 0, "unix": 0} and confined["datagrams"] == 0
    terms = confined["cells"]["random+escape-loss"]["rounds"][0]["train_terms"]
    escaped = {k: v for k, v in terms.items() if k.startswith("escaped_")}
    assert escaped and not any(escaped.values()), escaped
    for result in confined["cells"].values():
        conf = result["provenance"]["confinement"]
        assert conf["cell"]["level"] == "confined" and conf["strategy"]["level"] == "confined"


def test_honest_cells_are_bitwise_those_of_a_run_without_escapers(runs) -> None:
    def comparable(result: dict[str, Any]) -> Any:
        return [{k: v for k, v in r.items() if k != "timings"} for r in result["rounds"]]

    for name in HONEST:
        key = f"{name}+ce"
        assert comparable(runs["confined"]["cells"][key]) == comparable(runs["clean"]["cells"][key]), name
        assert comparable(runs["process"]["cells"][key]) == comparable(runs["clean"]["cells"][key]), name


EXPECTED_ATTEMPT = {
    "escape-environ": "environ", "escape-cmdline": "cmdline", "escape-results-read": "list",
    "escape-results-tamper": "list", "escape-write-outside": "write", "escape-site-packages": "write",
    "escape-proc-mem": "(another process)", "escape-data-root": "list", "escape-tcp": "new (2, 1)",
    "escape-udp": "new (2, 2)", "escape-unix": "new (1, 1)", "escape-signal": "signal 0", "escape-ptrace": "ptrace",
}


@pytest.fixture(scope="module")
def escapers(site, tmp_path_factory):
    import importlib

    outside = tmp_path_factory.mktemp("kit-outside")
    for sub, name in (("cells", "lesions__random+ce__seed0.json"), ("synthetic", "data.npz")):
        (outside / sub).mkdir()
        (outside / sub / name).write_text("{}")
    plan = {"results": str(outside), "outside": str(outside), "data_root": str(outside), "tcp": 9, "udp": 9,
            "unix": str(outside / "none.sock")}
    with dist_on_path(site, ESCAPER_MODULE) as mp:
        mp.setenv("XALBENCH_ESCAPE_PLAN", json.dumps(plan))
        module = importlib.import_module(ESCAPER_MODULE)
        yield {cls.name: cls for cls in module.ESCAPERS}


@pytest.mark.parametrize("name", ESCAPES)
def test_the_kit_names_each_escape_it_saw_attempted(escapers, name) -> None:
    from xalbench.testing.leak_checks import check_no_escape_attempts

    plan = json.loads(os.environ["XALBENCH_ESCAPE_PLAN"])  # passed as an option: the sandbox's environment
    with pytest.raises(AssertionError, match="tried to reach outside its sandbox") as info:  # is its fork server's
        check_no_escape_attempts(escapers[name]({"plan": json.dumps(plan)}))
    assert EXPECTED_ATTEMPT[name] in str(info.value), str(info.value)
