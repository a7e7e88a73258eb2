"""Scale: peak memory of pool scoring at 10 000 images, parallel speed-up, Dask overhead, where time goes.

* **Pool memory.** Entropy, BADGE, CoreSet, EG-AL and AEIG each query a 10 000-image 64×64
  pool (500 labelled, k = 100) in a fresh process (``scale_worker.py``); peak RSS from
  ``resource.getrusage`` (process lifetime: imports, the pool, the round cache, the query).
  Goal: < 2 GB each. Also each query's time as a ratio to entropy's.
* **Workers and executors** on a fixed 8-cell grid (synth-lesion-2d at 32 px, 200-image pool,
  random and entropy × 4 seeds, 3 rounds of 5 epochs; every cell runs its strategy in its sandbox
  process): ``local`` with 1 worker, ``local`` with 2 (loky), ``dask`` LocalCluster with 2 worker
  processes, one after the other, each into a fresh results directory, timing the whole run
  (worker start-up included). Goals: 2 workers ≥ 1.8× faster than 1; Dask ≤ 1.1× local. All
  three must give the same results (metrics and picks).
* **Medical time breakdown.** A reduced ``medical`` grid (synth-lesion-2d; random, entropy, BADGE
  and EG-AL with ce and dice; seed 0; 2 workers) and the per-part breakdown that
  ``xalbench run --profile`` prints (:func:`xalbench.report.profile.profile_frame`).

Every number goes into the one table printed at the end of ``python -m pytest benchmarks``.
Assertions: generous forms of the memory goal and equal results only (the machine is shared
and noisy: the table reports what was measured, with the load average).
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import table

WORKER = Path(__file__).parent / "scale_worker.py"
STRATEGIES = ["entropy", "badge", "coreset", "egal", "aeig"]
N_POOL, SIZE, GOAL_GB = 10_000, 64, 2.0
POOL: dict[str, dict[str, Any]] = {}

GRID = """
name = "scale8"
seeds = [0, 1, 2, 3]
strategies = ["random", "entropy"]
losses = ["ce"]

[model]
name = "small-cnn"
options = { width = 16, n_blocks = 3 }

[protocol]
base = "aeig"
initial = 40
rounds = 3
query_size = 20

[training]
epochs = 5
batch_size = 16

