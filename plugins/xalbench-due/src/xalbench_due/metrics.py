"""DUE's evaluation metrics (Table 1), registered through ``register_metrics``.

Explanation vs ROI — on the evaluation's ROI samples (``Evaluation.roi_pairs()``, the maps the
core metrics use, computed once per round and shared), per sample then averaged:

* ``due_exp_roc_auc`` / ``due_exp_pr_auc`` — voxel-level ROC-AUC and average precision of the
  map against the ROI (scikit-learn; samples whose ROI fills the whole volume are skipped);
* ``due_exp_precision`` / ``due_exp_recall`` / ``due_exp_f1`` — of the map binarised at 0.5
  (``≥``, as the core ``iou``, which DUE's IoU is and is not duplicated here);
* ``due_exp_precision_coded`` / ``due_exp_f1_coded`` — **DUE's public code**: its
  ``compute_exp_score`` counts false positives only where the mask is ``< 0``, which never
  happens with 0/1 masks, so precision is 1 whenever the binarised map overlaps the ROI (0
  otherwise) — the ≈100 % precision of Table 1. Reported, labelled, next to the correct one.

Classification: ``due_pr_auc`` — the paper's PR-AUC (average precision; binary: of the positive
class; multi-class: macro one-vs-rest; multi-label: macro over labels). Not a default (the core
has ROC-AUC); the DUE suites list it in ``[evaluation] metrics``.
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
import torch
from sklearn import metrics as skm

from xalbench.metrics.base import Evaluation, Metric

__all__ = ["explanation_scores", "pr_auc", "DUE_METRICS"]

_PAPER = "Zhao et al., DUE (Table 1: ROC-AUC, PR-AUC, IoU, precision, recall, F1 of explanations)"


def _roc_auc(score: np.ndarray, positive: np.ndarray) -> float:
    """ROC-AUC = the Mann–Whitney U statistic with average ranks for ties (equals scikit-learn's)."""
    from scipy.stats import rankdata

    ranks = rankdata(score)
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _average_precision(score: np.ndarray, positive: np.ndarray) -> float:
    """Average precision Σ (R_n − R_{n−1}) P_n over the distinct score thresholds (equals scikit-learn's)."""
    order = np.argsort(-score, kind="mergesort")
    s, y = score[order], positive[order]
    last = np.r_[np.flatnonzero(np.diff(s) != 0), s.size - 1]  # last index of each tie group
    tp = np.cumsum(y)[last]
    fp = (last + 1) - tp
    precision = tp / (tp + fp)
    recall = tp / max(int(y.sum()), 1)
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def explanation_scores(maps: torch.Tensor, roi: torch.Tensor, threshold: float = 0.5) -> dict[str, float]:
    """Means over samples with a non-empty ROI of DUE's explanation scores (``nan`` if none).

    ROC-AUC and average precision are computed in closed form per sample (rank statistic, tie
    groups), equal to scikit-learn's ``roc_auc_score`` / ``average_precision_score`` (tested) and
    about a hundred times faster on volumes."""
    s = maps.detach().cpu().reshape(maps.shape[0], -1).double().numpy()
    g = (roi.detach().cpu().reshape(roi.shape[0], -1) > 0.5).numpy()
    keys = ("roc_auc", "pr_auc", "precision", "recall", "f1", "precision_coded", "f1_coded")
    acc: dict[str, list[float]] = {k: [] for k in keys}
    for si, gi in zip(s, g, strict=True):
        n_pos = int(gi.sum())
        if n_pos == 0:
            continue
        if n_pos < gi.size:
            acc["roc_auc"].append(_roc_auc(si, gi))
            acc["pr_auc"].append(_average_precision(si, gi))
        b = si >= threshold
        tp = int((b & gi).sum())
        fp = int((b & ~gi).sum())
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / n_pos
        coded = 1.0 if tp > 0 else 0.0  # false positives counted where mask < 0: never with 0/1 masks
        acc["precision"].append(precision)
        acc["recall"].append(recall)
        acc["f1"].append(2 * precision * recall / (precision + recall) if precision + recall else 0.0)
        acc["precision_coded"].append(coded)
        acc["f1_coded"].append(2 * coded * recall / (coded + recall) if coded + recall else 0.0)
    return {k: (float(np.mean(v)) if v else math.nan) for k, v in acc.items()}


def pr_auc(probs: np.ndarray, labels: np.ndarray, task: str, label_mask: np.ndarray | None = None) -> float:
    """Average precision (binary: positive class; multi-class: macro OvR; multi-label: macro over the
    classes with both outcomes, each over the rows where its label is known when ``label_mask`` is given)."""
    probs, labels = np.asarray(probs, dtype=np.float64), np.asarray(labels)
    if task == "multi-label":
        known = np.ones(labels.shape, bool) if label_mask is None else np.asarray(label_mask) > 0.5
        cols = [(labels[known[:, k], k], probs[known[:, k], k]) for k in range(labels.shape[1])]
        scores = [skm.average_precision_score(y, p) for y, p in cols if 0 < y.sum() < y.size]
        return float(np.mean(scores)) if scores else math.nan
    present = np.unique(labels)
    if present.size < 2:
        return math.nan
    if probs.shape[1] == 2:
        return float(skm.average_precision_score(labels == 1, probs[:, 1]))
    return float(np.mean([skm.average_precision_score(labels == c, probs[:, c]) for c in present]))


def _shared(ev: Evaluation) -> dict[str, float]:
    def compute() -> dict[str, float]:
        pairs = ev.roi_pairs()
        return {} if pairs is None else explanation_scores(*pairs)

    return ev.cached("due-explanation", compute)


class _DUEExplanation(Metric):
    field: ClassVar[str] = ""
    needs_roi: ClassVar[bool] = True
    needs_explainer: ClassVar[bool] = True
    paper: ClassVar[str] = _PAPER
    default: ClassVar[bool] = False  # DUE's suites list them in [evaluation] metrics

    def compute(self, ev: Evaluation) -> float:
        return _shared(ev).get(self.field, math.nan)


class ExplanationROCAUC(_DUEExplanation):
    """Voxel-level ROC-AUC of the explanation map against the ROI (mean over ROI samples)."""

    name = "due_exp_roc_auc"
    key = "due_exp_auc"
    display = "exp_ROC-AUC"
    summary = "Explanation ROC-AUC: voxel-level ROC-AUC of the map against the ROI (DUE)"
    field = "roc_auc"


class ExplanationPRAUC(_DUEExplanation):
    """Voxel-level average precision of the explanation map against the ROI."""

    name = "due_exp_pr_auc"
    key = "due_exp_ap"
    display = "exp_PR-AUC"
    summary = "Explanation PR-AUC: voxel-level average precision of the map against the ROI (DUE)"
    field = "pr_auc"


class ExplanationPrecision(_DUEExplanation):
    """Precision of the map binarised at 0.5 (correct: false positives anywhere outside the ROI)."""

    name = "due_exp_precision"
    key = "due_prec"
    display = "exp_precision"
    summary = "Explanation precision at 0.5 (correct definition)"
    field = "precision"


class ExplanationRecall(_DUEExplanation):
    """Recall of the map binarised at 0.5."""

    name = "due_exp_recall"
    key = "due_rec"
    display = "exp_recall"
    summary = "Explanation recall at 0.5"
    field = "recall"


class ExplanationF1(_DUEExplanation):
    """F1 of the map binarised at 0.5 (correct precision)."""

    name = "due_exp_f1"
    key = "due_f1"
    display = "exp_F1"
    summary = "Explanation F1 at 0.5 (correct precision)"
    field = "f1"


class ExplanationPrecisionCoded(_DUEExplanation):
    """DUE's public-code precision: 1 whenever the binarised map overlaps the ROI."""

    name = "due_exp_precision_coded"
    key = "due_prec_coded"
    display = "exp_precision(DUE code)"
    summary = "Explanation precision as DUE's public code computes it (1 whenever there is any overlap)"
    field = "precision_coded"


class ExplanationF1Coded(_DUEExplanation):
    """F1 with DUE's public-code precision."""

    name = "due_exp_f1_coded"
    key = "due_f1_coded"
    display = "exp_F1(DUE code)"
    summary = "Explanation F1 with DUE's public-code precision"
    field = "f1_coded"


class ClassificationPRAUC(Metric):
    """The paper's PR-AUC of the classifier (average precision)."""

    name = "due_pr_auc"
    key = "pr_auc"
    display = "PR-AUC"
    summary = "Classification PR-AUC (average precision; macro one-vs-rest for multi-class)"
    paper = _PAPER
    default = False

    def compute(self, ev: Evaluation) -> float:
        return ev.cached("due-pr-auc", lambda: pr_auc(ev.probs, ev.labels, ev.task, ev.label_mask))


DUE_METRICS: tuple[type[Metric], ...] = (
    ExplanationROCAUC, ExplanationPRAUC, ExplanationPrecision, ExplanationRecall, ExplanationF1,
    ExplanationPrecisionCoded, ExplanationF1Coded, ClassificationPRAUC,
)
