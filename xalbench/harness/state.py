"""The fixed parts of one cell and its two round steps: train (via the trainer) and the strategy's view.

Seeds (see :mod:`xalbench.seeding`): the **pair** seed over (suite, dataset, seed)
fixes the initial labelled set, the initial weights and the training shuffles, so every
method of a (dataset, seed) pair starts from the same point (paired comparisons); the
**strategy** seed adds the strategy (with its options) and drives the strategy's RNG — not the
loss, trainer or mask source, so ``random`` draws the same samples whichever training it is paired
with; the **cell** seed adds the whole method (``TrainJob.cell_seed``).
"""

from __future__ import annotations

import copy
from typing import Any, Protocol

import numpy as np
import torch

import xalbench.seeding as seeding
from xalbench.base import DatasetBundle, ExplainableNet, Loss
from xalbench.harness.budget import initial_labelled, resolve_count
from xalbench.harness.evaluation import TestEvaluation, select_metrics
from xalbench.harness.identity import CellSpec, identity_hash, training_identity
from xalbench.harness.masks import MaskBank, drawn_only
from xalbench.registry import Registry
from xalbench.sandbox import Querier, RoundRequest, make_cell_data, make_querier, make_spec
from xalbench.training.base import MaskRequest, TrainedModels, TrainJob
from xalbench.utils.overlap import soft_dice

__all__ = ["CellRun", "Round0Store", "open_querier"]


class Round0Store(Protocol):
    """Where round 0's model is shared between the strategies of one (dataset, seed, loss, …)."""

    def load_round0(self, digest: str) -> dict[str, Any] | None:
        """The saved ``{"state": state dict, "terms": {...}}``, or ``None`` (missing or damaged)."""

    def save_round0(self, digest: str, saved: dict[str, Any]) -> None:
        """Keep ``saved`` for the other cells of the same training identity."""


