"""Confined cell hosts: one confined process runs the cells of one trust domain, one after another —
results bitwise those of ``process`` isolation, a plugin's code never shares a process with cells
that do not run it, and a failed cell retires its host."""

from __future__ import annotations

import dataclasses
import json

import pytest

from xalbench.api import plan_run
from xalbench.confinement import landlock
from xalbench.harness.cell import run_cell
from xalbench.harness.hosts import CellHosts, trust_domain
from xalbench.harness.runtime import Runtime
from xalbench.plugins import PluginSelection
from xalbench.suite import ComponentSpec

pytestmark = pytest.mark.skipif(landlock.abi_version()[0] is None, reason="no Landlock on this kernel")


def _hosts(runtime: Runtime) -> CellHosts:
    return runtime.service("confined-cell-hosts", CellHosts)  # type: ignore[no-any-return]


def _plan(runtime: Runtime, suite, out, isolation: str):
    return plan_run(runtime, str(suite), out_dir=str(out), isolation=isolation, tune=False)


def _comparable(result: dict) -> str:
    """Everything a cell computed (rounds with metrics and queried indices, summary), timings left out."""
    rounds = [{k: v for k, v in r.items() if k != "timings"} for r in result["rounds"]]
    return json.dumps({"rounds": rounds, "summary": result["summary"]}, sort_keys=True)


def test_one_host_runs_a_domains_cells_bitwise_as_process_isolation(write_suite, tmp_path) -> None:
    suite = write_suite(["random", "entropy"])
    runtime = Runtime.from_selection(PluginSelection())
    try:
        confined = [run_cell(spec, runtime) for spec in _plan(runtime, suite, tmp_path / "c", "confined").cells]
        hosts = _hosts(runtime)
        assert hosts.started == 1, "four cells of one trust domain should share one host"
        assert all(r["status"] == "ok" for r in confined)
        assert all(r["provenance"]["confinement"]["cell"]["level"] == "confined" for r in confined)
    finally:
        runtime.close()
    assert _hosts(runtime).started == 0, "close() stops the hosts"
    process = [run_cell(spec, runtime) for spec in _plan(runtime, suite, tmp_path / "p", "process").cells]
    assert [_comparable(r) for r in confined] == [_comparable(r) for r in process]


def test_a_failed_cell_retires_its_host(write_suite, tmp_path) -> None:
    runtime = Runtime.from_selection(PluginSelection())
    cells = _plan(runtime, write_suite(["random"]), tmp_path / "c", "confined").cells
    bad_loss = dataclasses.replace(cells[0].method, loss=ComponentSpec("ce", {"no_such_option": 1}))
    broken = cells[0].evolve(method=bad_loss)  # the loss is built in the host: the cell fails there
    try:
        failed = run_cell(broken, runtime)
        assert failed["status"] == "failed" and "no_such_option" in failed["error"]["message"]
        assert run_cell(cells[1], runtime)["status"] == "ok"
        assert _hosts(runtime).started == 2, "the cell after a failure needs a fresh host"
    finally:
        runtime.close()


def test_a_plugin_component_has_its_own_trust_domain(write_suite, tmp_path) -> None:
    runtime = Runtime.from_selection(PluginSelection())
    if "due" not in runtime.registry.names("loss"):
        pytest.skip("the DUE plugin is not installed")
    spec = _plan(runtime, write_suite(["random"]), tmp_path / "c", "process").cells[0]
    assert trust_domain(spec, runtime.registry) == ()
    due = dataclasses.replace(spec.method, loss=ComponentSpec("due", {}))
    package = type(runtime.registry.create("loss", "due", {})).__module__.split(".")[0]
    assert trust_domain(spec.evolve(method=due), runtime.registry) == (package,)
