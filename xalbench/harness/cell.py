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
from xalbench.metrics import aulc, budget_to_fraction
from xalbench.registry import Registry
from xalbench.results import SCHEMA_VERSION, atomic_write_json, cell_key, environment, read_json, source_hash
from xalbench.suite import ComponentSpec, MethodSpec, SuiteSpec

__all__ = ["CellSpec", "CellRun", "run_cell", "replay_round", "full_data_reference", "initial_set", "resolve_protocol", "applicability"]


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


class CellRun:
    """The fixed parts of one cell: data, seeds, initial weights, components, and the two
    round steps (:meth:`train`, :meth:`context`) that the loop and :func:`replay_round` share."""

    def __init__(self, spec: CellSpec, bundle: DatasetBundle, registry: Registry) -> None:
        self.spec, self.bundle, self.registry = spec, bundle, registry
        suite, meta = spec.suite, bundle.meta
        self.device = torch.device(spec.device)
        self.protocol = resolve_protocol(registry, suite)
        self.pair = seeding.name_seed(suite.name, spec.dataset.display, spec.seed)
        self.cell = seeding.name_seed(suite.name, spec.dataset.display, spec.method.display, spec.seed)
        self.n_init, self.k = self.protocol.counts(len(bundle.train))
        init_rng = np.random.default_rng(seeding.derive(self.pair, "initial"))
        self.initial = initial_set(bundle.train, self.n_init, self.protocol.initial_sampling, init_rng, meta.task)
        torch.manual_seed(seeding.derive(self.pair, "weights") % (2**63))
        self.model = registry.create("model", suite.model.name, suite.model.options).build(
            meta.in_channels, meta.num_classes, meta.spatial_dims).to(self.device)
        self.init_state = copy.deepcopy(self.model.state_dict())
        self.strategy = registry.create("strategy", spec.method.strategy.name, spec.method.strategy.options)
        self.loss_fn = registry.create("loss", spec.method.loss.name, spec.method.loss.options)
        self.explainer = (registry.create("explainer", suite.explainer.name, suite.explainer.options)
                          if suite.explainer.name else None)

    def revealed(self, labelled: np.ndarray) -> np.ndarray:
        """Which labelled samples (acquisition order) have their human mask revealed."""
        out = np.zeros(len(labelled), dtype=bool)
        if self.bundle.train.roi is not None:
            limit = self.protocol.mask_limit(len(self.bundle.train))
            out[: len(labelled) if limit is None else limit] = True
        return out

    def train(self, r: int, labelled: np.ndarray) -> dict[str, float]:
        """Round ``r``'s training (from the initial weights unless warm start); deterministic in (seed, r)."""
        suite, meta, pool = self.spec.suite, self.bundle.meta, self.bundle.train
        if not suite.training.warm_start:
            self.model.load_state_dict(self.init_state)
        self.loss_fn.on_round_start(xalbench.RoundInfo(r, len(labelled), len(labelled) / len(pool), self.cell,
                                                       meta.task, meta.num_classes, meta.spatial_dims))
        gen = torch.Generator().manual_seed(seeding.derive(self.pair, "train", r) % (2**63))
        torch.manual_seed(seeding.derive(self.pair, "global", r) % (2**63))  # dropout etc.: resume-safe
        return train_round(self.model, self.loss_fn, pool, labelled, self.revealed(labelled), suite.training,
                           meta.task, gen, self.device)

    def context(self, r: int, labelled: np.ndarray) -> StrategyContext:
        """The strategy's read-only view after round ``r``'s training."""
        suite, meta, pool = self.spec.suite, self.bundle.meta, self.bundle.train
        lab = torch.as_tensor(labelled)
        revealed = torch.as_tensor(self.revealed(labelled))
        return StrategyContext(
            model=self.model, pool_images=pool.images, labelled=labelled, labelled_labels=pool.labels[lab],
            labelled_roi=None if pool.roi is None else pool.roi[lab],
            labelled_has_roi=None if pool.roi is None else revealed & pool.has_roi[lab],
            val=self.bundle.val, task=meta.task, num_classes=meta.num_classes, spatial_dims=meta.spatial_dims,
            rng=np.random.default_rng(seeding.derive(self.cell, "strategy", r)), device=self.device,
            round_index=r, seed=seeding.derive(self.cell, "strategy-torch", r) % (2**63), explainer=self.explainer,
            pool_roi=pool.roi, pool_has_roi=pool.has_roi, pool_masks_visible=suite.pool_masks == "visible",
            batch_size=suite.training.eval_batch_size, pool_annotated_slices=pool.annotated_slices,
        )

    def provenance(self) -> dict[str, Any]:
        spec, suite, registry = self.spec, self.spec.suite, self.registry

        def origin(kind: str, name: str) -> dict[str, str]:
            rec = registry.record(kind, name)
            return {"name": name, "distribution": rec.distribution, "version": rec.version}

        return {
            "xalbench": xalbench.__version__,
            "components": {kind: origin(kind, name) for kind, name in (
                ("strategy", spec.method.strategy.name), ("loss", spec.method.loss.name),
                ("model", suite.model.name), ("dataset", spec.dataset.name))},
            "split_hash": self.bundle.split_hash(),
            "suite_hash": suite.config_hash(),
            "suite_source": suite.source,
            "protocol": dataclasses.asdict(self.protocol),
            "synthetic": self.bundle.meta.synthetic,
            "environment": environment(spec.threads, spec.device),
        }


