"""Contracts for how a round's model(s) are trained and where masks come from.

* :class:`Trainer` — trains the round's model(s) on the labelled set and says which model is
  evaluated and queried (``TrainedModels.main``); auxiliary models (e.g. SAL's M_interp)
  go in ``TrainedModels.extra``. The built-in ``standard`` trainer retrains one model from
  the cell's initial weights with the method's loss (warm start optional).
* :class:`MaskSource` — where the masks of newly labelled samples come from once the
  protocol's human-mask budget is spent: ``none`` (no mask, the default), ``human`` (the
  expert's mask regardless of the budget) or a model's CAM (``model-cam``).

Both are registered components (``register_trainers``, ``register_mask_sources``) named per
method in a suite (``[[methods]] trainer = "..." mask_source = "..."``). They run in the
harness's process and see only the labelled set (with the masks the method may use).
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor

from xalbench.base import Component, ExplainableNet, Explainer, Loss, Split, Task

__all__ = ["MaskRequest", "MaskSource", "TrainJob", "TrainedModels", "Trainer"]


@dataclasses.dataclass
class TrainedModels:
    """The outcome of one round's training: ``main`` is evaluated and queried."""

    main: ExplainableNet
    extra: dict[str, ExplainableNet] = dataclasses.field(default_factory=dict)
    terms: dict[str, float] = dataclasses.field(default_factory=dict)

    def get(self, which: str) -> ExplainableNet:
        """``"main"`` or the name of an extra model (one-line error listing the available ones)."""
        if which == "main":
            return self.main
        if which not in self.extra:
            from xalbench.errors import ConfigError

            raise ConfigError(f"the trainer produced no model {which!r}; available: main, {', '.join(self.extra)}")
        return self.extra[which]


@dataclasses.dataclass
class TrainJob:
    """What a trainer may use in round ``round_index``.

    ``data`` is the labelled set in acquisition order with only the masks the method may use
    (human masks within the budget, generated masks beyond it); ``index`` its pool indices.
    ``new_model()`` returns the cell's model at its initial weights (the same for every method
    of a (dataset, seed) pair); ``derive(purpose)`` gives the deterministic seed of a named
    purpose in this round; ``create(kind, name, options)`` builds a registered component (e.g.
    a second loss); ``previous`` is last round's outcome (warm start, frozen generators).
    """

    round_index: int
    data: Split
    index: np.ndarray
    n_pool: int
    cell_seed: int
    task: Task
    num_classes: int
    spatial_dims: int
    training: Any  # xalbench.suite.TrainingSpec
    device: torch.device
    loss: Loss
    new_model: Callable[[], ExplainableNet]
    derive: Callable[..., int]
    create: Callable[[str, str, dict[str, Any] | None], Any]
    previous: TrainedModels | None = None
    mask_limit: int | None = None  #: how many labelled samples (acquisition order) carry human masks

    @property
    def past_change_point(self) -> bool:
        """True once the labelled set outgrew the human-mask budget (SAL's change point C)."""
        return self.mask_limit is not None and len(self.index) > self.mask_limit


class Trainer(Component, abc.ABC):
    """Trains a round's model(s); see :class:`TrainJob` for what it may use.

    ``shares_round0 = True`` declares that round 0 depends only on the data, seed, loss, model
    and training (the harness then trains it once per run and shares it between strategies);
    ``keeps_state = True`` that ``TrainedModels.extra`` carries state into later rounds (the
    harness checkpoints those models so a resumed cell sees the same ``previous``)."""

    kind: ClassVar[str] = "trainer"
    declarations: ClassVar[tuple[str, ...]] = ("shares_round0", "keeps_state")
    shares_round0: ClassVar[bool] = False
    keeps_state: ClassVar[bool] = False

    @abc.abstractmethod
    def fit(self, job: TrainJob) -> TrainedModels:
        """Train on ``job.data`` and return the models (``main`` is evaluated and queried)."""


@dataclasses.dataclass
class MaskRequest:
    """Newly labelled samples beyond the human-mask budget, for which a mask source may make masks.

    ``labels`` are the labels the oracle just revealed; ``models`` the round's trained models
    (the round in which these samples were queried); ``explainer`` the suite's evaluation
    explainer (build another with ``create``).
    """

    round_index: int
    index: np.ndarray
    images: Tensor
    labels: Tensor
    models: TrainedModels
    explainer: Explainer | None
    task: Task
    spatial_dims: int
    device: torch.device
    create: Callable[[str, str, dict[str, Any] | None], Any]


class MaskSource(Component, abc.ABC):
    """Where masks of samples labelled beyond the human-mask budget come from.

    ``ignores_budget = True`` means every labelled sample gets its human mask (the budget is
    not applied); otherwise :meth:`generate` is called for samples beyond it and returns
    masks ``N×(D×)H×W`` in {0, 1} (or ``None`` = no masks)."""

    kind: ClassVar[str] = "mask_source"
    declarations: ClassVar[tuple[str, ...]] = ("ignores_budget", "supports_multilabel")
    ignores_budget: ClassVar[bool] = False
    supports_multilabel: ClassVar[bool] = True

    def human_budget(self) -> int | float | None:
        """This method's human-mask budget (count or fraction of the pool) overriding the
        protocol's ``mask_budget``, or ``None`` to use the protocol's."""
        return None

    @abc.abstractmethod
    def generate(self, request: MaskRequest) -> Tensor | None:
        """Masks for ``request.index`` (rows aligned), or ``None``."""
