"""One AL run ("cell" = suite × dataset × method × seed), resumable and deterministic.

Round loop (DESIGN.md): draw the initial labelled set; for each round, train from the
same initial weights (retrain from scratch; ``training.warm_start`` continues instead),
evaluate on test, ask the strategy through a :class:`StrategyContext` (no pool labels),
validate its answer (:mod:`xalbench.harness.guard`), reveal labels and — within the
protocol's mask budget — masks, checkpoint, repeat. A checkpoint holds the rounds done
and the labelled set in acquisition order; because every round's randomness is derived
from (seed, round), resuming reproduces an uninterrupted run bit for bit.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np
import torch

import xalbench
from xalbench.base import DatasetBundle, Split
from xalbench.errors import StrategyContractError, XalbenchError
from xalbench.harness import seeding
from xalbench.harness.budget import Protocol
from xalbench.harness.context import StrategyContext
from xalbench.harness.evaluation import evaluate
from xalbench.harness.training import train_round
from xalbench.metrics import aulc
from xalbench.registry import Registry
from xalbench.results import SCHEMA_VERSION, atomic_write_json, cell_key, environment, read_json, source_hash
from xalbench.suite import ComponentSpec, MethodSpec, SuiteSpec

__all__ = ["CellSpec", "run_cell", "initial_set", "resolve_protocol", "applicability"]


@dataclasses.dataclass(frozen=True)
class CellSpec:
    suite: SuiteSpec
    dataset: ComponentSpec
    method: MethodSpec
    seed: int
    out_dir: str
    device: str = "cpu"
    threads: int = 1
    data_root: str | None = None

    @property
    def key(self) -> str:
        return cell_key(self.dataset.display, self.method.display, self.seed)

    @property
    def result_path(self) -> Path:
        return Path(self.out_dir) / "cells" / f"{self.key}.json"

    @property
    def partial_path(self) -> Path:
        return Path(self.out_dir) / "cells" / f"{self.key}.partial.json"

    def describe(self) -> dict[str, Any]:
        return {
            "suite": self.suite.name,
            "dataset": self.dataset.display,
            "dataset_name": self.dataset.name,
            "dataset_options": self.dataset.options,
            "method": self.method.display,
            "strategy": self.method.strategy.name,
            "strategy_options": self.method.strategy.options,
            "loss": self.method.loss.name,
            "loss_options": self.method.loss.options,
            "seed": self.seed,
            "key": self.key,
        }


@functools.lru_cache(maxsize=2)
def _registry() -> Registry:
    from xalbench.plugins import load_registry

    return load_registry()


@functools.lru_cache(maxsize=8)
def _load_dataset(name: str, options_json: str, data_root: str | None) -> DatasetBundle:
    return _registry().create("dataset", name, json.loads(options_json)).load(data_root)


def load_dataset(spec: ComponentSpec, data_root: str | None) -> DatasetBundle:
    return _load_dataset(spec.name, json.dumps(spec.options, sort_keys=True), data_root)


def resolve_protocol(registry: Registry, suite: SuiteSpec) -> Protocol:
    base = registry.get("protocol", suite.protocol_base)
    return base.with_overrides(suite.protocol_overrides, where=f"suite {suite.name!r} [protocol]")


def initial_set(pool: Split, n: int, how: str, rng: np.random.Generator, task: str) -> np.ndarray:
    """Initial labelled pool indices; ``class-balanced`` takes ⌊n/K⌋ per class, rest at random."""
    n_pool = len(pool)
    if how == "class-balanced" and task == "multi-class":
        labels = pool.labels.numpy()
        classes = np.unique(labels)
        per = n // len(classes)
        chosen: list[int] = []
        for c in classes:
            members = np.flatnonzero(labels == c)
            take = min(per, members.size)
            chosen.extend(rng.choice(members, size=take, replace=False).tolist())
        rest = np.setdiff1d(np.arange(n_pool), np.asarray(chosen, dtype=np.int64))
        extra = n - len(chosen)
        if extra > 0:
            chosen.extend(rng.choice(rest, size=min(extra, rest.size), replace=False).tolist())
        return np.asarray(chosen, dtype=np.int64)
    return rng.choice(n_pool, size=min(n, n_pool), replace=False).astype(np.int64)


def applicability(registry: Registry, suite: SuiteSpec, method: MethodSpec, meta: xalbench.DatasetMeta) -> str | None:
    """Why this method cannot run on this dataset/track, or ``None``."""
    from xalbench.harness.guard import skip_reason

    strategy_cls = registry.get("strategy", method.strategy.name)
    reason = skip_reason(strategy_cls, task=meta.task, spatial_dims=meta.spatial_dims,
                         pool_masks_visible=suite.pool_masks == "visible" and meta.has_roi)
    if reason:
        return reason
    loss_cls = registry.get("loss", method.loss.name)
    if loss_cls.needs_masks and not meta.has_roi:
        return f"loss {method.loss.name!r} needs ROI masks; dataset {meta.name!r} has none"
    if meta.task == "multi-label" and not loss_cls.supports_multilabel:
        return f"loss {method.loss.name!r} does not support multi-label data"
    if meta.spatial_dims == 3 and not loss_cls.supports_3d:
        return f"loss {method.loss.name!r} does not support 3D data"
    model_cls = registry.get("model", suite.model.name)
    if meta.spatial_dims == 3 and not model_cls.supports_3d:
        return f"model {suite.model.name!r} is 2D only"
    return None


def _result(spec: CellSpec, status: str, **extra: Any) -> dict[str, Any]:
    return {"schema": SCHEMA_VERSION, "status": status, "cell": spec.describe(),
            "suite_hash": spec.suite.config_hash(), **extra}


def _summary(rounds: list[dict[str, Any]]) -> dict[str, float]:
    if not rounds:
        return {}
    x = [r["n_labelled"] for r in rounds]
    out = {
        "aulc_acc": aulc(x, [r["metrics"]["accuracy"] for r in rounds]),
        "aulc_dice": aulc(x, [r["metrics"]["dice"] for r in rounds]),
        "aulc_auc": aulc(x, [r["metrics"]["auc"] for r in rounds]),
        "final_acc": rounds[-1]["metrics"]["accuracy"],
        "final_auc": rounds[-1]["metrics"]["auc"],
        "final_dice": rounds[-1]["metrics"]["dice"],
    }
    return out


def run_cell(spec: CellSpec) -> dict[str, Any]:
    """Run (or resume, or skip if finished) one cell; always returns its result dict."""
    if spec.result_path.exists():
        done = read_json(spec.result_path)
        if done.get("status") in ("ok", "skipped") and done.get("suite_hash") == spec.suite.config_hash():
            return done
    try:
        result = _run(spec)
    except Exception as exc:  # a failing plugin fails its own cell only
        partial = read_json(spec.partial_path) if spec.partial_path.exists() else {}
        rounds = partial.get("rounds", [])
        error = {"type": type(exc).__name__, "message": str(exc),
                 "rule": getattr(exc, "rule", None), "traceback": traceback.format_exc()}
        if isinstance(exc, XalbenchError) and not isinstance(exc, StrategyContractError):
            error["traceback"] = ""
        result = _result(spec, "failed", error=error, rounds=rounds, summary=_summary(rounds),
                         provenance={"environment": environment(spec.threads, spec.device)})
    atomic_write_json(spec.result_path, result)
    if spec.partial_path.exists():
        spec.partial_path.unlink()
    weights = spec.partial_path.with_suffix(".pt")
    if weights.exists():
        weights.unlink()
    return result


def _run(spec: CellSpec) -> dict[str, Any]:
    device = torch.device(spec.device)
    seeding.configure_determinism(spec.threads, device)
    registry = _registry()
    suite = spec.suite
    bundle = load_dataset(spec.dataset, spec.data_root)
    meta = bundle.meta
    reason = applicability(registry, suite, spec.method, meta)
    if reason:
        return _result(spec, "skipped", reason=reason, rounds=[], summary={})
    protocol = resolve_protocol(registry, suite)
    pool, val, test = bundle.train, bundle.val, bundle.test
    n_pool = len(pool)
    n_init, k = protocol.counts(n_pool)
    mask_limit = protocol.mask_limit(n_pool)

    pair = seeding.name_seed(suite.name, spec.dataset.display, spec.seed)
    cell = seeding.name_seed(suite.name, spec.dataset.display, spec.method.display, spec.seed)
    init_rng = np.random.default_rng(seeding.derive(pair, "initial"))
    labelled = initial_set(pool, n_init, protocol.initial_sampling, init_rng, meta.task)

    torch.manual_seed(seeding.derive(pair, "weights") % (2**63))
    model = registry.create("model", suite.model.name, suite.model.options).build(
        meta.in_channels, meta.num_classes, meta.spatial_dims).to(device)
    init_state = copy.deepcopy(model.state_dict())
    strategy = registry.create("strategy", spec.method.strategy.name, spec.method.strategy.options)
    loss_fn = registry.create("loss", spec.method.loss.name, spec.method.loss.options)
    explainer = registry.create("explainer", suite.explainer.name, suite.explainer.options) if suite.explainer.name else None

    from xalbench.harness.guard import call_strategy

    rounds: list[dict[str, Any]] = []
    if spec.partial_path.exists():
        partial = read_json(spec.partial_path)
        # resume only what the same suite *and* the same xalbench code started; else start the cell over
        if partial.get("suite_hash") == suite.config_hash() and partial.get("source") == source_hash():
            rounds = partial["rounds"]
            labelled = np.asarray(partial["labelled"], dtype=np.int64)
            weights = spec.partial_path.with_suffix(".pt")
            if suite.training.warm_start and weights.exists():
                model.load_state_dict(torch.load(weights, map_location=device, weights_only=True))
    provenance = {
        "xalbench": xalbench.__version__,
        "components": {kind: {"name": name, **{k: v for k, v in registry.record(kind, name).as_dict().items()
                                                if k in ("distribution", "version")}}
                       for kind, name in (("strategy", spec.method.strategy.name), ("loss", spec.method.loss.name),
                                          ("model", suite.model.name), ("dataset", spec.dataset.name))},
        "split_hash": bundle.split_hash(),
        "suite_hash": suite.config_hash(),
        "suite_source": suite.source,
        "protocol": dataclasses.asdict(protocol),
        "synthetic": meta.synthetic,
        "environment": environment(spec.threads, spec.device),
    }
    n_rounds = protocol.rounds
    for r in range(len(rounds), n_rounds + 1):
        t0 = time.perf_counter()
        if not suite.training.warm_start:
            model.load_state_dict(init_state)
        revealed = np.zeros(len(labelled), dtype=bool)
        if pool.roi is not None:
            revealed[: len(labelled) if mask_limit is None else mask_limit] = True
        info = xalbench.RoundInfo(r, len(labelled), len(labelled) / n_pool, cell, meta.task,
                                  meta.num_classes, meta.spatial_dims)
        loss_fn.on_round_start(info)
        gen = torch.Generator().manual_seed(seeding.derive(pair, "train", r) % (2**63))
        torch.manual_seed(seeding.derive(pair, "global", r) % (2**63))  # dropout etc.: resume-safe
        terms = train_round(model, loss_fn, pool, labelled, revealed, suite.training, meta.task, gen, device)
        t1 = time.perf_counter()
        metrics = evaluate(model, test, task=meta.task, explainer=explainer, target=suite.eval_target,
                           device=device, batch_size=suite.training.eval_batch_size)
        t2 = time.perf_counter()
        record: dict[str, Any] = {"round": r, "n_labelled": int(len(labelled)), "metrics": metrics,
                                  "train_terms": terms, "n_masks_revealed": int(
                                      (revealed & pool.has_roi[torch.as_tensor(labelled)].numpy()).sum()
                                      if pool.roi is not None else 0)}
        queried: list[int] = []
        n_unlabelled = n_pool - len(labelled)
        if r < n_rounds and n_unlabelled > 0:
            ctx = StrategyContext(
                model=model, pool_images=pool.images, labelled=labelled,
                labelled_labels=pool.labels[torch.as_tensor(labelled)],
                labelled_roi=None if pool.roi is None else pool.roi[torch.as_tensor(labelled)],
                labelled_has_roi=None if pool.roi is None else torch.as_tensor(revealed) & pool.has_roi[torch.as_tensor(labelled)],
                val=val, task=meta.task, num_classes=meta.num_classes, spatial_dims=meta.spatial_dims,
                rng=np.random.default_rng(seeding.derive(cell, "strategy", r)), device=device,
                round_index=r, seed=seeding.derive(cell, "strategy-torch", r) % (2**63), explainer=explainer,
                pool_roi=pool.roi, pool_has_roi=pool.has_roi,
                pool_masks_visible=suite.pool_masks == "visible",
                batch_size=suite.training.eval_batch_size,
            )
            picked = call_strategy(strategy, ctx, min(k, n_unlabelled), timeout=suite.strategy_timeout)
            queried = [int(i) for i in picked]
            labelled = np.concatenate([labelled, np.asarray(queried, dtype=np.int64)])
        t3 = time.perf_counter()
        record["queried"] = queried
        record["acquired_class_histogram"] = _histogram(pool, queried, meta)
        record["timings"] = {"train_s": t1 - t0, "eval_s": t2 - t1, "query_s": t3 - t2}
        rounds.append(record)
        atomic_write_json(spec.partial_path, {"suite_hash": suite.config_hash(), "rounds": rounds,
                                              "labelled": labelled.tolist(), "source": source_hash()})
        if suite.training.warm_start:
            torch.save(model.state_dict(), spec.partial_path.with_suffix(".pt"))
        if n_unlabelled == 0:
            break
    return _result(spec, "ok", rounds=rounds, summary=_summary(rounds), provenance=provenance,
                   initial_labelled=[int(i) for i in labelled[:n_init]])


def _histogram(pool: Split, queried: list[int], meta: xalbench.DatasetMeta) -> list[int]:
    """Per-class count of the acquired samples (multi-label: positives per finding)."""
    if not queried:
        return [0] * meta.num_classes
    labels = pool.labels[torch.as_tensor(queried)]
    if meta.task == "multi-label":
        return [int(v) for v in (labels > 0.5).sum(0).tolist()]
    return [int(v) for v in np.bincount(labels.numpy(), minlength=meta.num_classes).tolist()]