def _run(spec: CellSpec) -> dict[str, Any]:
    seeding.configure_determinism(spec.threads, torch.device(spec.device))
    registry = _registry()
    suite = spec.suite
    bundle = load_dataset(spec.dataset, spec.data_root)
    reason = applicability(registry, suite, spec.method, bundle.meta)
    if reason:
        return _result(spec, "skipped", reason=reason, rounds=[], summary={})
    run = CellRun(spec, bundle, registry)
    pool, meta = bundle.train, bundle.meta
    labelled = run.initial
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
                run.model.load_state_dict(torch.load(weights, map_location=run.device, weights_only=True))
    provenance = run.provenance()
    n_rounds = run.protocol.rounds
    for r in range(len(rounds), n_rounds + 1):
        t0 = time.perf_counter()
        terms = run.train(r, labelled)
        t1 = time.perf_counter()
        metrics = evaluate(run.model, bundle.test, task=meta.task, explainer=run.explainer, target=suite.eval_target,
                           device=run.device, batch_size=suite.training.eval_batch_size)
        t2 = time.perf_counter()
        n_masks = int((run.revealed(labelled) & pool.has_roi[torch.as_tensor(labelled)].numpy()).sum()
                      if pool.roi is not None else 0)
        record: dict[str, Any] = {"round": r, "n_labelled": int(len(labelled)), "metrics": metrics,
                                  "train_terms": terms, "n_masks_revealed": n_masks}
        queried: list[int] = []
        n_unlabelled = len(pool) - len(labelled)
        if r < n_rounds and n_unlabelled > 0:
            ctx = run.context(r, labelled)
            picked = call_strategy(run.strategy, ctx, min(run.k, n_unlabelled), timeout=suite.strategy_timeout)
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
            torch.save(run.model.state_dict(), spec.partial_path.with_suffix(".pt"))
        if n_unlabelled == 0:
            break
    summary = _summary(rounds)
    if suite.full_data_reference:
        summary.update(_budget_to_95(rounds, full_data_reference(run), len(pool)))
    return _result(spec, "ok", rounds=rounds, summary=summary, provenance=provenance,
                   initial_labelled=[int(i) for i in labelled[: run.n_init]])


REFERENCE_ROUND = -1  # seed stream of the full-data training (distinct from every AL round)


def full_data_reference(run: CellRun) -> dict[str, float]:
    """Test metrics of the cell's model and loss trained on the **whole** pool (masks within the
    protocol's mask budget), the reference of budget-to-95 % (DESIGN.md; seed 004's "% of data to
    reach 95 % of full-data performance"). Cached per (dataset, loss, seed) under
    ``<out>/reference/``, so methods sharing a loss share it; deterministic, so two workers that
    race on it write the same file (atomically)."""
    spec = run.spec
    key = cell_key(spec.dataset.display, spec.method.loss.display, spec.seed)
    path = Path(spec.out_dir) / "reference" / f"{key}.json"
    if path.exists():
        cached = read_json(path)
        if cached.get("suite_hash") == spec.suite.config_hash() and cached.get("source") == source_hash():
            return cached["metrics"]
    everything = np.arange(len(run.bundle.train), dtype=np.int64)
    run.train(REFERENCE_ROUND, everything)
    metrics = evaluate(run.model, run.bundle.test, task=run.bundle.meta.task, explainer=run.explainer,
                       target=spec.suite.eval_target, device=run.device,
                       batch_size=spec.suite.training.eval_batch_size)
    atomic_write_json(path, {"suite_hash": spec.suite.config_hash(), "source": source_hash(),
                             "n_labelled": len(everything), "metrics": metrics})
    return metrics


def _budget_to_95(rounds: list[dict[str, Any]], reference: dict[str, float], n_pool: int) -> dict[str, float]:
    x = [r["n_labelled"] for r in rounds]
    out = {"reference_acc": reference["accuracy"], "reference_auc": reference["auc"]}
    for metric in ("accuracy", "auc"):
        n = budget_to_fraction(x, [r["metrics"][metric] for r in rounds], reference[metric], 0.95)
        short = "acc" if metric == "accuracy" else metric
        out[f"budget95_{short}"] = n
        out[f"budget95_{short}_frac"] = n / n_pool
    return out


def replay_round(spec: CellSpec, result: dict[str, Any], round_index: int) -> tuple[CellRun, StrategyContext]:
    """Rebuild round ``round_index`` of a finished cell: retrain its model from the recorded
    labelled set with the harness's own seeds, and return the strategy context it queried
    from (e.g. for figures). Warm-start suites cannot be replayed round by round."""
    from xalbench.errors import ConfigError, UnsupportedError

    if spec.suite.training.warm_start:
        raise UnsupportedError("replaying a warm-started cell needs every earlier round; use warm_start = false")
    rounds = result["rounds"]
    if not 0 <= round_index < len(rounds):
        raise ConfigError(f"round {round_index} does not exist; the cell has rounds 0..{len(rounds) - 1}")
    seeding.configure_determinism(spec.threads, torch.device(spec.device))
    run = CellRun(spec, load_dataset(spec.dataset, spec.data_root), _registry())
    labelled = np.asarray(result["initial_labelled"] + [i for r in rounds[:round_index] for i in r["queried"]],
                          dtype=np.int64)
    run.train(round_index, labelled)
    return run, run.context(round_index, labelled)


def _histogram(pool: Split, queried: list[int], meta: xalbench.DatasetMeta) -> list[int]:
    """Per-class count of the acquired samples (multi-label: positives per finding)."""
    if not queried:
        return [0] * meta.num_classes
    labels = pool.labels[torch.as_tensor(queried)]
    if meta.task == "multi-label":
        return [int(v) for v in (labels > 0.5).sum(0).tolist()]
    return [int(v) for v in np.bincount(labels.numpy(), minlength=meta.num_classes).tolist()]


