"""Matplotlib figures from result files: learning curves (mean ± std bands) and the
accuracy-vs-Dice plane (AULC_acc against AULC_dice, one point per method)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from xalbench.report.tables import cells_frame, curves_frame, leaderboard  # noqa: E402

__all__ = ["write_plots"]


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in text)


def write_plots(results: list[dict[str, Any]], out_dir: str | Path) -> list[Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    curves = curves_frame(results)
    written: list[Path] = []
    if curves.empty:
        return written
    for dataset, g in curves.groupby("dataset"):
        methods = sorted(g["method"].unique())
        colours = plt.get_cmap("tab20")
        styles = ("-", "--", ":", "-.")
        fig, axes = plt.subplots(1, 2, figsize=(13, 4.5))
        for metric, ax in zip(("accuracy", "dice"), axes, strict=True):
            for i, method in enumerate(methods):
                agg = g[g["method"] == method].groupby("n_labelled")[metric].agg(["mean", "std"]).reset_index()
                colour = colours(i % 20)
                ax.plot(agg["n_labelled"], agg["mean"], marker="o", markersize=3, color=colour,
                        linestyle=styles[(i // 20) % len(styles)], label=method)
                ax.fill_between(agg["n_labelled"], agg["mean"] - agg["std"].fillna(0),
                                agg["mean"] + agg["std"].fillna(0), color=colour, alpha=0.08)
            ax.set_xlabel("labelled samples")
            ax.set_ylabel("test accuracy" if metric == "accuracy" else "Dice (explanation vs ROI)")
            ax.grid(alpha=0.3)
        axes[1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5), ncol=1 + len(methods) // 24)
        fig.suptitle(f"{dataset}: learning curves (mean ± std over seeds)")
        fig.tight_layout()
        path = out / f"curves_{_slug(dataset)}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    board = leaderboard(cells_frame(results))
    for dataset, g in board.groupby("dataset"):
        fig, ax = plt.subplots(figsize=(5.5, 4.5))
        ax.errorbar(g["aulc_acc_mean"], g["aulc_dice_mean"], xerr=g["aulc_acc_std"].fillna(0),
                    yerr=g["aulc_dice_std"].fillna(0), fmt="o")
        for _, row in g.iterrows():
            ax.annotate(row["method"], (row["aulc_acc_mean"], row["aulc_dice_mean"]), fontsize=7)
        ax.set_xlabel("AULC accuracy")
        ax.set_ylabel("AULC Dice")
        ax.set_title(f"{dataset}: accuracy vs explanation plane")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        path = out / f"plane_{_slug(dataset)}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written
