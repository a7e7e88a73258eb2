"""Fig. 3 of the paper, recomputed: the top-scoring pool samples of one EG-AL round.

Each row shows a selected pool image with its acquisition score (eq. 3) and terms, the
expert ROI, and the model's Grad-CAM of the predicted class (the map eq. 2 compares).

The model is **recomputed, not stored**: :func:`replay_round` reads one finished cell of
a results directory and asks the harness (:func:`xalbench.harness.replay.replay_round`) to
rebuild round ``r``: the labelled set from the recorded queries, the same initial weights,
seeds, loss and settings, the same :class:`StrategyContext`; it scores the pool with
:class:`~xalbench_egal.EGAL`. It then checks that its top-``k`` equals the
batch the run actually queried (same machine, software and threads ⇒ bitwise equal; the
figure's title says whether it did).

Command line (no ``xalbench`` sub-command needed)::

    python -m xalbench_egal.figure RESULTS_DIR OUT.png [--method LABEL] [--seed S] [--round R] [--top N]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from xalbench.base import stable_topk
from xalbench.errors import ConfigError, XalbenchError
from xalbench.harness.identity import CellSpec
from xalbench.harness.replay import replay_round as harness_replay
from xalbench.planning import resolve_dataset_spec
from xalbench.sandbox.context import StrategyContext
from xalbench.suite import SuiteSpec
from xalbench_egal.strategy import EGAL, EGALScores

__all__ = ["ReplayedRound", "replay_round", "plot_top_samples", "find_cell", "main"]


@dataclasses.dataclass
class ReplayedRound:
    """A recomputed round: its context, the EG-AL terms and the recorded vs recomputed batch."""

    ctx: StrategyContext
    terms: EGALScores
    strategy: EGAL
    round_index: int
    seed: int
    method: str
    dataset: str
    recorded: list[int]
    recomputed: list[int]

    @property
    def reproduced(self) -> bool:
        return bool(self.recorded) and self.recorded == self.recomputed


def find_cell(results_dir: str | Path, *, method: str | None = None, seed: int | None = None,
              dataset: str | None = None) -> dict[str, Any]:
    """The finished EG-AL cell to draw (default: λ closest to 0.5, trained with ``dice``, lowest seed)."""
    cells = sorted(Path(results_dir).glob("cells/*.json"))
    done = [json.loads(p.read_text()) for p in cells if not p.name.endswith(".partial.json")]
    done = [r for r in done if r.get("status") == "ok" and r["cell"]["strategy"] == "egal"]
    if dataset is not None:
        done = [r for r in done if r["cell"]["dataset"] == dataset]
    if method is not None:
        done = [r for r in done if r["cell"]["method"] == method]
    if seed is not None:
        done = [r for r in done if r["cell"]["seed"] == seed]
    if not done:
        raise ConfigError(f"no finished EG-AL (strategy 'egal') cell in {results_dir} matches method={method!r}, "
                          f"seed={seed!r}, dataset={dataset!r}; run `xalbench run --suite egal-paper` first")
    done.sort(key=lambda r: (abs(float(r["cell"]["strategy_options"].get("lam", 0.5)) - 0.5),
                             r["cell"]["loss"] != "dice", r["cell"]["dataset"], r["cell"]["method"], r["cell"]["seed"]))
    return done[0]


def replay_round(results_dir: str | Path, *, method: str | None = None, seed: int | None = None,
                 round_index: int = 0, dataset: str | None = None, data_root: str | None = None) -> ReplayedRound:
    """Retrain the model of ``round_index`` of one EG-AL cell and score its pool (see module docstring)."""
    result = find_cell(results_dir, method=method, seed=seed, dataset=dataset)
    run_file = Path(results_dir) / "run.json"
    suite = json.loads(run_file.read_text()).get("suite") if run_file.is_file() else None
    if not suite:
        raise ConfigError(f"{run_file} (written by `xalbench run`) is missing or has no suite; rerun the suite")
    cell = result["cell"]
    rounds = result["rounds"]
    if not 0 <= round_index < len(rounds) - 1:
        raise ConfigError(f"round {round_index} did not query anything; choose 0..{len(rounds) - 2}")
    spec_suite = SuiteSpec.from_dict(suite)
    method_spec = next((m for m in spec_suite.methods if m.display == cell["method"]), None)
    dataset_spec = next((d for d in spec_suite.datasets if d.display == cell["dataset"]), None)
    if method_spec is None or dataset_spec is None:
        raise ConfigError(f"{run_file} does not describe cell {cell['key']}; was the directory reused by another suite?")
    visible = bool(cell.get("pool_masks_visible", spec_suite.pool_masks == "visible"))
    spec = CellSpec(spec_suite, resolve_dataset_spec(dataset_spec), method_spec, int(cell["seed"]), str(results_dir),
                    "cpu", int(result["provenance"]["environment"]["threads"]), data_root,
                    identity=result.get("identity", {}), pool_masks_visible=visible)
    _run, ctx = harness_replay(spec, result, round_index)  # the harness's own seeds and round steps
    r = round_index
    strategy = EGAL(cell["strategy_options"])
    terms = strategy.scores(ctx)
    recorded = [int(i) for i in rounds[r]["queried"]]
    recomputed = ctx.unlabelled[stable_topk(terms.score, len(recorded))].tolist()
    return ReplayedRound(ctx, terms, strategy, r, int(cell["seed"]), cell["method"], cell["dataset"],
                         recorded, [int(i) for i in recomputed])


def _show(img: np.ndarray) -> np.ndarray:
    """An image ``C×(D×)H×W`` as a 2D array (first channel; middle slice of volumes)."""
    a = img[0]
    return a[a.shape[0] // 2] if a.ndim == 3 else a


def plot_top_samples(replay: ReplayedRound, out: str | Path, *, top: int = 4) -> Path:
    """Write the Fig. 3-style PNG: one row per top-scoring sample (image + score, ROI, Grad-CAM)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ctx, terms = replay.ctx, replay.terms
    order = stable_topk(terms.score, min(top, len(terms.score)))
    maps = ctx.cache.saliency("pred").detach().cpu().numpy() if ctx.explainer is not None else None
    preds = ctx.cache.predictions().cpu().numpy()
    roi = ctx.pool_roi.cpu().numpy()
    fig, axes = plt.subplots(len(order), 3, figsize=(7.5, 2.5 * len(order)), squeeze=False)
    for row, pos in enumerate(order):
        img = _show(ctx.pool_images[int(ctx.unlabelled[pos])].numpy())
        d = terms.misalignment[pos]
        d_txt = "n/a (no ROI)" if np.isnan(d) else f"{d:.3f}"
        axes[row, 0].imshow(img, cmap="gray")
        axes[row, 0].set_title(f"pool #{int(ctx.unlabelled[pos])}  score {terms.score[pos]:.3f}\n"
                               f"H {terms.entropy[pos]:.3f}  D_exp {d_txt}", fontsize=8)
        axes[row, 1].imshow(img, cmap="gray")
        axes[row, 1].imshow(np.ma.masked_equal(_show(roi[pos][None]), 0), cmap="autumn", alpha=0.6)
        axes[row, 1].set_title("expert ROI", fontsize=8)
        axes[row, 2].imshow(img, cmap="gray")
        if maps is not None:
            axes[row, 2].imshow(_show(maps[pos][None]), cmap="jet", alpha=0.5, vmin=0, vmax=1)
        axes[row, 2].set_title(f"Grad-CAM of predicted class {int(np.ravel(preds[pos])[0])}", fontsize=8)
        for ax in axes[row]:
            ax.set_axis_off()
    status = "reproduces the recorded batch" if replay.reproduced else "differs from the recorded batch"
    fig.suptitle(f"{replay.method} on {replay.dataset}, seed {replay.seed}, round {replay.round_index}: top-scoring "
                 f"pool samples\n(lam = {replay.strategy.options.lam}; recomputed top-{len(replay.recorded)} "
                 f"{status})", fontsize=9)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m xalbench_egal.figure", description=__doc__.split("\n")[0])
    p.add_argument("results_dir")
    p.add_argument("out", help="PNG path")
    p.add_argument("--method", default=None, help="method label (default: the EG-AL method with lam closest to 0.5)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--dataset", default=None)
    p.add_argument("--round", type=int, default=0, dest="round_index")
    p.add_argument("--top", type=int, default=4)
    p.add_argument("--data-root", default=None)
    args = p.parse_args(argv)
    try:
        replay = replay_round(args.results_dir, method=args.method, seed=args.seed, round_index=args.round_index,
                              dataset=args.dataset, data_root=args.data_root)
        path = plot_top_samples(replay, args.out, top=args.top)
    except (XalbenchError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {path} ({replay.method}, seed {replay.seed}, round {replay.round_index}; recorded batch "
          f"{'reproduced' if replay.reproduced else 'NOT reproduced'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
