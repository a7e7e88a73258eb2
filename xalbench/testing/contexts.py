"""Tiny, deterministic rounds and strategy contexts for the conformance kit and for tests.

:func:`make_round` builds one tiny round exactly as the harness sends it to a strategy's
sandbox — a :class:`~xalbench.sandbox.messages.SandboxSpec`, the cell's
:class:`~xalbench.sandbox.messages.CellData` and the round's
:class:`~xalbench.sandbox.messages.RoundRequest` — around a small ``small-cnn`` on random tiny
images (2D 16×16 or 3D 8×8×8), with a labelled subset, a val split and, when asked, visible pool
masks. :meth:`KitRound.context` builds the strategy's view with the strategy side's own builder
(:func:`~xalbench.sandbox.context.build_context`), so the kit shows a strategy exactly what a run
shows it: on a hidden-mask track the context holds no pool ROI at all. The pool's labels and ROIs
stay with the kit (:attr:`KitRound.pool`), like the oracle's. The model is initialised under
``torch.random.fork_rng`` so the global RNG is untouched; same ``seed`` → same round.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Literal

import numpy as np
import torch

from xalbench.base import Split, Task
from xalbench.models.small_cnn import SmallCNN
from xalbench.sandbox.context import StrategyContext, build_context, build_model
from xalbench.sandbox.messages import CellData, ComponentRef, RoundRequest, SandboxSpec, make_cell_data

__all__ = ["KitRound", "default_explainer", "make_context", "make_round", "make_split"]


@functools.lru_cache(maxsize=1)
def _gradcam_class() -> Any:
    """The built-in ``gradcam`` class, registered through its own plugin module only
    (loading every installed plugin just for this would be slow)."""
    try:
        from xalbench.explain import plugin as explain_plugin
        from xalbench.plugins import get_plugin_manager, load_registry

        pm = get_plugin_manager(load_entrypoints=False, extra=[explain_plugin])
        return load_registry(pm).get("explainer", "gradcam")
    except Exception:  # noqa: BLE001 - the kit must work without explainers
        return None


def default_explainer() -> Any:
    """A fresh registered ``gradcam`` explainer, or ``None`` if it is not installed."""
    cls = _gradcam_class()
    return None if cls is None else cls()


def _blobs(gen: torch.Generator, n: int, shape: tuple[int, ...]) -> torch.Tensor:
    """Random axis-aligned box ROIs ``n×shape`` in {0, 1}."""
    roi = torch.zeros((n, *shape))
    for i in range(n):
        sl = []
        for size in shape:
            lo = int(torch.randint(0, max(size // 2, 1), (1,), generator=gen))
            sl.append(slice(lo, lo + max(size // 3, 1)))
        roi[(i, *sl)] = 1.0
    return roi


def make_split(n: int, *, task: Task, num_classes: int, spatial_dims: int, seed: int, channels: int = 1) -> Split:
    """A random split with ROIs: images in [0, 1], labels of the task's type."""
    gen = torch.Generator().manual_seed(seed)
    shape = (16, 16) if spatial_dims == 2 else (8, 8, 8)
    images = torch.rand((n, channels, *shape), generator=gen)
    if task == "multi-label":
        labels = (torch.rand((n, num_classes), generator=gen) > 0.5).float()
    else:
        labels = torch.arange(n) % num_classes
        labels = labels[torch.randperm(n, generator=gen)]
    return Split(images=images, labels=labels, roi=_blobs(gen, n, shape))


