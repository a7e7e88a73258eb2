"""Cost of asking a strategy through its sandbox process, as ratios to the strategy's own time.

Setting: the ``medical`` suite's 2D pool sizes — 400 pool images of 1×32×32 (80 labelled, so 320
scored), 100 val images, 3 classes, k = 40, small-cnn with width 16 and 3 blocks, one thread — and
``entropy``, the cheapest model-based strategy (so the overhead shows most).

Per round, alternating order, medians over :data:`REPEATS`:

* ``direct``  — ``call_strategy(entropy, ctx)`` on a fresh context in this process (what the harness
  did before the sandbox: the strategy's own scoring time, pool forward pass included);
* ``process`` — the harness's whole cost per round with the sandbox: build the round request (state
  dict copy), send it, the sandbox rebuilds the model and the context, queries, checks its data,
  replies, and the harness validates;
* ``inline`` — the same through the in-process twin (``--isolation inline``).

Also reported: a sandbox's start-up (fork from the warm fork server, load the cell's data, build the
strategy) as a ratio to one query — it runs while round 0 trains — and a whole cell's wall time
(3 rounds of training as in ``medical`` — 10 epochs, batch 16, Adam — each followed by a query;
the querier started before round 0) with ``process`` vs ``inline``. The only assertion is the goal:
per-round query cost with the sandbox ≤ 1.2 × the strategy's own scoring time.

Run: ``python -m pytest benchmarks/test_bench_sandbox.py -s``.
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import torch

from xalbench.base import Split
from xalbench.models.small_cnn import SmallCNN
from xalbench.sandbox import (
    ComponentRef,
    InlineQuerier,
    ProcessQuerier,
    SandboxSpec,
    make_cell_data,
    make_round_request,
)
from xalbench.sandbox.context import StrategyContext
from xalbench.sandbox.guard import call_strategy
from xalbench.sandbox.session import seeded_torch
from xalbench.strategies.uncertainty import EntropySampling

N_POOL, N_LAB, N_VAL, K_CLS, K = 400, 80, 100, 3, 40
MODEL = {"width": 16, "n_blocks": 3}
REPEATS = 15


def _cell() -> tuple[Split, Split, torch.nn.Module, np.ndarray]:
    gen = torch.Generator().manual_seed(0)
    pool = Split(images=torch.rand(N_POOL, 1, 32, 32, generator=gen), labels=torch.arange(N_POOL) % K_CLS)
    val = Split(images=torch.rand(N_VAL, 1, 32, 32, generator=gen), labels=torch.arange(N_VAL) % K_CLS)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = SmallCNN(MODEL).build(1, K_CLS, 2)
    model.train()
    return pool, val, model, np.arange(N_LAB, dtype=np.int64)


def _direct(pool: Split, val: Split, model: torch.nn.Module, labelled: np.ndarray) -> float:
    lab = torch.as_tensor(labelled)
    t0 = time.perf_counter()
    ctx = StrategyContext(model=model, pool_images=pool.images, labelled=labelled, labelled_labels=pool.labels[lab],
                          labelled_roi=None, labelled_has_roi=None, val=val, task="multi-class", num_classes=K_CLS,
                          spatial_dims=2, rng=np.random.default_rng(1), device=torch.device("cpu"), round_index=0,
                          seed=2, explainer=None, batch_size=256)
    with seeded_torch(2):
        call_strategy(EntropySampling(), ctx, K, timeout=600)
    return time.perf_counter() - t0


def _through(querier, pool: Split, model: torch.nn.Module, labelled: np.ndarray) -> float:
    t0 = time.perf_counter()
    request = make_round_request(0, model, pool, labelled, np.zeros(len(labelled), bool), rng_seed=1,
                                 torch_seed=2, k=K)
    querier.query(request)
    return time.perf_counter() - t0


def test_bench_sandbox_query_overhead():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        pool, val, model, labelled = _cell()
        spec = SandboxSpec(strategy=ComponentRef.of("strategy", EntropySampling),
                           model=ComponentRef.of("model", SmallCNN, MODEL), explainer=None, task="multi-class",
                           num_classes=K_CLS, in_channels=1, spatial_dims=2, threads=1, batch_size=256)
        with ProcessQuerier(spec, make_cell_data(pool, val, pool_masks_visible=False)) as warm:
            _through(warm, pool, model, labelled)  # the fork server's one-off start
        boots = []
        times: dict[str, list[float]] = {"direct": [], "process": [], "inline": []}
        process = ProcessQuerier(spec, make_cell_data(pool, val, pool_masks_visible=False)).start()
        inline = InlineQuerier(spec, make_cell_data(pool, val, pool_masks_visible=False))
        _through(process, pool, model, labelled)
        _through(inline, pool, model, labelled)
        _direct(pool, val, model, labelled)
        for i in range(REPEATS):
            order = ["direct", "process", "inline"] if i % 2 == 0 else ["inline", "process", "direct"]
            for name in order:
                if name == "direct":
                    times[name].append(_direct(pool, val, model, labelled))
                else:
                    times[name].append(_through(process if name == "process" else inline, pool, model, labelled))
            if i < 5:  # start-up of a fresh sandbox from the warm fork server (first query excluded)
                with ProcessQuerier(spec, make_cell_data(pool, val, pool_masks_visible=False)) as fresh:
                    _through(fresh, pool, model, labelled)
                    boots.append(fresh.boot_seconds)
        process.close()
        med = {name: statistics.median(ts) for name, ts in times.items()}
        boot = statistics.median(boots)
        print(f"\nper-round query, medians of {REPEATS} (one thread, 400×1×32×32 pool, entropy):")
        for name, t in med.items():
            print(f"  {name:8s} {t * 1e3:8.1f} ms   {t / med['direct']:5.2f}× direct")
        print(f"  sandbox start-up {boot * 1e3:.0f} ms = {boot / med['direct']:.2f}× one direct query "
              "(overlaps round 0's training)")
        assert med["process"] / med["direct"] <= 1.2, "sandbox query overhead exceeds the 1.2× goal"
    finally:
        torch.set_num_threads(threads)


def _train(model: torch.nn.Module, pool: Split, labelled: np.ndarray, r: int) -> None:
    gen = torch.Generator().manual_seed(r)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(10):
        order = labelled[torch.randperm(len(labelled), generator=gen).numpy()]
        for b in range(0, len(order), 16):
            idx = torch.as_tensor(order[b:b + 16])
            loss = torch.nn.functional.cross_entropy(model(pool.images[idx]), pool.labels[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()


def _cell_run(isolation: str, spec: SandboxSpec, pool: Split, val: Split) -> float:
    t0 = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = SmallCNN(MODEL).build(1, K_CLS, 2)
    querier = (ProcessQuerier if isolation == "process" else InlineQuerier)(
        spec, make_cell_data(pool, val, pool_masks_visible=False)).start()
    labelled = np.arange(N_LAB, dtype=np.int64)
    try:
        for r in range(3):
            _train(model, pool, labelled, r)
            request = make_round_request(r, model, pool, labelled, np.zeros(len(labelled), bool), rng_seed=r,
                                         torch_seed=r, k=K)
            labelled = np.concatenate([labelled, querier.query(request).indices])
    finally:
        querier.close()
    return time.perf_counter() - t0


def test_bench_sandbox_cell_wall_time():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        pool, val, _, _ = _cell()
        spec = SandboxSpec(strategy=ComponentRef.of("strategy", EntropySampling),
                           model=ComponentRef.of("model", SmallCNN, MODEL), explainer=None, task="multi-class",
                           num_classes=K_CLS, in_channels=1, spatial_dims=2, threads=1, batch_size=256)
        _cell_run("process", spec, pool, val)  # the fork server's one-off start
        times: dict[str, list[float]] = {"process": [], "inline": []}
        for i in range(5):
            for name in (["process", "inline"] if i % 2 == 0 else ["inline", "process"]):
                times[name].append(_cell_run(name, spec, pool, val))
        med = {name: statistics.median(ts) for name, ts in times.items()}
        print(f"\nwhole cell (3 × (train 10 epochs + entropy query)), medians of 5: process {med['process']:.2f} s, "
              f"inline {med['inline']:.2f} s, ratio {med['process'] / med['inline']:.3f}")
    finally:
        torch.set_num_threads(threads)
