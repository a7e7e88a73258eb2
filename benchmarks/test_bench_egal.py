"""EG-AL scoring cost as a ratio to ``entropy`` scoring of the same pool (issue 6: goal ≤ 1.3×).

Each measurement is one full ``query`` on a *fresh* round context (empty pool cache), so
the shared pool pass is included in both: ``entropy`` pays one forward; ``egal`` pays the
same forward plus head-only Grad-CAM of the predicted class from the cached activations
and the soft-Dice against the ROIs. Setting: small-cnn (width 16, 4 blocks) on 32×32
single-channel images, 512 pool images (64 labelled), 3 classes, box ROIs, k = 32, one
thread. Both are timed interleaved, alternating order (best of ``REPEATS``) in the same run, so machine load
affects both alike.

Run: ``python -m pytest benchmarks/test_bench_egal.py --benchmark-only -s``. The only
assertion is a generous form of the goal (2 × 1.3); the measured ratio is printed and
stored in ``extra_info``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import pytest
import torch

from xalbench.base import Split
from xalbench.models.small_cnn import SmallCNN
from xalbench.plugins import load_registry
from xalbench.sandbox.context import StrategyContext

REGISTRY = load_registry()
N_POOL, N_LAB, K_CLS, K, SIZE, REPEATS = 512, 64, 3, 32, 32, 15
pytest.importorskip("xalbench_egal", reason="install plugins/xalbench-egal to benchmark EG-AL")


def _boxes(gen: torch.Generator, n: int) -> torch.Tensor:
    roi = torch.zeros(n, SIZE, SIZE)
    corner = torch.randint(0, SIZE // 2, (n, 2), generator=gen)
    for i, (r, c) in enumerate(corner.tolist()):
        roi[i, r : r + SIZE // 3, c : c + SIZE // 3] = 1.0
    return roi


def fresh_context(seed: int = 0) -> StrategyContext:
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = SmallCNN().build(1, K_CLS, 2).eval()
    pool = torch.rand(N_POOL, 1, SIZE, SIZE, generator=gen)
    roi = _boxes(gen, N_POOL)
    val = Split(images=torch.rand(32, 1, SIZE, SIZE, generator=gen), labels=torch.arange(32) % K_CLS)
    return StrategyContext(
        model=net, pool_images=pool, labelled=np.arange(N_LAB), labelled_labels=torch.arange(N_LAB) % K_CLS,
        labelled_roi=roi[:N_LAB], labelled_has_roi=torch.ones(N_LAB, dtype=torch.bool), val=val,
        task="multi-class", num_classes=K_CLS, spatial_dims=2, rng=np.random.default_rng(seed),
        device=torch.device("cpu"), round_index=0, seed=seed, explainer=REGISTRY.create("explainer", "gradcam"),
        pool_roi=roi, pool_has_roi=torch.ones(N_POOL, dtype=torch.bool), pool_masks_visible=True, batch_size=128,
    )


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _best_query_times(strategies: dict[str, Callable[[StrategyContext], object]]) -> dict[str, float]:
    """Best-of-REPEATS seconds per full query on a fresh context (context built outside the timer).

    The order alternates between repeats so neither strategy always runs first.
    """
    best = dict.fromkeys(strategies, float("inf"))
    names = list(strategies)
    for rep in range(REPEATS):
        for name in names if rep % 2 == 0 else names[::-1]:
            query = strategies[name]
            ctx = fresh_context(rep)
            t = time.perf_counter()
            query(ctx)
            best[name] = min(best[name], time.perf_counter() - t)
    return best


@pytest.mark.parametrize("lam", [0.5, 0.0])
def test_bench_egal_vs_entropy_ratio(benchmark, lam):
    entropy = REGISTRY.create("strategy", "entropy")
    egal = REGISTRY.create("strategy", "egal", {"lam": lam})
    times = _best_query_times({"entropy": lambda c: entropy.query(c, K), "egal": lambda c: egal.query(c, K)})
    ratio = times["egal"] / times["entropy"]
    benchmark.extra_info.update({"entropy_s": times["entropy"], "egal_s": times["egal"], "ratio": ratio,
                                 "lam": lam, "n_pool": N_POOL - N_LAB})
    print(f"\negal(lam={lam}) vs entropy on {N_POOL - N_LAB} pool images: entropy {times['entropy'] * 1e3:.1f} ms, "
          f"egal {times['egal'] * 1e3:.1f} ms, ratio {ratio:.2f}x (goal <= 1.3x)")
    benchmark.pedantic(egal.query, setup=lambda: ((fresh_context(99), K), {}), rounds=3, iterations=1)
    assert ratio < 1.3 * 2  # generous form of the goal; the number that matters is printed above
