"""DUE's metrics: correct vs coded precision, voxel-level AUCs, the registered Metric contract."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch
from sklearn import metrics as skm
from xalbench_due.metrics import DUE_METRICS, ClassificationPRAUC, ExplanationPrecisionCoded, explanation_scores, pr_auc

from xalbench.metrics.base import Metric


def _pair():
    roi = torch.zeros(2, 4, 4, 4)
    roi[:, 1:3, 1:3, 1:3] = 1.0
    return roi


def test_coded_precision_is_one_whenever_there_is_any_overlap():
    roi = _pair()
    everywhere = torch.ones_like(roi)  # every voxel ≥ 0.5: 8 true positives, 56 false positives
    s = explanation_scores(everywhere, roi)
    assert s["precision"] == pytest.approx(8 / 64) and s["recall"] == 1.0
    assert s["precision_coded"] == 1.0
    assert s["f1"] == pytest.approx(2 * (8 / 64) / (8 / 64 + 1)) and s["f1_coded"] == 1.0
    outside = 1.0 - roi  # no overlap: both precisions are 0
    z = explanation_scores(outside, roi)
    assert z["precision"] == 0.0 and z["precision_coded"] == 0.0 and z["recall"] == 0.0


def test_voxel_level_aucs_by_hand():
    roi = _pair()
    perfect = roi * 0.9 + 0.05
    s = explanation_scores(perfect, roi)
    assert s["roc_auc"] == 1.0 and s["pr_auc"] == 1.0
    inverted = explanation_scores(1 - perfect, roi)
    assert inverted["roc_auc"] == 0.0
    assert math.isnan(explanation_scores(perfect, torch.zeros_like(roi))["roc_auc"])  # no ROI sample: nan, not 0


def test_classification_pr_auc():
    labels = np.array([0, 0, 1, 1])
    probs = np.array([[0.9, 0.1], [0.6, 0.4], [0.65, 0.35], [0.2, 0.8]])
    assert pr_auc(probs, labels, "multi-class") == pytest.approx((1 / 1 + 2 / 3) / 2)
    assert math.isnan(pr_auc(probs, np.zeros(4, dtype=int), "multi-class"))


def test_multilabel_pr_auc_over_known_labels_only():
    labels = np.array([[1, 0], [0, 1], [1, 1], [0, 0]])
    probs = np.array([[0.9, 0.2], [0.1, 0.8], [0.2, 0.3], [0.8, 0.1]])
    mask = np.array([[1, 1], [1, 1], [0, 1], [0, 1]])  # class 0 known on rows 0 and 1 only
    class0 = skm.average_precision_score([1, 0], [0.9, 0.1])
    class1 = skm.average_precision_score(labels[:, 1], probs[:, 1])
    assert pr_auc(probs, labels, "multi-label", mask) == pytest.approx((class0 + class1) / 2)
    assert pr_auc(probs, labels, "multi-label") != pytest.approx((class0 + class1) / 2)


class FakeEvaluation:
    def __init__(self, maps: torch.Tensor, roi: torch.Tensor) -> None:
        self._pairs, self._cache = (maps, roi), {}
        self.calls = 0
        self.task = "multi-class"
        self.probs = np.array([[0.9, 0.1], [0.2, 0.8]])
        self.labels = np.array([0, 1])
        self.label_mask = None

    def roi_pairs(self):
        self.calls += 1
        return self._pairs

    def cached(self, key: Any, compute: Any) -> Any:
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]


def test_registered_metrics_share_one_pass_and_have_distinct_keys():
    roi = _pair()
    ev = FakeEvaluation(torch.ones_like(roi), roi)
    values = {cls.name: cls().compute(ev) for cls in DUE_METRICS}
    assert ev.calls == 1  # one shared pass over the maps
    assert values["due_exp_precision_coded"] == 1.0 and values["due_exp_precision"] == pytest.approx(8 / 64)
    assert values["due_pr_auc"] == 1.0
    keys = [cls.summary_key() for cls in DUE_METRICS]
    core = {"acc", "bacc", "auc", "dice", "sdice", "iou", "point", "eacc", "lrap", "rloss"}
    assert len(set(keys)) == len(keys) and not set(keys) & core
    assert all(issubclass(c, Metric) for c in DUE_METRICS)
    assert ExplanationPrecisionCoded.needs_roi and ExplanationPrecisionCoded.needs_explainer
    assert not ClassificationPRAUC.default and ClassificationPRAUC.applies(task="multi-label", has_roi=False,
                                                                           has_explainer=False)
