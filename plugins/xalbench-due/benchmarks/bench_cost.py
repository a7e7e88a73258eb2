"""Cost of DUE's per-round interpolation + weights relative to one round's classifier training.

Setting of the ``medical`` suite on ``synth-lesion-3d``: 12×24×24 volumes, 160-volume pool, ROI on
every 3rd slice, 20 % initial (32 volumes) + 3 rounds × 16, small-cnn (width 16, 3 blocks), 10
epochs, batch 16, one torch thread (as a cell). Per round it times (a) CE training, (b) the
``due`` loss's ``on_round_start`` (interpolator fit when not cached, Algorithm 1 sampling,
uncertainty predictor, weights), (c) training with the ``due`` loss, then a second method
(another strategy, same seed) whose round 0 hits the imputation cache. Ratios come from one run.

    python plugins/xalbench-due/benchmarks/bench_cost.py [--rounds 4] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from xalbench.base import RoundInfo
from xalbench.plugins import load_registry
from xalbench.suite import TrainingSpec
from xalbench.training.epochs import train_round


def _train(reg: object, loss: object, split: object, spec: TrainingSpec, seed: int) -> float:
    """Seconds of one round's classifier training (small-cnn, the medical suite's settings)."""
    torch.manual_seed(seed)
    model = reg.create("model", "small-cnn", {"width": 16, "n_blocks": 3}).build(1, 3, 3)  # type: ignore[attr-defined]
    n = len(split)  # type: ignore[arg-type]
    t0 = time.perf_counter()
    train_round(model, loss, split, np.arange(n), np.ones(n, bool), spec, "multi-class",  # type: ignore[arg-type]
                torch.Generator().manual_seed(seed), torch.device("cpu"))
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--json", default="")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    reg = load_registry()
    pool = reg.create("dataset", "synth-lesion-3d", dict(size=24, depth=12, n_train=160, n_val=40, n_test=80,
                                                        annotate_every=3)).load().train
    spec = TrainingSpec(epochs=10, batch_size=16, lr=0.003)
    order = np.random.default_rng(0).permutation(len(pool))
    due = reg.create("loss", "due", {})
    ce = reg.create("loss", "ce", {})
    rows = []
    for r in range(args.rounds):
        lab = order[: 32 + 16 * r]
        split = pool.subset(lab)
        info = RoundInfo(r, len(lab), len(lab) / len(pool), 0, "multi-class", 3, 3, labelled=split, index=lab)

        t_ce = _train(reg, ce, split, spec, r)
        t0 = time.perf_counter()
        due.on_round_start(info)
        t_impute = time.perf_counter() - t0
        stats = dict(due.round_stats)
        t_due = _train(reg, due, split, spec, r)
        rows.append({"round": r, "n_labelled": len(lab), "ce_train_s": t_ce, "impute_s": t_impute,
                     "due_train_s": t_due, "impute_over_ce": t_impute / t_ce, "due_train_over_ce": t_due / t_ce,
                     "interpolator_fitted": stats.get("interpolator_fitted", 0.0), "cache_hit": stats.get("cache_hit")})
        print(json.dumps(rows[-1]), flush=True)
    # a second method with the same seed: round 0's labelled masks are identical → cache hit
    other = reg.create("loss", "due", {})
    split0 = pool.subset(order[:32])
    t0 = time.perf_counter()
    other.on_round_start(RoundInfo(0, 32, 0.2, 0, "multi-class", 3, 3, labelled=split0, index=order[:32]))
    hit = time.perf_counter() - t0
    total_ce = sum(r["ce_train_s"] for r in rows)
    total_imp = sum(r["impute_s"] for r in rows)
    out = {"rounds": rows, "impute_over_ce_all_rounds": total_imp / total_ce,
           "impute_over_ce_first_round": rows[0]["impute_over_ce"],
           "impute_over_ce_later_rounds": (sum(r["impute_s"] for r in rows[1:]) / sum(r["ce_train_s"] for r in rows[1:])
                                           if len(rows) > 1 else float("nan")),
           "second_method_round0_over_ce": hit / rows[0]["ce_train_s"],
           "due_train_over_ce_all_rounds": sum(r["due_train_s"] for r in rows) / total_ce}
    print(json.dumps({k: v for k, v in out.items() if k != "rounds"}, indent=1))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=1)
    return out


if __name__ == "__main__":
    main()
