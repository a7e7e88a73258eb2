"""Sandbox messages from a ready-made :class:`~xalbench.harness.context.StrategyContext`.

The conformance kit builds tiny contexts (:func:`xalbench.testing.contexts.make_context`) and
asks a strategy through the sandbox: :func:`parts_from_context` turns such a context into the
spec, cell data and round request the harness would send, and :func:`query_context` runs one
query. The context's model must be a ``small-cnn`` (its build options are read off the
network); ``ctx.rng`` is assumed to be ``numpy.random.default_rng(ctx.seed)``, as
``make_context`` builds it.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch

from xalbench.models.small_cnn import SmallCNN, SmallCNNNet
from xalbench.sandbox.inline import InlineQuerier
from xalbench.sandbox.messages import CellData, ComponentRef, RoundRequest, SandboxSpec, state_value
from xalbench.sandbox.messages import private_copy as cp
from xalbench.sandbox.messages import send_array as ship

__all__ = ["parts_from_context", "query_context"]


def _model_ref(model: torch.nn.Module) -> ComponentRef:
    if not isinstance(model, SmallCNNNet):
        raise TypeError(f"only small-cnn contexts can be sent to a sandbox, got {type(model).__name__}")
    convs = [m for m in model.body if isinstance(m, (torch.nn.Conv2d, torch.nn.Conv3d))]
    options = {"width": convs[0].out_channels, "n_blocks": len(convs), "dropout": float(model.dropout.p)}
    return ComponentRef.of("model", SmallCNN, options)


def parts_from_context(ctx: Any, strategy: type, *, options: dict[str, Any] | None = None,
                       timeout: float = 60.0) -> tuple[SandboxSpec, CellData, RoundRequest]:
    """``(spec, data, request)`` that ask ``strategy`` about ``ctx`` in a sandbox (set ``request.k``)."""
    explainer = ctx.explainer
    spec = SandboxSpec(
        strategy=ComponentRef.of("strategy", strategy, options), model=_model_ref(ctx.model),
        explainer=None if explainer is None else ComponentRef.of("explainer", type(explainer),
                                                                 explainer.options.to_dict()),
        task=ctx.task, num_classes=ctx.num_classes, in_channels=int(ctx.pool_images.shape[1]),
        spatial_dims=ctx.spatial_dims, pool_masks_visible=ctx.pool_masks_visible, threads=torch.get_num_threads(),
        device=str(ctx.device), timeout=timeout, batch_size=ctx.batch_size)
    visible = ctx.pool_masks_visible
    val = ctx.val
    data = CellData(
        pool_images=ship(ctx.pool_images), val_images=ship(val.images), val_labels=cp(val.labels),
        pool_masks_visible=visible, val_roi=ship(val.roi), val_has_roi=cp(val.has_roi),
        val_class_roi=ship(val.class_roi), val_annotated_slices=cp(val.annotated_slices), val_groups=cp(val.groups),
        pool_roi=ship(ctx._pool_roi) if visible else None, pool_has_roi=cp(ctx._pool_has_roi) if visible else None,
        pool_annotated_slices=cp(ctx._pool_annotated) if visible else None)
    request = RoundRequest(
        round_index=ctx.round_index, state_dict={k: state_value(v) for k, v in ctx.model.state_dict().items()},
        module_training=tuple(m.training for m in ctx.model.modules()), labelled=np.array(ctx.labelled, dtype=np.int64),
        labelled_labels=cp(ctx.labelled_labels), labelled_roi=cp(ctx.labelled_roi),
        labelled_has_roi=cp(ctx.labelled_has_roi), rng_seed=ctx.seed, torch_seed=ctx.seed, k=0)
    return spec, data, request


def query_context(ctx: Any, strategy: type, k: int, *, timeout: float = 60.0,
                  isolation: Literal["process", "inline"] = "process",
                  options: dict[str, Any] | None = None) -> np.ndarray:
    """``strategy``'s validated picks for ``ctx`` (a fresh instance with ``options``; a fresh sandbox with
    ``process``).

    A class that cannot be pickled by reference (defined inside a function, or in a test module that
    pytest imports in ``importlib`` mode) cannot be named in another process: it runs ``inline``."""
    from dataclasses import replace

    from xalbench.sandbox.client import ProcessQuerier

    spec, data, request = parts_from_context(ctx, strategy, options=options, timeout=timeout)
    request = replace(request, k=int(k))
    if isolation == "process" and spec.strategy.portable().cls is None:
        isolation = "inline"
    querier = ProcessQuerier(spec, data) if isolation == "process" else InlineQuerier(spec, data)
    with querier:
        return querier.query(request).indices
