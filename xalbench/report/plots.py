"""Matplotlib figures from result files: learning curves (mean ± std bands) and the
accuracy-vs-explanation plane (AULC accuracy against the AULC of an explanation metric).

Colours: a colour-blind-safe palette (Okabe–Ito, then Paul Tol's muted set) with one **hue
family per strategy** — methods that share a strategy (differing by loss) share a hue and
differ by line style and marker; unrelated strategies never share a hue until the 17 hues
are used up, after which markers keep them apart. ``random + ce`` is drawn in black, thicker,
on top. Accuracy panels show the chance level (1/K for multi-class data). The plane labels
methods by number with a legend, so labels never overprint. PNGs carry no timestamp or
software metadata (byte-stable for the same data).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from xalbench.report.tables import curves_frame  # noqa: E402
from xalbench.utils.text import slug  # noqa: E402

__all__ = ["HUES", "make_plots", "method_styles"]

#: Okabe & Ito (2008) without black (reserved for the baseline), then Paul Tol's "muted" scheme.
HUES = ("#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7",
        "#332288", "#88CCEE", "#44AA99", "#117733", "#999933", "#DDCC77", "#CC6677", "#882255", "#AA4499", "#DDDDDD")
STYLES = ("-", "--", ":", "-.")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def method_styles(methods: Sequence[str], strategies: dict[str, str], losses: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Colour, line style, marker and width per method (hue family = strategy)."""
    families = sorted({strategies.get(m, m) for m in methods} - {"random"})
    hue_of = {s: HUES[i % len(HUES)] for i, s in enumerate(families)}
    out: dict[str, dict[str, Any]] = {}
    within: dict[str, int] = {}
    for m in sorted(methods):
        s = strategies.get(m, m)
        if s == "random" and losses.get(m) == "ce":
            out[m] = {"color": "black", "linestyle": "-", "marker": "o", "linewidth": 2.6, "zorder": 5}
            continue
        i = within.get(s, 0)
        within[s] = i + 1
        family = families.index(s) if s in families else 0
        out[m] = {"color": hue_of.get(s, "#555555"), "linestyle": STYLES[i % len(STYLES)],
                  "marker": MARKERS[(i + family // len(HUES)) % len(MARKERS)], "linewidth": 1.3, "zorder": 3}
    return out


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def _chance(results: list[dict[str, Any]], dataset: str) -> float | None:
    for r in results:
        c = r["cell"]
        if c["dataset"] == dataset and r.get("rounds"):
            k = len(r["rounds"][0].get("acquired_class_histogram", []))
            task_multilabel = "lrap" in r["rounds"][0].get("metrics", {})
            return None if task_multilabel or k < 2 else 1.0 / k
    return None


def _curves(results: list[dict[str, Any]], g: pd.DataFrame, dataset: str, metrics: Sequence[str],
            labels: dict[str, str]) -> bytes:
    methods = sorted(g["method"].unique())
    styles = method_styles(methods, dict(zip(g["method"], g["strategy"], strict=False)),
                           dict(zip(g["method"], g["loss"], strict=False)))
    fig, axes = plt.subplots(1, len(metrics), figsize=(6.2 * len(metrics) + 2.5, 4.6), squeeze=False)
    for metric, ax in zip(metrics, axes[0], strict=True):
        for method in methods:
            agg = g[g["method"] == method].groupby("n_labelled")[metric].agg(["mean", "std"]).reset_index()
            st = styles[method]
            ax.plot(agg["n_labelled"], agg["mean"], markersize=3, label=method, **st)
            ax.fill_between(agg["n_labelled"], agg["mean"] - agg["std"].fillna(0), agg["mean"] + agg["std"].fillna(0),
                            color=st["color"], alpha=0.07)
        if metric == "accuracy":
            chance = _chance(results, dataset)
            if chance is not None:
                ax.axhline(chance, color="grey", linestyle=":", linewidth=1)
                ax.annotate("chance", (ax.get_xlim()[0], chance), fontsize=7, color="grey", va="bottom")
        ax.set_xlabel("labelled samples")
        ax.set_ylabel(labels.get(metric, metric))
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5), ncol=1 + len(methods) // 26)
    fig.suptitle(f"{dataset}: learning curves (mean ± std over seeds; random+ce in black)")
    fig.tight_layout()
    return _png(fig)


def _plane(g: pd.DataFrame, dataset: str, x_key: str, y_key: str, labels: dict[str, str]) -> bytes:
    g = g.sort_values("method").reset_index(drop=True)
    styles = method_styles(list(g["method"]), dict(zip(g["method"], g["strategy"], strict=False)),
                           dict(zip(g["method"], g["loss"], strict=False)))
    fig, ax = plt.subplots(figsize=(9.5, 5.2))
    for i, row in g.iterrows():
        st = styles[row["method"]]
        xe = [[row[f"aulc_{x_key}_mean"] - row[f"aulc_{x_key}_ci_low"]], [row[f"aulc_{x_key}_ci_high"] - row[f"aulc_{x_key}_mean"]]]
        ye = [[row[f"aulc_{y_key}_mean"] - row[f"aulc_{y_key}_ci_low"]], [row[f"aulc_{y_key}_ci_high"] - row[f"aulc_{y_key}_mean"]]]
        xe = [[0 if pd.isna(v[0]) else v[0]] for v in xe]
        ye = [[0 if pd.isna(v[0]) else v[0]] for v in ye]
        ax.errorbar(row[f"aulc_{x_key}_mean"], row[f"aulc_{y_key}_mean"], xerr=xe, yerr=ye, fmt=st["marker"],
                    color=st["color"], markersize=7 if st["color"] == "black" else 5, zorder=st["zorder"],
                    label=f"{i + 1}: {row['method']}")
        ax.annotate(str(i + 1), (row[f"aulc_{x_key}_mean"], row[f"aulc_{y_key}_mean"]), textcoords="offset points",
                    xytext=(4, 4), fontsize=6, color="#333333")
    ax.set_xlabel(f"AULC {labels.get(x_key, x_key)} (mean ± 95 % interval)")
    ax.set_ylabel(f"AULC {labels.get(y_key, y_key)}")
    ax.set_title(f"{dataset}: accuracy vs explanation")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6.5, loc="center left", bbox_to_anchor=(1.02, 0.5), ncol=1 + len(g) // 28)
    fig.tight_layout()
    return _png(fig)


def make_plots(results: list[dict[str, Any]], board: pd.DataFrame, *, keys: Sequence[str],
               info: dict[str, dict[str, Any]] | None = None, plane_y: str = "dice") -> dict[str, bytes]:
    """``{file name: PNG bytes}``: ``curves_<dataset>.png`` and ``plane_<dataset>.png`` per dataset."""
    info = info or {}
    labels = {"accuracy": "test accuracy", "dice": "Dice (explanation vs ROI)", "auc": "AUC"}
    labels.update({k: v["display"] for k, v in info.items()})
    curves = curves_frame(results)
    figures: dict[str, bytes] = {}
    if curves.empty:
        return figures
    for dataset, g in curves.groupby("dataset"):
        metrics = ["accuracy"] + (["dice"] if g["dice"].notna().any() else [])
        figures[f"curves_{slug(str(dataset))}.png"] = _curves(results, g, str(dataset), metrics, labels)
    if board.empty or "aulc_acc_mean" not in board:
        return figures
    y = plane_y if f"aulc_{plane_y}_mean" in board else next((k for k in keys if k != "acc"), None)
    if y is None:
        return figures
    for dataset, g in board.groupby("dataset"):
        if g[f"aulc_{y}_mean"].notna().any():
            figures[f"plane_{slug(str(dataset))}.png"] = _plane(g, str(dataset), "acc", y, labels)
    return figures
