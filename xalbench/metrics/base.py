"""The metric contract: one registration adds a metric to evaluation, summaries and every report.

A metric is a :class:`Metric` subclass registered through ``register_metrics``. The
harness evaluates every metric that applies to the dataset (task, ROIs, explainer) once
per round on the test split — or once per cell, for ``scope = "cell"`` checks — through
an :class:`Evaluation`, which computes the shared, expensive parts (probabilities,
explanation maps) lazily and once. Metrics with ``aulc = True`` get ``aulc_<key>`` and
``final_<key>`` in every cell summary; the leaderboard gives each the same statistics
(mean ± 95 % interval over seeds, Δ vs ``random+ce``, the paired test).
"""

from __future__ import annotations

import abc
from typing import Any, ClassVar, Literal, Protocol

import numpy as np
import torch

from xalbench.base import Component, ExplainableNet, Explainer, Split, Task

__all__ = ["Evaluation", "Metric", "MetricValue", "Direction", "Scope", "Cost"]

Direction = Literal["max", "min"]
Scope = Literal["round", "cell"]
Cost = Literal["cheap", "moderate", "expensive"]
MetricValue = float


class Evaluation(Protocol):
    """What a metric may read (the test split of one round, computed lazily and once).

    ``probs`` are softmax (multi-class) or sigmoid (multi-label) scores ``N×K`` (float64
    numpy); ``labels`` int ``N`` or binary ``N×K``; ``label_mask`` (multi-label ``N×K``, 1 = known)
    or ``None`` when every label is known. ``roi_pairs()`` gives the explanation
    maps and their ROIs on the samples that have a non-empty ROI (multi-label: one pair per
    positive finding with its own ROI), or ``None`` when the split has no ROI or the suite
    no explainer. ``explain(images, targets)`` runs the suite's evaluation explainer.
    ``seed`` seeds any randomness a metric needs (subsets, perturbations).
    """

    model: ExplainableNet
    split: Split
    task: Task
    num_classes: int
    spatial_dims: int
    explainer: Explainer | None
    target: str
    device: torch.device
    batch_size: int
    seed: int

    @property
    def probs(self) -> np.ndarray: ...

    @property
    def labels(self) -> np.ndarray: ...

    @property
    def label_mask(self) -> np.ndarray | None: ...

    def roi_pairs(self) -> tuple[torch.Tensor, torch.Tensor] | None: ...

    def explain(self, images: torch.Tensor, targets: torch.Tensor | None) -> torch.Tensor: ...

    def cached(self, key: Any, compute: Any) -> Any: ...


class Metric(Component, abc.ABC):
    """One number per round (or per cell) from an :class:`Evaluation`; ``nan`` = not defined.

    Declarations (class attributes):

    * ``key`` — short name used in summaries (``aulc_<key>``, ``final_<key>``); defaults to ``name``;
    * ``display`` — column header; ``fmt`` — format spec of the value (``".3f"``);
    * ``direction`` — ``"max"`` if higher is better, ``"min"`` otherwise;
    * ``aulc`` — whether the learning curve of this metric gets an AULC (and the leaderboard's statistics);
    * ``headline`` — shown in the markdown/HTML leaderboard by default (CSV/JSON carry every AULC);
    * ``task`` — ``"any"``, ``"multi-class"`` or ``"multi-label"``;
    * ``needs_roi`` / ``needs_explainer`` — skipped (not computed) where the data has no ROI / the suite no explainer;
    * ``scope`` — ``"round"`` (every round) or ``"cell"`` (once, with the final model);
    * ``cost`` — ``"cheap"``, ``"moderate"`` or ``"expensive"`` (shown by ``xalbench plugins``);
    * ``default`` — computed by every suite; ``False`` = only when a suite lists it in ``[evaluation] metrics``;
    * ``bounds`` — the range every value must lie in (the leaderboard rejects values outside), or ``None``.
    """

    kind: ClassVar[str] = "metric"
    declarations: ClassVar[tuple[str, ...]] = ("cost", "default", "aulc", "headline", "needs_roi", "needs_explainer")
    key: ClassVar[str] = ""
    display: ClassVar[str] = ""
    fmt: ClassVar[str] = ".3f"
    direction: ClassVar[Direction] = "max"
    aulc: ClassVar[bool] = True
    headline: ClassVar[bool] = False
    task: ClassVar[Literal["any", "multi-class", "multi-label"]] = "any"
    needs_roi: ClassVar[bool] = False
    needs_explainer: ClassVar[bool] = False
    scope: ClassVar[Scope] = "round"
    cost: ClassVar[Cost] = "cheap"
    default: ClassVar[bool] = True
    bounds: ClassVar[tuple[float, float] | None] = (0.0, 1.0)

    @classmethod
    def summary_key(cls) -> str:
        """The key of ``aulc_<key>`` / ``final_<key>`` in cell summaries: ``key``, else ``name``."""
        return cls.key or cls.name

    @classmethod
    def column(cls) -> str:
        """The column header: ``display``, else the summary key."""
        return cls.display or cls.summary_key()

    @classmethod
    def applies(cls, *, task: str, has_roi: bool, has_explainer: bool) -> bool:
        """Whether this metric is defined for a dataset of ``task`` (with/without ROIs, explainer)."""
        if cls.task != "any" and cls.task != task:
            return False
        if cls.needs_roi and not has_roi:
            return False
        return not (cls.needs_explainer and not has_explainer)

    @abc.abstractmethod
    def compute(self, ev: Evaluation) -> float:
        """The metric's value on this evaluation (``nan`` when undefined, e.g. no ROI sample)."""