class CellRun:
    """Data, seeds, initial weights and components of one cell, from its resolved config."""

    def __init__(self, spec: CellSpec, bundle: DatasetBundle, registry: Registry, *, with_metrics: bool = True,
                 round0: Round0Store | None = None) -> None:
        """``with_metrics=False``: the rounds compute no metric (a tuning trial scores one model itself);
        ``round0``: where round 0's model is shared (``None``: never shared)."""
        self.spec, self.bundle, self.registry = spec, bundle, registry
        config, meta = spec.config, bundle.meta
        self.config = config
        self.device = torch.device(config.device)
        self.protocol = config.protocol
        self.pair = seeding.name_seed(config.suite, config.dataset.display, config.seed)
        self.cell = seeding.name_seed(config.suite, config.dataset.display, config.method.display, config.seed)
        self.strategy_seed = seeding.strategy_seed(config.suite, config.dataset.display,
                                                   config.method.strategy.identity(), config.seed)
        self.n_init, self.k = self.protocol.counts(len(bundle.train))
        self.initial = initial_labelled(config, bundle.train, meta.task)
        torch.manual_seed(seeding.derive(self.pair, "weights") % (2**63))
        self.template = self.build_model().to(self.device)
        self.init_state = copy.deepcopy(self.template.state_dict())
        method = config.method
        self.loss_fn = registry.create("loss", method.loss.name, method.loss.options)
        self.trainer = registry.create("trainer", method.trainer.name, method.trainer.options)
        self.mask_source = registry.create("mask_source", method.mask_source.name, method.mask_source.options)
        self.explainer = (registry.create("explainer", config.explainer.name, config.explainer.options)
                          if config.explainer.name else None)
        self.masks = MaskBank(bundle.train, self._mask_limit())
        self.metrics = select_metrics(registry, requested=config.metrics, task=meta.task,
                                      has_roi=bundle.test.roi is not None,
                                      has_explainer=self.explainer is not None) if with_metrics else []
        self.round0 = round0
        self.trained: TrainedModels | None = None

    def _mask_limit(self) -> int | None:
        """How many labelled samples (acquisition order) get human masks: the protocol's budget,
        unless the method's mask source ignores it or sets its own."""
        if self.mask_source.ignores_budget:
            return None
        own = self.mask_source.human_budget()
        n_pool = len(self.bundle.train)
        return self.protocol.mask_limit(n_pool) if own is None else resolve_count(own, n_pool)

    def build_model(self) -> ExplainableNet:
        """A fresh model of the suite's architecture for this dataset (random weights)."""
        meta, model = self.bundle.meta, self.config.model
        return self.registry.create("model", model.name, model.options).build(
            meta.in_channels, meta.num_classes, meta.spatial_dims)

    def new_model(self) -> ExplainableNet:
        """The cell's model at its initial weights (a separate copy each call)."""
        model = copy.deepcopy(self.template)
        model.load_state_dict(self.init_state)
        return model

    def _create(self, kind: str, name: str, options: dict[str, Any] | None = None) -> Any:
        return self.registry.create(kind, name, options)

    def _round0_digest(self) -> str | None:
        """The training identity round 0's model is shared under, or ``None`` when it cannot be shared
        (no store, a trainer that does not declare it, a loss with round state)."""
        if self.round0 is None or not getattr(self.trainer, "shares_round0", False):
            return None
        if type(self.loss_fn).on_round_start is not Loss.on_round_start:
            return None
        return identity_hash(training_identity(self.config.identity()))

    def _train_round0_shared(self, fit: Any) -> TrainedModels:
        digest = self._round0_digest()
        saved = self.round0.load_round0(digest) if digest is not None else None  # type: ignore[union-attr]
        if saved is not None:
            try:
                model = self.new_model()
                model.load_state_dict(saved["state"])
                self.trained = TrainedModels(main=model, terms=dict(saved["terms"]))
                return self.trained
            except (RuntimeError, KeyError):
                pass  # damaged: train again and overwrite
        self.trained = fit()
        if digest is not None:
            self.round0.save_round0(digest, {"state": self.trained.main.state_dict(),  # type: ignore[union-attr]
                                             "terms": self.trained.terms})
        return self.trained

    def train(self, r: int, labelled: np.ndarray) -> TrainedModels:
        """Round ``r``'s training through the method's trainer; deterministic in (seed, r). Round 0
        trains the same model for every strategy of a (dataset, seed, loss, model, training): it is
        trained once and shared through ``<out>/shared/round0/``."""
        meta = self.bundle.meta
        job = TrainJob(
            round_index=r, data=self.masks.labelled_split(labelled), index=np.asarray(labelled, dtype=np.int64),
            n_pool=len(self.bundle.train), cell_seed=self.cell, task=meta.task, num_classes=meta.num_classes,
            spatial_dims=meta.spatial_dims, training=self.config.training, device=self.device,
            loss=self.loss_fn, new_model=self.new_model,
            derive=lambda *purpose: seeding.derive(self.pair, *purpose[:1], r, *purpose[1:]),
            create=self._create, previous=self.trained, mask_limit=self.masks.limit,
        )
        if r == 0 and self.trained is None:
            return self._train_round0_shared(lambda: self.trainer.fit(job))
        self.trained = self.trainer.fit(job)
        return self.trained

    def evaluation(self, r: int) -> TestEvaluation:
        """The round's test-set evaluation view of the main model."""
        meta, config = self.bundle.meta, self.config
        assert self.trained is not None
        return TestEvaluation(self.trained.main, self.bundle.test, task=meta.task, num_classes=meta.num_classes,
                              spatial_dims=meta.spatial_dims, explainer=self.explainer, target=config.eval_target,
                              device=self.device, batch_size=config.training.eval_batch_size,
                              seed=seeding.derive(self.pair, "evaluation", r))

    def query_seeds(self, r: int) -> tuple[int, int]:
        """(numpy RNG seed, torch seed) of the strategy in round ``r``."""
        s = self.strategy_seed
        return seeding.derive(s, "strategy", r), seeding.derive(s, "strategy-torch", r) % (2**63)

    def request(self, r: int, labelled: np.ndarray, k: int) -> RoundRequest:
        """What the strategy's sandbox receives after round ``r``'s training: the main model's weights,
        the labelled set with its labels and revealed masks, the round's seeds and ``k``."""
        assert self.trained is not None
        data = self.masks.labelled_split(labelled)
        rng_seed, torch_seed = self.query_seeds(r)
        return RoundRequest.of(r, self.trained.main, labelled, data.labels, data.roi, data.has_roi,
                               rng_seed=rng_seed, torch_seed=torch_seed, k=k)

    def querier(self, isolation: str) -> Querier:
        """A started querier for this cell's strategy (:func:`open_querier`)."""
        return open_querier(self.spec, self.bundle, self.registry, isolation)

    def acquire_masks(self, r: int, labelled: np.ndarray, new: np.ndarray) -> float | None:
        """Masks from the method's mask source for ``new`` samples past the human budget; returns
        the mean Dice of the generated masks against the (hidden) true ROIs, or ``None``."""
        beyond = self.masks.beyond_budget(labelled, new)
        if beyond.size == 0 or self.trained is None:
            return None
        pool = self.bundle.train
        idx = torch.as_tensor(beyond)
        request = MaskRequest(round_index=r, index=beyond, images=pool.images[idx], labels=pool.labels[idx],
                              models=self.trained, explainer=self.explainer, task=self.bundle.meta.task,
                              spatial_dims=self.bundle.meta.spatial_dims, device=self.device, create=self._create)
        masks = self.mask_source.generate(request)
        if masks is None:
            return None
        masks = masks.detach().cpu()
        self.masks.add(beyond, masks)
        truth = (pool.roi[idx] > 0.5).float().flatten(1)
        has = truth.sum(1) > 0
        if not bool(has.any()):
            return None
        return float(soft_dice((masks > 0.5).float(), truth, 1e-12)[has].mean())


def open_querier(spec: CellSpec, bundle: DatasetBundle, registry: Registry, isolation: str) -> Querier:
    """A started querier for the cell's strategy (``confined``/``process``: its sandbox boots in the
    background while round 0 trains; ``inline``: in this process), holding what the strategy may see of
    the cell's data: pool images (drawn samples only), the val split, pool ROIs only on a visible track."""
    config, method = spec.config, spec.config.method
    explainer = (config.explainer.name, config.explainer.options) if config.explainer.name else None
    sandbox = make_spec(registry, strategy=(method.strategy.name, method.strategy.options),
                        model=(config.model.name, config.model.options), explainer=explainer,
                        meta=bundle.meta, pool_masks_visible=config.pool_masks_visible,
                        selection=spec.selection, threads=config.threads, device=config.device,
                        timeout=config.strategy_timeout, batch_size=config.training.eval_batch_size)
    data = make_cell_data(drawn_only(bundle.train), bundle.val, pool_masks_visible=config.pool_masks_visible)
    return make_querier(isolation, sandbox, data, registry)  # type: ignore[arg-type]