@dataclasses.dataclass(frozen=True, eq=False)
class KitRound:
    """One tiny round as the harness sends it (``spec`` names no strategy yet), and the pool the
    oracle holds (labels and ROIs a strategy must never see on a hidden-mask track)."""

    spec: SandboxSpec
    data: CellData
    request: RoundRequest
    pool: Split

    def context(self) -> StrategyContext:
        """A fresh strategy view of this round (a new model, explainer and RNG each call)."""
        device = torch.device(self.spec.device)
        model = build_model(self.spec, self.request, self.spec.model.resolve(lambda: None), device)
        explainer = None
        if self.spec.explainer is not None:
            explainer = self.spec.explainer.resolve(lambda: None)(dict(self.spec.explainer.options))
        return build_context(self.spec, self.data, self.request, model, explainer, device)  # type: ignore[arg-type]

    def with_strategy(self, strategy: type, *, options: dict[str, Any] | None = None,
                      timeout: float = 60.0) -> SandboxSpec:
        """The spec that runs ``strategy`` (with ``options``) on this round, ``timeout`` s per query."""
        return dataclasses.replace(self.spec, strategy=ComponentRef.of("strategy", strategy, options),
                                   timeout=timeout)

    def ask(self, strategy: type, k: int, *, options: dict[str, Any] | None = None, timeout: float = 60.0,
            isolation: Literal["auto", "confined", "process", "inline"] = "auto", audit: bool = False) -> Any:
        """A fresh instance's validated answer (a :class:`~xalbench.sandbox.messages.QueryReply`) for this
        round, in a fresh sandbox — ``auto``: confined by the kernel where it can be, as in a run — with
        ``audit``, the escape attempts it made (:mod:`xalbench.sandbox.audit`).

        A class that cannot be pickled by reference (defined inside a function, or in a test module
        that pytest imports in ``importlib`` mode) cannot be named in another process: it runs
        ``inline``."""
        from xalbench.confinement import resolve_isolation
        from xalbench.sandbox.client import ProcessQuerier
        from xalbench.sandbox.inline import InlineQuerier

        spec = dataclasses.replace(self.with_strategy(strategy, options=options, timeout=timeout), audit=audit)
        if isolation != "inline" and spec.strategy.portable().cls is None:
            isolation = "inline"
        if isolation == "auto":
            isolation = resolve_isolation("auto", warn=False)  # type: ignore[assignment]
        if isolation == "inline":
            querier: Any = InlineQuerier(spec, self.data)
        else:
            querier = ProcessQuerier(dataclasses.replace(spec, confine=isolation == "confined"), self.data)
        with querier:
            return querier.query(dataclasses.replace(self.request, k=int(k)))

    def query(self, strategy: type, k: int, *, options: dict[str, Any] | None = None, timeout: float = 60.0,
              isolation: Literal["auto", "confined", "process", "inline"] = "auto") -> np.ndarray:
        """A fresh instance's validated picks for this round (:meth:`ask`)."""
        return self.ask(strategy, k, options=options, timeout=timeout, isolation=isolation).indices


def make_round(
    *,
    task: Task = "multi-class",
    spatial_dims: int = 2,
    n_pool: int = 40,
    n_labelled: int = 8,
    num_classes: int = 3,
    n_val: int = 12,
    seed: int = 0,
    pool_masks_visible: bool = False,
    explainer: Any = "default",
    dropout: float = 0.25,
) -> KitRound:
    """A fresh tiny round; every call with the same arguments is identical."""
    pool = make_split(n_pool, task=task, num_classes=num_classes, spatial_dims=spatial_dims, seed=seed)
    val = make_split(n_val, task=task, num_classes=num_classes, spatial_dims=spatial_dims, seed=seed + 1)
    options = {"width": 4, "n_blocks": 2, "dropout": dropout}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = SmallCNN(options).build(1, num_classes, spatial_dims)
        with torch.no_grad():  # a non-trivial head so probabilities differ between samples
            net.classifier.weight.mul_(8.0)
    net.eval()
    labelled = np.random.default_rng(seed).choice(n_pool, size=n_labelled, replace=False).astype(np.int64)
    lab = torch.as_tensor(labelled)
    if explainer == "default":
        explainer = default_explainer()
    spec = SandboxSpec(
        strategy=ComponentRef("strategy", "kit-unset"), model=ComponentRef.of("model", SmallCNN, options),
        explainer=None if explainer is None else ComponentRef.of("explainer", type(explainer),
                                                                 explainer.options.to_dict()),
        task=task, num_classes=num_classes, in_channels=1, spatial_dims=spatial_dims,
        pool_masks_visible=pool_masks_visible, threads=torch.get_num_threads(), device="cpu", batch_size=16)
    request = RoundRequest.of(0, net, labelled, pool.labels[lab], pool.roi[lab], pool.has_roi[lab],
                              rng_seed=seed, torch_seed=seed, k=0)
    return KitRound(spec, make_cell_data(pool, val, pool_masks_visible=pool_masks_visible), request, pool)


def make_context(**kwargs: Any) -> StrategyContext:
    """A fresh tiny context (:func:`make_round`'s arguments): what a strategy sees in a run."""
    return make_round(**kwargs).context()
