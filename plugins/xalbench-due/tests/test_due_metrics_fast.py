"""DUE's per-sample explanation ROC-AUC and average precision equal scikit-learn's, ties included."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm
from xalbench_due.metrics import _average_precision, _roc_auc


@pytest.mark.parametrize("seed", range(6))
def test_closed_forms_equal_scikit_learn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 500
    positive = rng.random(n) < rng.uniform(0.05, 0.5)
    score = rng.random(n)
    if seed % 2:  # heavy ties, as thresholded or low-resolution maps have
        score = np.round(score * 7) / 7
    assert _roc_auc(score, positive) == pytest.approx(skm.roc_auc_score(positive, score), abs=1e-12)
    assert _average_precision(score, positive) == pytest.approx(skm.average_precision_score(positive, score), abs=1e-12)
