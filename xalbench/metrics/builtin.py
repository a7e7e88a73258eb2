"""The built-in metrics, registered through ``register_metrics`` like a third party's.

Classification metrics come from one scikit-learn pass (:func:`classification_metrics`) and
explanation-vs-ROI metrics from one pass over the ROI samples (:func:`explanation_metrics`),
both shared through :meth:`Evaluation.cached`; each registered metric picks its value.
"""

from __future__ import annotations

from typing import Any, ClassVar

from xalbench.metrics.base import Evaluation, Metric
from xalbench.metrics.functions import classification_metrics, explanation_metrics

__all__ = ["BUILTIN_METRICS"]

_SKLEARN = "scikit-learn (sklearn.metrics)"


def _classification(ev: Evaluation) -> dict[str, float]:
    return ev.cached("classification", lambda: classification_metrics(ev.probs, ev.labels, ev.task, ev.label_mask))


def _explanation(ev: Evaluation) -> dict[str, float]:
    def compute() -> dict[str, float]:
        pairs = ev.roi_pairs()
        if pairs is None:
            return {}
        return explanation_metrics(*pairs)

    return ev.cached("explanation", compute)


class _Classification(Metric):
    field: ClassVar[str] = ""

    def compute(self, ev: Evaluation) -> float:
        return _classification(ev).get(self.field, float("nan"))


class _Explanation(Metric):
    field: ClassVar[str] = ""
    needs_roi: ClassVar[bool] = True
    needs_explainer: ClassVar[bool] = True

    def compute(self, ev: Evaluation) -> float:
        return _explanation(ev).get(self.field, float("nan"))


def _metric(base: type[Metric], name: str, field: str, summary: str, **attrs: Any) -> type[Metric]:
    cls_name = "".join(part.capitalize() for part in name.replace("-", "_").split("_")) + "Metric"
    return type(cls_name, (base,), {"name": name, "field": field, "summary": summary, "__module__": __name__,
                                    "__doc__": summary, **attrs})


BUILTIN_METRICS: tuple[type[Metric], ...] = (
    _metric(_Classification, "accuracy", "accuracy",
            "Test accuracy (multi-label: subset accuracy)", key="acc", display="acc", headline=True,
            paper=_SKLEARN),
    _metric(_Classification, "balanced_accuracy", "balanced_accuracy",
            "Balanced accuracy (multi-label: mean over labels)", key="bacc", display="bal_acc", paper=_SKLEARN),
    _metric(_Classification, "auc", "auc",
            "Macro one-vs-rest ROC-AUC (multi-label: macro over labels with both outcomes)", display="AUC",
            paper=_SKLEARN),
    _metric(_Classification, "element_accuracy", "element_accuracy",
            "Multi-label element-wise accuracy", key="eacc", display="elem_acc", task="multi-label", aulc=False,
            paper=_SKLEARN),
    _metric(_Classification, "lrap", "lrap",
            "Label ranking average precision (multi-label)", display="LRAP", task="multi-label", paper=_SKLEARN),
    _metric(_Classification, "ranking_loss", "ranking_loss",
            "Label ranking loss (multi-label; lower is better)", key="rloss", display="rank_loss",
            task="multi-label", direction="min", paper=_SKLEARN),
    _metric(_Explanation, "dice", "dice",
            "Dice of the explanation's top-N pixels (N = |ROI|) with the ROI", display="dice", headline=True,
            paper="Boyd et al., SAL (top-N binarisation)"),
    _metric(_Explanation, "soft_dice", "soft_dice",
            "Soft Dice 2Σ(s·m)/(Σs+Σm) of the explanation with the ROI", key="sdice", display="soft_Dice",
            paper="Uddin et al., EG-AL eq. 2"),
    _metric(_Explanation, "iou", "iou",
            "IoU of the explanation thresholded at 0.5 with the ROI", display="IoU",
            paper="Zhao et al., DUE (IoU at 0.5)"),
    _metric(_Explanation, "pointing", "pointing",
            "Pointing game: the explanation's maximum lies inside the ROI", key="point", display="pointing",
            paper="Zhang et al., Top-down neural attention by excitation backprop (2016)"),
)
