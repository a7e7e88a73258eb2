"""The built-in ``standard`` trainer: one model, the method's loss, retrained each round."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np
import torch

from xalbench.base import RoundInfo
from xalbench.suite import TrainingSpec
from xalbench.training.base import TrainedModels, Trainer, TrainJob
from xalbench.training.epochs import train_round

__all__ = ["StandardTrainer", "fit_one", "round_training"]


def round_training(job: TrainJob, continued: bool) -> TrainingSpec:
    """The round's training settings: ``training.warm_epochs`` epochs (when set) for a model that
    continues the previous round's under warm start, else ``training.epochs``."""
    spec = job.training
    if continued and spec.warm_epochs:
        return dataclasses.replace(spec, epochs=spec.warm_epochs)
    return spec


def fit_one(job: TrainJob, loss: object, model: torch.nn.Module, *, stream: str = "",
            continued: bool = False) -> dict[str, float]:
    """Train ``model`` with ``loss`` on ``job.data`` for one round (deterministic in the round's seeds).

    ``stream`` separates the seeds of several models trained in one round (``""`` = the
    cell's main stream, so the standard trainer is bitwise what the harness always did);
    ``continued``: ``model`` carries the previous round's weights (warm start; see :func:`round_training`)."""
    info = RoundInfo(job.round_index, len(job.index), len(job.index) / job.n_pool, job.cell_seed, job.task,
                     job.num_classes, job.spatial_dims, labelled=job.data, index=job.index)
    loss.on_round_start(info)  # type: ignore[attr-defined]
    extra = (stream,) if stream else ()
    gen = torch.Generator().manual_seed(job.derive("train", *extra) % (2**63))
    torch.manual_seed(job.derive("global", *extra) % (2**63))  # dropout etc.: resume-safe
    n = len(job.index)
    return train_round(model, loss, job.data, np.arange(n, dtype=np.int64), np.ones(n, dtype=bool),  # type: ignore[arg-type]
                       round_training(job, continued), job.task, gen, job.device)


class StandardTrainer(Trainer):
    """Retrain the cell's model from its initial weights each round with the method's loss
    (``training.warm_start = true``: continue from the previous round's weights instead, for
    ``training.warm_epochs`` epochs when set)."""

    name: ClassVar[str] = "standard"
    summary: ClassVar[str] = "One model, the method's loss, retrained from the initial weights each round"
    #: round 0 depends only on (dataset, seed, loss, model, training): the harness trains it once per run
    shares_round0: ClassVar[bool] = True

    def fit(self, job: TrainJob) -> TrainedModels:
        warm = job.training.warm_start and job.previous is not None
        model = job.previous.main if warm else job.new_model()  # type: ignore[union-attr]
        terms = fit_one(job, job.loss, model, continued=warm)
        return TrainedModels(main=model, terms=terms)
