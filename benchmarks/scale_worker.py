"""One strategy's query on a 10 000-image 64×64 pool, in a fresh process: time and peak RSS.

Run by ``test_bench_scale.py`` as ``python scale_worker.py STRATEGY N SIZE`` (one process per
strategy, so each peak RSS is its own); prints one JSON line. The pool is synthetic (uniform
noise with a bright box per image; the box is the ROI), the model a default small-cnn
(width 16, 4 blocks: 128×8×8 explanation layer at 64 px), Grad-CAM the suite explainer,
3 classes, 500 labelled, k = 100, one thread.
"""

from __future__ import annotations

import json
import resource
import sys
import time


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # kB on Linux


def main(name: str, n: int, size: int) -> dict[str, float | str]:
    import numpy as np
    import torch

    from xalbench.base import Split
    from xalbench.models.small_cnn import SmallCNN
    from xalbench.plugins import load_registry
    from xalbench.sandbox.context import StrategyContext

    torch.set_num_threads(1)
    registry = load_registry()
    gen = torch.Generator().manual_seed(0)
    images = torch.rand(n, 1, size, size, generator=gen)
    roi = torch.zeros(n, size, size)
    corner = torch.randint(0, size // 2, (n, 2), generator=gen)
    for i, (r, c) in enumerate(corner.tolist()):
        roi[i, r : r + size // 3, c : c + size // 3] = 1.0
    images += 0.5 * roi[:, None]
    labels = torch.arange(n) % 3
    n_lab = 500
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = SmallCNN().build(1, 3, 2).eval()
    val = Split(images=images[:200].clone(), labels=labels[:200].clone())
    strategy = registry.create("strategy", name)
    base_rss = _rss_mb()
    ctx = StrategyContext(
        model=net, pool_images=images, labelled=np.arange(n_lab), labelled_labels=labels[:n_lab],
        labelled_roi=roi[:n_lab], labelled_has_roi=torch.ones(n_lab, dtype=torch.bool), val=val,
        task="multi-class", num_classes=3, spatial_dims=2, rng=np.random.default_rng(0), device=torch.device("cpu"),
        round_index=0, seed=0, explainer=registry.create("explainer", "gradcam"), pool_roi=roi,
        pool_has_roi=torch.ones(n, dtype=torch.bool), pool_masks_visible=True, batch_size=256)
    t0 = time.perf_counter()
    picks = np.asarray(strategy.query(ctx, 100))
    seconds = time.perf_counter() - t0
    return {"strategy": name, "n_pool": n - n_lab, "seconds": seconds, "base_rss_mb": base_rss,
            "peak_rss_mb": _rss_mb(), "n_picked": int(len(picks)), "picks_head": picks[:5].tolist()}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))))
