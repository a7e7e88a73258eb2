"""The round loop of one cell, top to bottom.

For each round ``r = 0 .. R``: train (the method's trainer, from the same initial weights
unless warm start), evaluate every registered metric on the test split, ask the strategy —
in its sandbox process — for ``k`` pool indices, reveal their labels (and masks: human
within the protocol's budget, else from the method's mask source), checkpoint. Every round's
randomness is derived from (seed, round), so resuming from a checkpoint reproduces an
uninterrupted run bit for bit.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from xalbench.harness.cellfiles import read_checkpoint
from xalbench.harness.evaluation import evaluate
from xalbench.harness.identity import CellSpec
from xalbench.harness.state import CellRun
from xalbench.harness.summary import class_histogram, summarise
from xalbench.results import atomic_write_json, seal
from xalbench.sandbox import RoundRequest
from xalbench.training.base import TrainedModels

__all__ = ["run_rounds"]


def _request(run: CellRun, r: int, labelled: np.ndarray, k: int) -> RoundRequest:
    """What the sandbox receives this round: weights, and the labelled set with its revealed masks."""
    assert run.trained is not None
    model = run.trained.main
    data = run.masks.labelled_split(labelled)
    rng_seed, torch_seed = run.query_seeds(r)

    def np_copy(t: torch.Tensor | None) -> np.ndarray | None:
        return None if t is None else np.array(t.detach().cpu().numpy(), copy=True)

    return RoundRequest(
        round_index=r, state_dict={n: v.detach().to("cpu", copy=True) for n, v in model.state_dict().items()},
        module_training=tuple(m.training for m in model.modules()),
        labelled=np.array(labelled, dtype=np.int64, copy=True), labelled_labels=np_copy(data.labels),
        labelled_roi=np_copy(data.roi), labelled_has_roi=np_copy(data.has_roi),
        rng_seed=int(rng_seed), torch_seed=int(torch_seed), k=int(k))


def _resume(spec: CellSpec, run: CellRun) -> tuple[list[dict[str, Any]], np.ndarray]:
    checkpoint = read_checkpoint(spec)
    if checkpoint is None:
        return [], run.initial
    labelled = np.asarray(checkpoint["labelled"], dtype=np.int64)
    extras = spec.weights_path
    if extras.exists():
        state = torch.load(extras, map_location="cpu", weights_only=True)
        run.masks.load(state.get("masks", {}))
        if ("model" in state and spec.suite.training.warm_start) or state.get("extra"):
            model = run.new_model()
            if "model" in state:
                model.load_state_dict(state["model"])
            extra = {}
            for name, weights in state.get("extra", {}).items():
                extra[name] = run.new_model()
                extra[name].load_state_dict(weights)
            run.trained = TrainedModels(main=model, extra=extra)
    return list(checkpoint["rounds"]), labelled


def _checkpoint(spec: CellSpec, run: CellRun, rounds: list[dict[str, Any]], labelled: np.ndarray) -> None:
    extras: dict[str, Any] = {}
    if run.masks.generated:
        extras["masks"] = run.masks.state()
    if spec.suite.training.warm_start and run.trained is not None:
        extras["model"] = run.trained.main.state_dict()
    if getattr(run.trainer, "keeps_state", False) and run.trained is not None and run.trained.extra:
        extras["extra"] = {name: m.state_dict() for name, m in run.trained.extra.items()}
    if extras:  # weights/masks first: a checkpoint never points at a missing or older extras file
        tmp = spec.weights_path.with_suffix(".tmp")
        torch.save(extras, tmp)
        tmp.replace(spec.weights_path)
    atomic_write_json(spec.partial_path, seal({"identity_sha256": spec.identity_sha256, "rounds": rounds,
                                               "labelled": labelled.tolist()}))


def run_rounds(spec: CellSpec, run: CellRun, querier: Any,
               on_round: Callable[[dict[str, Any]], None] = lambda record: None) -> dict[str, Any]:
    """Run (or resume) every round of ``spec``; returns ``rounds``, ``summary`` and ``initial_labelled``."""
    bundle = run.bundle
    pool, meta = bundle.train, bundle.meta
    round_metrics = [m for m in run.metrics if m.scope == "round"]
    rounds, labelled = _resume(spec, run)
    n_rounds = run.protocol.rounds
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
            reply = querier.query(_request(run, r, labelled, min(run.k, n_unlabelled)))
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
        _checkpoint(spec, run, rounds, labelled)
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
