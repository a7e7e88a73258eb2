"""Rebuild a round of a finished cell (e.g. for figures): retrain its model from the recorded
labelled set with the harness's own seeds and return the strategy context it queried from."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from xalbench.errors import ConfigError, UnsupportedError
from xalbench.harness import seeding
from xalbench.harness.context import StrategyContext
from xalbench.harness.identity import CellSpec
from xalbench.harness.runtime import Runtime, for_selection
from xalbench.harness.state import CellRun

__all__ = ["replay_round"]


def replay_round(spec: CellSpec, result: dict[str, Any], round_index: int,
                 runtime: Runtime | None = None) -> tuple[CellRun, StrategyContext]:
    """Round ``round_index`` of a finished cell, rebuilt in this process (warm-start suites cannot be
    replayed round by round)."""
    if spec.suite.training.warm_start:
        raise UnsupportedError("replaying a warm-started cell needs every earlier round; use warm_start = false")
    rounds = result["rounds"]
    if not 0 <= round_index < len(rounds):
        raise ConfigError(f"round {round_index} does not exist; the cell has rounds 0..{len(rounds) - 1}")
    seeding.configure_determinism(spec.threads, torch.device(spec.device))
    runtime = runtime if runtime is not None else for_selection(spec.selection)
    run = CellRun(spec, runtime.dataset(spec.dataset, spec.data_root), runtime.registry)
    labelled = np.asarray(result["initial_labelled"] + [i for r in rounds[:round_index] for i in r["queried"]],
                          dtype=np.int64)
    run.train(round_index, labelled)
    return run, run.context(round_index, labelled)
