"""Rebuild a round of a finished cell (e.g. for figures): retrain its model from the recorded
labelled set with the harness's own seeds, through the one round loop, and return the strategy
context it queried from — built by the strategy side's own builder
(:func:`~xalbench.sandbox.context.build_context`, through an in-process querier), so a replayed
round shows exactly what the strategy saw."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

import xalbench.seeding as seeding
from xalbench.errors import ConfigError, UnsupportedError
from xalbench.harness.identity import CellSpec
from xalbench.harness.loop import StartAt, run_rounds
from xalbench.harness.runtime import Runtime, for_selection
from xalbench.harness.state import CellRun
from xalbench.sandbox.context import StrategyContext

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
    run = CellRun(spec, runtime.dataset(spec.dataset, spec.data_root), runtime.registry, with_metrics=False)
    labelled = np.asarray(result["initial_labelled"] + [i for r in rounds[:round_index] for i in r["queried"]],
                          dtype=np.int64)
    run_rounds(run, None, StartAt(rounds[:round_index], labelled), stop_after=round_index)
    querier = run.querier("inline")
    try:
        k = min(run.k, len(run.bundle.train) - len(labelled))
        return run, querier.context(run.request(round_index, labelled, k))
    finally:
        querier.close()
