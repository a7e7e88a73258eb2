"""Warm start: round 0 trains ``training.epochs`` from the initial weights; a later round continues the
previous round's model for ``training.warm_epochs`` epochs (0 = ``epochs``); cold rounds start again."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from xalbench.data.common import split_rng, to_split
from xalbench.errors import ConfigError
from xalbench.losses.ce import CrossEntropyLoss
from xalbench.models.small_cnn import SmallCNN
from xalbench.suite import TrainingSpec, parse_suite
from xalbench.training.base import TrainedModels, TrainJob
from xalbench.training.standard import StandardTrainer


class _Counting(CrossEntropyLoss):
    """Cross-entropy that counts its optimiser steps."""

    def __init__(self) -> None:
        super().__init__()
        self.steps = 0

    def __call__(self, model, batch):  # type: ignore[no-untyped-def]
        self.steps += 1
        return super().__call__(model, batch)


def _job(training: TrainingSpec, round_index: int, previous: TrainedModels | None, loss: _Counting) -> TrainJob:
    rng = split_rng(0, "train")
    data = to_split(rng.random((32, 1, 8, 8), dtype=np.float32), rng.integers(0, 2, 32))

    def new_model() -> torch.nn.Module:
        torch.manual_seed(0)
        return SmallCNN({"width": 2, "n_blocks": 2}).build(1, 2, 2)

    return TrainJob(round_index=round_index, data=data, index=np.arange(32), n_pool=64, cell_seed=0,
                    task="multi-class", num_classes=2, spatial_dims=2, training=training, device=torch.device("cpu"),
                    loss=loss, new_model=new_model, derive=lambda *p: 7, create=lambda *a: None, previous=previous)


@pytest.mark.parametrize(("warm_start", "warm_epochs", "steps_round1", "continues"),
                         [(True, 2, 4, True), (True, 0, 10, True), (False, 2, 10, False)])
def test_a_warm_round_continues_for_warm_epochs(warm_start: bool, warm_epochs: int, steps_round1: int,
                                                continues: bool) -> None:
    training = dataclasses.replace(TrainingSpec(), epochs=5, batch_size=16, warm_start=warm_start,
                                   warm_epochs=warm_epochs, recalibrate_bn=False)
    trainer, loss = StandardTrainer(), _Counting()
    first = trainer.fit(_job(training, 0, None, loss))
    assert loss.steps == 5 * 2  # round 0: `epochs` epochs of 2 batches, from the initial weights
    loss.steps = 0
    second = trainer.fit(_job(training, 1, first, loss))
    assert loss.steps == steps_round1
    assert (second.main is first.main) == continues


def test_warm_epochs_is_checked_with_the_suite() -> None:
    text = 'name = "s"\n[training]\nwarm_start = true\nwarm_epochs = {}\n[[datasets]]\nname = "synth-lesion-2d"\n' \
           '[[methods]]\nstrategy = "random"\nloss = "ce"\n'
    assert parse_suite(text.format(3), where="s.toml").training.warm_epochs == 3
    with pytest.raises(ConfigError, match="training.warm_epochs"):
        parse_suite(text.format(-1), where="s.toml")
