"""Metric definitions: one each, used by the harness and the reporter.

Classification (scikit-learn): accuracy, balanced accuracy, macro one-vs-rest ROC-AUC;
multi-label: macro ROC-AUC, LRAP, ranking loss (and subset/element accuracy), over the known
labels only when the split has a label mask (CheXpert U-Ignore).

Explanation vs ROI, on samples with a non-empty ROI only (``nan`` when there are none,
shown as "n/a" in reports — never 0):

* ``dice_topn`` — the map binarised at its top-N pixels with N = |ROI| (SAL):
  Dice = 2|T∩G| / (|T|+|G|) = |T∩G| / N; ties broken by lower flat index.
* ``soft_dice`` — EG-AL eq. 2: 2Σ(s·m) / (Σs + Σm).
* ``iou`` — IoU of the map thresholded at 0.5 with the ROI (DUE).
* ``pointing_game`` — 1 if the argmax pixel lies inside the ROI.

AULC : trapezoid of the curve over the number of labelled samples from the
first to the last round, divided by that range, so a metric in [0, 1] gives AULC in
[0, 1]; a single point returns its value.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
from sklearn import metrics as skm
from torch import Tensor

from xalbench.utils import overlap

__all__ = [
    "classification_metrics",
    "explanation_metrics",
    "dice_topn",
    "soft_dice",
    "iou_at",
    "pointing_game",
    "aulc",
    "budget_to_fraction",
]


def _nanmean(values: np.ndarray) -> float:
    return float(np.mean(values)) if values.size else float("nan")


def _by_known_columns(labels: np.ndarray, scores: np.ndarray, known: np.ndarray,
                      metric: Callable[[np.ndarray, np.ndarray], float], one_label: float) -> float:
    """A per-sample-averaged scikit-learn ranking metric over each row's known labels only: rows are
    grouped by which labels are known, ``metric`` runs on each group's known columns and the groups
    are averaged weighted by their size (= the mean over rows); rows with no known label are left out.
    A row with one known label has nothing to rank: ``one_label`` (scikit-learn's value for a row whose
    labels are all relevant or all irrelevant; it rejects one-column input)."""
    patterns, inverse = np.unique(known, axis=0, return_inverse=True)
    total, n = 0.0, 0
    for g, cols in enumerate(patterns):
        rows = np.flatnonzero(inverse.reshape(-1) == g)
        if not cols.any():
            continue
        value = one_label if cols.sum() == 1 else metric(labels[np.ix_(rows, cols)], scores[np.ix_(rows, cols)])
        total += value * rows.size
        n += rows.size
    return total / n if n else float("nan")


def _masked_multilabel(scores: np.ndarray, labels: np.ndarray, known: np.ndarray) -> dict[str, float]:
    """Multi-label metrics over known labels only (``known`` ``N×K`` bool; see :func:`classification_metrics`)."""
    labels = labels.astype(int)
    pred = (scores > 0.5).astype(int)
    rows = known.any(1)
    out: dict[str, float] = {}
    exact = ((pred == labels) | ~known).all(1)
    out["accuracy"] = float(exact[rows].mean()) if rows.any() else float("nan")  # subset accuracy, known labels
    out["element_accuracy"] = float((pred == labels)[known].mean()) if known.any() else float("nan")
    aucs, baccs = [], []
    for k in range(labels.shape[1]):
        r = known[:, k]
        y = labels[r, k]
        if r.any():
            baccs.append(skm.balanced_accuracy_score(y, pred[r, k]))
        if 0 < y.sum() < y.size:
            aucs.append(skm.roc_auc_score(y, scores[r, k]))
    out["auc"] = float(np.mean(aucs)) if aucs else float("nan")
    out["lrap"] = _by_known_columns(labels, scores, known, skm.label_ranking_average_precision_score, 1.0)
    out["ranking_loss"] = _by_known_columns(labels, scores, known, skm.label_ranking_loss, 0.0)
    out["balanced_accuracy"] = float(np.mean(baccs)) if baccs else float("nan")
    return out


def classification_metrics(scores: np.ndarray, labels: np.ndarray, task: str,
                           label_mask: np.ndarray | None = None) -> dict[str, float]:
    """``scores`` are probabilities ``N×K``; ``labels`` int ``N`` or binary ``N×K``.

    Multi-label ``label_mask`` (``N×K``, 1 = known; ``None`` = all known) restricts every metric to
    the known labels: per class (macro ROC-AUC over the classes with both outcomes among their known
    rows, balanced accuracy) over the rows where that label is known; per sample (LRAP, ranking loss —
    scikit-learn on each row's known labels —, subset accuracy) over the rows with a known label;
    element accuracy over the known entries. A mask of ones gives the unmasked values.
    """
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels)
    out: dict[str, float] = {}
    if task == "multi-label" and label_mask is not None and not np.all(np.asarray(label_mask) > 0.5):
        return _masked_multilabel(scores, labels, np.asarray(label_mask) > 0.5)
    if task == "multi-label":
        pred = (scores > 0.5).astype(int)
        out["accuracy"] = float(skm.accuracy_score(labels, pred))  # subset accuracy
        out["element_accuracy"] = float((pred == labels).mean())
        valid = [k for k in range(labels.shape[1]) if 0 < labels[:, k].sum() < labels.shape[0]]
        out["auc"] = (float(skm.roc_auc_score(labels[:, valid], scores[:, valid], average="macro"))
                      if valid else float("nan"))
        out["lrap"] = float(skm.label_ranking_average_precision_score(labels, scores))
        out["ranking_loss"] = float(skm.label_ranking_loss(labels, scores))
        out["balanced_accuracy"] = float(np.mean([skm.balanced_accuracy_score(labels[:, k], pred[:, k])
                                                  for k in range(labels.shape[1])]))
        return out
    pred = scores.argmax(1)
    out["accuracy"] = float(skm.accuracy_score(labels, pred))
    out["balanced_accuracy"] = float(skm.balanced_accuracy_score(labels, pred))
    k = scores.shape[1]
    present = np.unique(labels)
    if present.size < 2:
        out["auc"] = float("nan")
    elif k == 2:
        out["auc"] = float(skm.roc_auc_score(labels, scores[:, 1]))
    else:
        probs = scores / np.clip(scores.sum(1, keepdims=True), 1e-12, None)
        if present.size == k:
            out["auc"] = float(skm.roc_auc_score(labels, probs, multi_class="ovr", average="macro"))
        else:  # macro OvR over the classes present in this split
            onehot = np.eye(k)[labels]
            out["auc"] = float(np.mean([skm.roc_auc_score(onehot[:, c], probs[:, c]) for c in present]))
    return out


def _flat(maps: Tensor, roi: Tensor) -> tuple[Tensor, Tensor]:
    return maps.reshape(maps.shape[0], -1).double(), (roi.reshape(roi.shape[0], -1) > 0.5).double()


def dice_topn(maps: Tensor, roi: Tensor) -> Tensor:
    """Per-sample Dice of the top-|ROI| pixels with the ROI (ties → lower flat index)."""
    s, g = _flat(maps, roi)
    n_pix = s.shape[1]
    out = torch.full((s.shape[0],), float("nan"), dtype=torch.float64)
    index = np.arange(n_pix)
    for i in range(s.shape[0]):
        n = int(g[i].sum().item())
        if n == 0:
            continue
        order = np.lexsort((index, -s[i].numpy()))[:n]  # score descending, then index ascending
        hit = g[i][torch.as_tensor(order)].sum().item()
        out[i] = hit / n
    return out


def soft_dice(maps: Tensor, roi: Tensor, eps: float = 1e-8) -> Tensor:
    """Per-sample soft Dice 2Σ(s·m)/(Σs+Σm) (EG-AL eq. 2); ``nan`` for empty ROIs."""
    s, g = _flat(maps, roi)
    dice = overlap.soft_dice(s, g, eps)
    dice[g.sum(1) == 0] = float("nan")
    return dice


def iou_at(maps: Tensor, roi: Tensor, threshold: float = 0.5) -> Tensor:
    s, g = _flat(maps, roi)
    b = (s >= threshold).double()
    inter = (b * g).sum(1)
    union = ((b + g) > 0).double().sum(1)
    out = inter / union.clamp_min(1)
    out[g.sum(1) == 0] = float("nan")
    return out


def pointing_game(maps: Tensor, roi: Tensor) -> Tensor:
    s, g = _flat(maps, roi)
    idx = s.argmax(1)
    hit = g.gather(1, idx[:, None]).squeeze(1)
    hit[g.sum(1) == 0] = float("nan")
    return hit


def explanation_metrics(maps: Tensor, roi: Tensor) -> dict[str, float]:
    """Means over samples with a non-empty ROI; ``nan`` (reported "n/a") if none has one."""
    maps = maps.detach().cpu()
    roi = roi.detach().cpu()
    out = {}
    for name, fn in (("dice", dice_topn), ("soft_dice", soft_dice), ("iou", iou_at), ("pointing", pointing_game)):
        v = fn(maps, roi).numpy()
        out[name] = _nanmean(v[~np.isnan(v)])
    out["n_roi"] = float((roi.reshape(roi.shape[0], -1).amax(1) > 0.5).sum().item())
    return out


def aulc(x: Sequence[float], y: Sequence[float]) -> float:
    """Normalised trapezoid area under ``y(x)`` over [x_first, x_last] (``nan`` if y has nan)."""
    xs = np.asarray(x, dtype=np.float64)
    ys = np.asarray(y, dtype=np.float64)
    if xs.size == 0 or np.isnan(ys).any():
        return float("nan")
    if xs.size == 1 or xs[-1] == xs[0]:
        return float(ys[0])
    return float(np.trapezoid(ys, xs) / (xs[-1] - xs[0]))


def budget_to_fraction(x: Sequence[float], y: Sequence[float], reference: float, fraction: float = 0.95) -> float:
    """First labelled-set size reaching ``fraction × reference`` (linear interpolation); nan = not reached."""
    target = fraction * reference
    xs = list(map(float, x))
    ys = list(map(float, y))
    for i, v in enumerate(ys):
        if v >= target:
            if i == 0:
                return xs[0]
            x0, x1, y0, y1 = xs[i - 1], xs[i], ys[i - 1], ys[i]
            return x0 + (target - y0) * (x1 - x0) / (y1 - y0) if y1 != y0 else x1
    return math.nan
