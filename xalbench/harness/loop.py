"""The round loop of one cell, top to bottom — the only one: cells, tuning trials and replays run it.

For each round ``r = 0 .. R``: train (the method's trainer, from the same initial weights
unless warm start), evaluate the cell's metrics on the test split, ask the strategy — through
its querier (sandbox process or in-process twin) — for ``k`` pool indices, reveal their labels
(and masks: human within the protocol's budget, else from the method's mask source), hand the
progress to the cell's :class:`RoundStore`. Every round's randomness is derived from (seed,
round), so resuming from a checkpoint reproduces an uninterrupted run bit for bit.

Where progress goes is the store's business: :class:`~xalbench.harness.cellfiles.CellFiles`
checkpoints a cell to its files; a tuning trial keeps nothing (:class:`NoStore`); a replay
starts at a recorded round (:class:`StartAt`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from xalbench.harness.evaluation import evaluate
from xalbench.harness.state import CellRun
from xalbench.harness.summary import class_histogram, summarise
from xalbench.sandbox import Querier

__all__ = ["NoStore", "RoundStore", "StartAt", "run_rounds"]


class RoundStore(Protocol):
    """Where a cell's progress is kept between rounds."""

    def resume(self, run: CellRun) -> tuple[list[dict[str, Any]], np.ndarray] | None:
        """The rounds already done and the labelled set after them (restoring the run's models and
        masks), or ``None`` to start from round 0."""

    def checkpoint(self, run: CellRun, rounds: list[dict[str, Any]], labelled: np.ndarray) -> None:
        """Keep the progress after a round."""


class NoStore:
    """Keeps nothing: start at round 0, checkpoint nowhere (tuning trials)."""

    def resume(self, run: CellRun) -> None:
        return None

    def checkpoint(self, run: CellRun, rounds: list[dict[str, Any]], labelled: np.ndarray) -> None:
        return None


class StartAt(NoStore):
    """Start at a recorded round: ``rounds`` done so far and the ``labelled`` set after them (replays
    of a finished cell; warm-started cells cannot start mid-way)."""

    def __init__(self, rounds: list[dict[str, Any]], labelled: np.ndarray) -> None:
        self.rounds, self.labelled = list(rounds), np.asarray(labelled, dtype=np.int64)

    def resume(self, run: CellRun) -> tuple[list[dict[str, Any]], np.ndarray]:  # type: ignore[override]
        return list(self.rounds), self.labelled.copy()


def run_rounds(run: CellRun, querier: Querier | None, store: RoundStore, *, stop_after: int | None = None,
               on_round: Callable[[dict[str, Any]], None] = lambda record: None) -> dict[str, Any]:
    """Run (or resume) every round of ``run`` — or up to round ``stop_after``'s training and evaluation
    (nothing is queried after it; ``querier`` may then be ``None``); returns ``rounds``, ``summary``,
    ``initial_labelled`` and ``labelled``."""
    bundle = run.bundle
    pool, meta = bundle.train, bundle.meta
    round_metrics = [m for m in run.metrics if m.scope == "round"]
    resumed = store.resume(run)
    rounds, labelled = resumed if resumed is not None else ([], run.initial)
    n_rounds = run.protocol.rounds if stop_after is None else min(run.protocol.rounds, stop_after)
    for r in range(len(rounds), n_rounds + 1):
        t0 = time.perf_counter()
        trained = run.train(r, labelled)
        t1 = time.perf_counter()
        ev = run.evaluation(r)
        metrics = evaluate(ev, round_metrics)
        t2 = time.perf_counter()
        n_human, n_generated = run.masks.counts(labelled)
        record: dict[str, Any] = {"round": r, "n_labelled": int(len(labelled)), "metrics": metrics,
                                  "train_terms": trained.terms, "n_masks_revealed": n_human,
                                  "n_masks_generated": n_generated}
        queried: list[int] = []
        n_unlabelled = len(pool) - len(labelled)
        strategy_s = 0.0
        if r < n_rounds and n_unlabelled > 0:
            assert querier is not None, "a querier is needed to go past round 0"
            reply = querier.query(run.request(r, labelled, min(run.k, n_unlabelled)))
            queried = [int(i) for i in reply.indices]
            strategy_s = float(reply.seconds)
            if reply.scores is not None:
                unlabelled = np.setdiff1d(np.arange(len(pool)), labelled)
                pos = np.searchsorted(unlabelled, np.asarray(queried, dtype=np.int64))
                record["queried_scores"] = [float(v) for v in np.asarray(reply.scores)[pos]]
            new = np.asarray(queried, dtype=np.int64)
            labelled = np.concatenate([labelled, new])
            dice = run.acquire_masks(r, labelled, new)
            if dice is not None:
                record["generated_mask_dice"] = dice
        t3 = time.perf_counter()
        record["queried"] = queried
        record["acquired_class_histogram"] = class_histogram(pool, queried, meta)
        record["timings"] = {"train_s": t1 - t0, "eval_s": t2 - t1, "eval_maps_s": ev.seconds.get("roi_pairs", 0.0),
                             "query_s": t3 - t2, "strategy_s": strategy_s}
        rounds.append(record)
        t4 = time.perf_counter()
        store.checkpoint(run, rounds, labelled)
        record["timings"]["io_s"] = time.perf_counter() - t4
        on_round(record)
        if n_unlabelled == 0:
            break
    summary = summarise(rounds, run.metrics)
    cell_metrics = [m for m in run.metrics if m.scope == "cell"]
    if cell_metrics and run.trained is not None:
        ev = run.evaluation(len(rounds) - 1)
        for m in cell_metrics:
            summary[f"final_{m.summary_key()}"] = float(m.compute(ev))
    return {"rounds": rounds, "summary": summary, "initial_labelled": [int(i) for i in labelled[: run.n_init]],
            "labelled": labelled}