[[datasets]]
name = "synth-lesion-2d"
options = { size = 32, n_train = 200, n_val = 50, n_test = 100 }
"""


def _registered(name: str) -> bool:
    from xalbench.plugins import load_registry

    return ("strategy", name) in load_registry()


@pytest.mark.parametrize("name", STRATEGIES)
def test_bench_pool_peak_memory(name: str) -> None:
    if not _registered(name):
        pytest.skip(f"strategy {name} is not installed")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(WORKER), name, str(N_POOL), str(SIZE)], capture_output=True,
                          text=True, env=env, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    POOL[name] = out
    gb = out["peak_rss_mb"] / 1024
    print(f"\n{name}: {out['n_pool']} pool images scored in {out['seconds']:.1f} s, peak RSS {gb:.2f} GB "
          f"(before the round: {out['base_rss_mb'] / 1024:.2f} GB)")
    table.record(f"{N_POOL:,}-image {SIZE}×{SIZE} pool", f"{name}: peak RSS", f"{gb:.2f} GB", f"< {GOAL_GB:g} GB",
                 f"{gb / GOAL_GB:.2f}× the goal; {out['base_rss_mb'] / 1024:.2f} GB before the query")
    assert gb < GOAL_GB * 1.25  # generous form of the goal; the table has the number


def test_bench_pool_query_time_ratios() -> None:
    if "entropy" not in POOL:
        pytest.skip("the pool-memory benchmarks did not run")
    base = POOL["entropy"]["seconds"]
    for name, out in POOL.items():
        if name != "entropy":
            table.record(f"{N_POOL:,}-image {SIZE}×{SIZE} pool", f"{name}: query time / entropy",
                         f"{out['seconds'] / base:.2f}×", note=f"entropy {base:.0f} s, one thread, cache included")


def _grid(tmp: Path) -> Any:
    from xalbench.harness.runtime import Runtime
    from xalbench.planning import plan_suite
    from xalbench.plugins import PluginSelection
    from xalbench.suite import parse_suite

    selection = PluginSelection.from_env()
    registry = selection.registry()
    return plan_suite(registry, parse_suite(GRID, where="scale8"), out_dir=str(tmp), selection=selection,
                      runtime=Runtime(registry, selection))


def _timed(plan: Any, out: Path, executor: Any, workers: int) -> tuple[float, dict[str, Any]]:
    from xalbench.runner import run_plan

    cells = [dataclasses.replace(c, out_dir=str(out)) for c in plan.cells]
    t0 = time.perf_counter()
    results = run_plan(dataclasses.replace(plan, cells=cells), workers=workers, quiet=True, executor=executor)
    seconds = time.perf_counter() - t0
    assert [r["status"] for r in results] == ["ok"] * len(cells), [r.get("error") for r in results]
    return seconds, {r["cell"]["key"]: ([{k: v for k, v in rd.items() if k != "timings"} for rd in r["rounds"]],
                                        r["summary"]) for r in results}


def test_bench_workers_and_dask(tmp_path: Path) -> None:
    pytest.importorskip("distributed", reason="install xalbench[dask] for the Dask ratio")
    from xalbench.execution.dask import DaskExecutor
    from xalbench.execution.local import LocalExecutor

    plan = _grid(tmp_path / "plan")
    assert len(plan.cells) == 8
    load0 = os.getloadavg()[0]
    t1, r1 = _timed(plan, tmp_path / "w1", LocalExecutor(), 1)
    t2, r2 = _timed(plan, tmp_path / "w2", LocalExecutor(), 2)  # cold: loky starts and imports its workers
    t2w, r2w = _timed(plan, tmp_path / "w2-warm", LocalExecutor(), 2)  # joblib reuses the warm workers
    td, rd = _timed(plan, tmp_path / "dask", DaskExecutor({"n_workers": 2, "processes": True}), 2)
    load1 = os.getloadavg()[0]
    print(f"\n8-cell grid: 1 worker {t1:.1f} s, 2 workers {t2:.1f} s cold ({t1 / t2:.2f}×), {t2w:.1f} s warm "
          f"({t1 / t2w:.2f}×; worker start-up ≈ {t2 - t2w:.1f} s), Dask 2 workers {td:.1f} s ({td / t2:.2f}× local "
          f"cold); load average {load0:.1f} → {load1:.1f} on {os.cpu_count()} cores")
    note = f"1 worker {t1:.0f} s; load average {load0:.1f}→{load1:.1f} on {os.cpu_count()} cores"
    table.record("8-cell grid", "local, 1 worker / 2 workers, warm workers (speed-up)", f"{t1 / t2w:.2f}×", "≥ 1.8×",
                 note)
    table.record("8-cell grid", "local, 1 worker / 2 workers, cold (worker start-up included)", f"{t1 / t2:.2f}×", "",
                 f"start-up of 2 loky workers (imports, registry, fork servers) ≈ {t2 - t2w:.0f} s, once per run")
    table.record("8-cell grid", "dask LocalCluster (2 processes) / local (2 workers), both cold", f"{td / t2:.2f}×",
                 "≤ 1.1×", f"local 2 workers {t2:.0f} s, Dask {td:.0f} s, cluster and worker start-up included")
    assert r1 == r2 == r2w == rd  # the executors change where cells run, never what they compute


def test_bench_medical_time_breakdown(tmp_path: Path) -> None:
    from xalbench.harness.runtime import Runtime
    from xalbench.planning import load_suite, plan_suite
    from xalbench.plugins import PluginSelection
    from xalbench.report.profile import PARTS, profile_frame, profile_markdown
    from xalbench.runner import run_plan

    selection = PluginSelection.from_env()
    registry = selection.registry()
    strategies = [s for s in ("random", "entropy", "badge", "egal") if ("strategy", s) in registry]
    plan = plan_suite(registry, load_suite(registry, "medical"), out_dir=str(tmp_path), datasets=["synth-lesion-2d"],
                      strategies=strategies, losses=["ce", "dice"], seeds=[0], selection=selection,
                      runtime=Runtime(registry, selection))
    plan = dataclasses.replace(plan, cells=[c for c in plan.cells if c.dataset.display == "synth-lesion-2d"])
    t0 = time.perf_counter()
    results = run_plan(plan, workers=2, quiet=True)
    wall = time.perf_counter() - t0
    ok = [r for r in results if r["status"] == "ok"]
    print(f"\nreduced medical grid: {len(results)} cells ({len(ok)} ok) in {wall:.0f} s with 2 workers\n")
    print(profile_markdown(results))
    frame = profile_frame(results)
    total = float(frame.loc["all datasets", [k for k, _ in PARTS]].sum())
    section = f"medical (synth-lesion-2d, {len(results)} cells, 1 seed)"
    for key, label in PARTS:
        seconds = float(frame.loc["all datasets", key])
        table.record(section, label, f"{100 * seconds / total:.0f} %", note=f"{seconds:.0f} cell-seconds")
    table.record(section, "wall time, 2 workers", f"{wall:.0f} s",
                 note=f"{total:.0f} cell-seconds in rounds; methods: {', '.join(sorted({r['cell']['method'] for r in results}))}")
    assert len(ok) == len(results), [r.get("error") for r in results if r["status"] != "ok"]
