"""Metrics against hand-computed values and scikit-learn."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn import metrics as skm

from xalbench.metrics import (
    aulc,
    budget_to_fraction,
    classification_metrics,
    dice_topn,
    explanation_metrics,
    iou_at,
    pointing_game,
    soft_dice,
)


def test_aulc_is_normalised_trapezoid() -> None:
    # (0.5 + 0.7)/2 * 10 + (0.7 + 0.9)/2 * 10 = 6 + 8 = 14 over a range of 20 → 0.7
    assert aulc([10, 20, 30], [0.5, 0.7, 0.9]) == pytest.approx(0.7)
    assert aulc([10, 30, 40], [1, 1, 1]) == pytest.approx(1.0)
    assert aulc([5], [0.4]) == pytest.approx(0.4)
    assert math.isnan(aulc([1, 2], [0.5, float("nan")]))


def test_budget_to_95_interpolates_and_reports_not_reached() -> None:
    assert budget_to_fraction([10, 20], [0.5, 1.0], reference=1.0) == pytest.approx(19.0)
    assert math.isnan(budget_to_fraction([10, 20], [0.5, 0.6], reference=1.0))


def test_dice_topn_by_hand() -> None:
    s = torch.tensor([[[0.9, 0.8], [0.1, 0.0]]])
    g = torch.tensor([[[1.0, 0.0], [1.0, 0.0]]])
    # top-2 pixels = (0,0), (0,1); ROI = (0,0), (1,0); overlap 1 → Dice = 1/2
    assert dice_topn(s, g).item() == pytest.approx(0.5)


def test_dice_topn_breaks_ties_by_index() -> None:
    s = torch.ones(1, 2, 2)
    g = torch.tensor([[[1.0, 0.0], [0.0, 0.0]]])
    assert dice_topn(s, g).item() == pytest.approx(1.0)  # first pixel wins the tie


def test_soft_dice_iou_pointing_by_hand() -> None:
    s = torch.tensor([[[1.0, 0.5], [0.0, 0.0]]])
    g = torch.tensor([[[1.0, 1.0], [0.0, 0.0]]])
    # soft Dice = 2*(1+0.5)/(1.5+2) = 3/3.5
    assert soft_dice(s, g).item() == pytest.approx(3 / 3.5)
    assert iou_at(s, g).item() == pytest.approx(1.0)  # 0.5 ≥ 0.5 → both pixels on
    assert pointing_game(s, g).item() == 1.0


def test_empty_roi_is_nan_not_zero() -> None:
    s = torch.rand(2, 4, 4)
    g = torch.zeros(2, 4, 4)
    out = explanation_metrics(s, g)
    assert math.isnan(out["dice"]) and out["n_roi"] == 0


def test_explanation_metrics_average_only_annotated() -> None:
    s = torch.tensor([[[1.0, 0.0]], [[1.0, 0.0]]])
    g = torch.tensor([[[1.0, 0.0]], [[0.0, 0.0]]])
    assert explanation_metrics(s, g)["dice"] == pytest.approx(1.0)


def test_classification_metrics_match_sklearn() -> None:
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(3), size=50)
    y = rng.integers(0, 3, size=50)
    out = classification_metrics(p, y, "multi-class")
    assert out["accuracy"] == pytest.approx(skm.accuracy_score(y, p.argmax(1)))
    assert out["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, p.argmax(1)))
    assert out["auc"] == pytest.approx(skm.roc_auc_score(y, p, multi_class="ovr", average="macro"))


def test_multilabel_metrics_match_sklearn_doc_example() -> None:
    y = np.array([[1, 0, 0], [0, 0, 1]])
    s = np.array([[0.75, 0.5, 1.0], [1.0, 0.2, 0.1]])
    out = classification_metrics(s, y, "multi-label")
    assert out["lrap"] == pytest.approx(0.41666, abs=1e-4)
    assert out["ranking_loss"] == pytest.approx(0.75)


def _masked_case() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(4)
    y = (rng.random((40, 4)) < 0.4).astype(np.float32)
    y[:4, 0], y[4:8, 0] = 1, 0  # every class has both outcomes among its known rows
    s = rng.random((40, 4))
    known = rng.random((40, 4)) > 0.25
    known[:8, 0] = True
    known[-2:] = False  # two rows with no known label at all
    return s, y, known.astype(np.float32)


def test_multilabel_metrics_with_a_label_mask_use_known_labels_only() -> None:
    """U-Ignore: per class over the rows where the label is known (AUC, balanced accuracy), per sample
    over each row's known labels (LRAP, ranking loss: scikit-learn on that row), rows without a known
    label left out; the hidden labels and their scores cannot move any value."""
    s, y, mask = _masked_case()
    known = mask > 0.5
    out = classification_metrics(s, y, "multi-label", mask)
    aucs = [skm.roc_auc_score(y[known[:, k], k], s[known[:, k], k]) for k in range(4)]
    assert out["auc"] == pytest.approx(np.mean(aucs))
    rows = [i for i in range(40) if known[i].any()]

    def row(metric, i: int, one_label: float) -> float:  # one known label: nothing to rank
        return one_label if known[i].sum() == 1 else metric(y[i:i + 1, known[i]], s[i:i + 1, known[i]])

    assert any(known[i].sum() == 1 for i in rows)
    lrap = [row(skm.label_ranking_average_precision_score, i, 1.0) for i in rows]
    rloss = [row(skm.label_ranking_loss, i, 0.0) for i in rows]
    assert out["lrap"] == pytest.approx(np.mean(lrap)) and out["ranking_loss"] == pytest.approx(np.mean(rloss))
    pred = s > 0.5
    assert out["element_accuracy"] == pytest.approx((pred == y)[known].mean())
    assert out["accuracy"] == pytest.approx(np.mean([(pred[i] == y[i])[known[i]].all() for i in rows]))
    flipped_y, flipped_s = y.copy(), s.copy()
    flipped_y[~known], flipped_s[~known] = 1 - y[~known], 1 - s[~known]
    assert classification_metrics(flipped_s, flipped_y, "multi-label", mask) == pytest.approx(out)
    assert classification_metrics(s, y, "multi-label", np.ones_like(mask)) == classification_metrics(s, y, "multi-label")
